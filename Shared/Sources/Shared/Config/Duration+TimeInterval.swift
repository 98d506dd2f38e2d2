import Foundation

extension Duration {
    /// In seconds, with the fraction.
    public var timeInterval: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
