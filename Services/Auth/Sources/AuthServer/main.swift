import AuthService
import Configuration
import Logging
import Shared
import Foundation

// Reads configuration from the environment (names in the README) and runs until SIGTERM.
let reader = ConfigReader(provider: EnvironmentVariablesProvider(
    secretsSpecifier: .specific(["JWT_SECRET", "SERVICE_TOKEN_SECRET", "DATABASE_URL", "DATABASE_PASSWORD"])))
ServiceLogging.bootstrap(reader: reader)
let logger = Logger(label: "auth")
do {
    let configuration = try AuthConfiguration(reader: reader, logger: logger)
    let app = try await buildApplication(configuration: configuration, logger: logger)
    try await app.runService()
} catch let error as ConfigurationError {
    logger.critical("invalid configuration: \(error.description)")
    exit(78)  // EX_CONFIG
}
