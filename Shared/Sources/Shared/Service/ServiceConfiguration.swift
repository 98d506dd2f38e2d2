import Configuration
import Logging

/// What a service reads at start-up: its settings from the environment (names in the README).
public protocol ServiceConfiguration: Sendable {
    /// The service's name: its logger label, default database and role.
    static var serviceName: String { get }
    /// Variables beyond the common ones whose values never appear in logs.
    static var secretVariables: [String] { get }
    /// The settings every service has.
    var common: CommonConfiguration { get }
    /// Reads and checks every setting; a bad one throws `ConfigurationError` naming it.
    init(reader: ConfigReader, logger: Logger) throws
}

extension ServiceConfiguration {
    public static var secretVariables: [String] { [] }
}
