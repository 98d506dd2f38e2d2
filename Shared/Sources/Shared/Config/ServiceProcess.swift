import Configuration
import Logging
import NIOCore
import NIOPosix

/// What every service's entry point does first, on the main thread, before any task runs.
public enum ServiceProcess {
    public static func bootstrap(reader: ConfigReader) {
        // Swift concurrency's jobs run on NIO's event loops instead of a separate thread pool:
        // a request's handler, its database query and its response then stay on one thread
        // instead of hopping between pools (about a third of the CPU of a simple request went
        // to those hops and wake-ups). Blocking work must go to NIOThreadPool (bcrypt does)
        // or to NIO's file system (the object store does).
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        ServiceLogging.bootstrap(
            level: Logger.Level(rawValue: reader.string(forKey: ConfigurationKeys.logLevel, default: "info")) ?? .info)
    }
}
