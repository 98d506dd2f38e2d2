import Configuration

/// Number settings, read one way in every service. A setting is named by its environment
/// variable (`BCRYPT_COST`), so the message that stops a misconfigured service names exactly
/// what to fix. Absent or empty gives the default; anything else that is not a number within
/// the range stops the service (`ConfigurationError`), never a silent default.
extension ConfigReader {
    /// The config key the environment provider maps `variable` to (`BCRYPT_COST` -> `bcrypt.cost`).
    public static func key(forVariable variable: String) -> ConfigKey {
        ConfigKey(variable.lowercased().split(separator: "_").map(String.init))
    }

    /// A whole number in `range`.
    public func integer(_ variable: String, default value: Int, in range: ClosedRange<Int>) throws -> Int {
        guard let text = string(forKey: Self.key(forVariable: variable))?.trimmingWhitespace, !text.isEmpty else {
            precondition(range.contains(value), "the default of \(variable) is outside its own range")
            return value
        }
        guard let number = Int(text), range.contains(number) else {
            throw ConfigurationError("\(variable) must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(text)'.")
        }
        return number
    }

    /// A duration given in (possibly fractional) seconds, in `range`.
    public func seconds(_ variable: String, default value: Double, in range: ClosedRange<Double>) throws -> Duration {
        guard let text = string(forKey: Self.key(forVariable: variable))?.trimmingWhitespace, !text.isEmpty else {
            precondition(range.contains(value), "the default of \(variable) is outside its own range")
            return .milliseconds(Int64((value * 1000).rounded()))
        }
        guard let number = Double(text), number.isFinite, range.contains(number) else {
            throw ConfigurationError("\(variable) must be a number of seconds from \(range.lowerBound) to \(range.upperBound), not '\(text)'.")
        }
        return .milliseconds(Int64((number * 1000).rounded()))
    }

    /// A duration given in whole milliseconds, in `range`.
    public func milliseconds(_ variable: String, default value: Int, in range: ClosedRange<Int>) throws -> Duration {
        .milliseconds(try integer(variable, default: value, in: range))
    }
}

extension String {
    fileprivate var trimmingWhitespace: String {
        var text = Substring(self)
        while text.first?.isWhitespace == true { text.removeFirst() }
        while text.last?.isWhitespace == true { text.removeLast() }
        return String(text)
    }
}
