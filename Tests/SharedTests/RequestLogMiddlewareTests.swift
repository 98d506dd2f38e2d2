import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Shared
import Synchronization
import Testing

/// One line per request after it is answered, with its status and time, never the query
/// (signed links carry their token there); successful probes only at debug.
@Suite("Observability: request log lines")
struct RequestLogMiddlewareTests {
    final class Lines: Sendable {
        let lines = Mutex<[(level: Logger.Level, message: String, metadata: Logger.Metadata)]>([])
    }

    struct Capture: LogHandler {
        let lines: Lines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            lines.lines.withLock { $0.append((event.level, "\(event.message)", all)) }
        }
    }

    func lines(level: Logger.Level, _ requests: [String]) async throws -> [(level: Logger.Level, message: String, metadata: Logger.Metadata)] {
        let captured = Lines()
        let router = Router(context: AppRequestContext.self)
        router.add(middleware: RequestIDMiddleware())
        router.add(middleware: RequestLogMiddleware())
        router.add(middleware: ProblemMiddleware())
        router.get("health") { _, _ in "ok" }
        router.get("recordings/{id}/content") { _, _ -> String in throw APIError.notFound("recording_not_found", "No such recording.") }
        let app = Application(router: router, logger: Logger(label: "test") { _ in Capture(lines: captured, logLevel: level) })
        try await app.test(.router) { client in
            for path in requests {
                _ = try await client.execute(uri: path, method: .get)
            }
        }
        return captured.lines.withLock { $0 }.filter { $0.message == "request" }
    }

    @Test func oneLineWithStatusAndNoQuery() async throws {
        let lines = try await self.lines(level: .info, ["/recordings/r-1/content?token=secret-token", "/health"])
        #expect(lines.count == 1, "the probe that answered 200 is not logged at info")
        let line = try #require(lines.first)
        #expect(line.level == .info)
        #expect(line.metadata["path"] == "/recordings/r-1/content")
        #expect(line.metadata["method"] == "GET")
        #expect(line.metadata["status"]?.description == "404")
        #expect(line.metadata["requestId"] != nil)
        #expect(line.metadata["ms"].flatMap { Double($0.description) }.map { $0 >= 0 } == true)
        #expect(!"\(line.metadata)".contains("secret-token"))
    }

    @Test func probesAtDebug() async throws {
        let lines = try await self.lines(level: .debug, ["/health"])
        #expect(lines.map(\.level) == [.debug])
        #expect(lines.first?.metadata["status"]?.description == "200")
    }
}
