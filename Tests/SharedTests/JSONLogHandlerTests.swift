import Foundation
import Logging
import Testing

@testable import Shared

@Suite("Observability: JSON log lines")
struct JSONLogHandlerTests {
    func event(_ message: Logger.Message, level: Logger.Level = .info, metadata: Logger.Metadata? = nil) -> LogEvent {
        LogEvent(level: level, message: message, metadata: metadata, source: "Shared", file: "Sources/Shared/X.swift", function: "f()", line: 42)
    }

    func parse(_ line: String) throws -> [String: Any] {
        #expect(line.hasSuffix("}\n"))
        #expect(line.dropLast().contains("\n") == false, "one line per event")
        return try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test func writesTheFixedFieldsThenSortedMetadata() throws {
        // 2026-11-23T19:23:33.041Z
        let time = timespec(tv_sec: 1_795_461_813, tv_nsec: 41_999_999)
        let line = JSONLogHandler.line(
            event: event("Request", metadata: ["requestId": "r-1", "b": "2"]), label: "vote",
            metadata: ["a": "1", "requestId": "handler's"], now: time)
        #expect(line == #"{"ts":"2026-11-23T19:23:33.041Z","level":"info","logger":"vote","msg":"Request","a":"1","b":"2","requestId":"r-1"}"# + "\n")
    }

    @Test func escapesEverythingJSONRequires() throws {
        let nasty = "quote \" backslash \\ newline \n tab \t bell \u{07} nul \u{0} é 🎙"
        let line = JSONLogHandler.line(
            event: event("\(nasty)", metadata: ["list": ["x\"", .stringConvertible(7)], "map": ["k\n": "v"]]),
            label: "l\"abel", metadata: [:])
        let object = try parse(line)
        #expect(object["msg"] as? String == nasty)
        #expect(object["logger"] as? String == "l\"abel")
        #expect(object["list"] as? [String] == ["x\"", "7"])
        #expect((object["map"] as? [String: String])?["k\n"] == "v")
    }

    @Test func errorsSayWhereTheyCameFrom() throws {
        let object = try parse(JSONLogHandler.line(event: event("boom", level: .error), label: "auth", metadata: [:]))
        #expect(object["source"] as? String == "X.swift:42")
        #expect(object["level"] as? String == "error")
        let info = try parse(JSONLogHandler.line(event: event("fine"), label: "auth", metadata: [:]))
        #expect(info["source"] == nil)
    }
}
