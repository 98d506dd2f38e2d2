import Configuration
import Logging

/// What every service's entry point does first, before anything logs.
public enum ServiceProcess {
    public static func bootstrap(reader: ConfigReader) {
        ServiceLogging.bootstrap(
            level: Logger.Level(rawValue: reader.string(forKey: ConfigurationKeys.logLevel, default: "info")) ?? .info)
    }
}
