import Configuration
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// The one entry point of every service: each `main.swift` is a call to `run`.
public enum ServiceMain {
    /// Secrets every service reads.
    static let commonSecretVariables = ["JWT_SECRET", "SERVICE_TOKEN_SECRET", "DATABASE_URL", "DATABASE_PASSWORD"]

    /// Reads the configuration from the environment, sets up JSON logging, builds the
    /// application and runs it until SIGTERM (graceful shutdown). A configuration error
    /// stops the process with EX_CONFIG (78) and a message naming the variable.
    public static func run<Settings: ServiceConfiguration, App: ApplicationProtocol>(
        _ configuration: Settings.Type,
        _ buildApplication: (Settings, Logger) async throws -> App
    ) async {
        let secrets = Set(commonSecretVariables + Settings.secretVariables)
        let reader = ConfigReader(provider: EnvironmentVariablesProvider(secretsSpecifier: .specific(secrets)))
        ServiceLogging.bootstrap(reader: reader)
        let logger = Logger(label: Settings.serviceName)
        do {
            let settings = try Settings(reader: reader, logger: logger)
            let app = try await buildApplication(settings, logger)
            // SIGTERM starts a graceful shutdown: the server stops accepting, requests in
            // flight finish (each database call is bounded, see `Database`), background work
            // stops. Whatever is still running after the grace period is cancelled, and the
            // process exits shortly after whatever the database or a peer does.
            var group = ServiceGroupConfiguration(
                services: [.init(service: app)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            group.maximumGracefulShutdownDuration = settings.common.shutdownGrace
            group.maximumCancellationDuration = .seconds(2)
            try await ServiceGroup(configuration: group).run()
        } catch let error as ConfigurationError {
            logger.critical("invalid configuration: \(error.description)")
            exit(78)  // EX_CONFIG
        } catch {
            logger.critical("service stopped by an error", metadata: ["error": "\(String(reflecting: error))"])
            exit(1)
        }
    }
}
