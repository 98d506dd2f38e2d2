import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import PostgresNIO
import Shared
import TestSupport
import Testing

@testable import VoteService

/// Runs `test` against a real vote service on a fresh database (or on `databaseURL`, to
/// put several instances on one database). `.live` binds a real port, for event streams.
func withVoteService(
    live: Bool = false,
    databaseURL: String? = nil,
    extra: [String: String] = [:],
    _ test: @escaping @Sendable (any TestClientProtocol, _ databaseURL: String) async throws -> Void
) async throws {
    let url: String
    if let databaseURL { url = databaseURL } else { url = try await TestDatabase.create() }
    // Short coalescing window so event tests take milliseconds.
    let reader = TestEnvironment.reader(databaseURL: url, extra: ["VOTE_EVENTS_COALESCE_MS": "20"].merging(extra) { $1 })
    let configuration = try VoteConfiguration(reader: reader, logger: TestEnvironment.logger)
    let app = try await buildApplication(configuration: configuration, logger: TestEnvironment.logger)
    let setup: TestingSetup = live ? .live : .router
    try await app.test(setup) { client in try await test(client, url) }
}

/// A caller with a token as the auth service would issue it.
struct TestUser: Sendable {
    let id: UUID
    let token: String

    init(name: String = "Voter") throws {
        let id = UUID()
        self.id = id
        self.token = try TestEnvironment.accessToken(userID: id, name: name)
    }
}

/// The contract's poll, as a client reads it.
struct PollDTO: Decodable, Sendable {
    struct Candidate: Decodable, Sendable, Equatable {
        var id: UUID
        var name: String
        var voteCount: Int
    }
    var id: UUID
    var title: String
    var createdBy: UUID
    var createdAt: Date
    var closesAt: Date?
    var candidates: [Candidate]
    var totalVotes: Int
    var myVote: UUID?

    var counts: [Int] { candidates.map(\.voteCount) }
}

struct PollPageDTO: Decodable {
    var items: [PollDTO]
    var nextCursor: String?
}

/// The `data` of an `event: counts`.
struct CountsDTO: Decodable, Sendable, Equatable {
    struct Candidate: Decodable, Sendable, Equatable {
        var id: UUID
        var voteCount: Int
    }
    var pollId: UUID
    var candidates: [Candidate]
    var totalVotes: Int

    var counts: [Int] { candidates.map(\.voteCount) }
}

extension TestClientProtocol {
    /// Creates a poll and insists on `201`.
    func createPoll(
        _ user: TestUser, title: String = "Lunch?", candidates: [String] = ["Pizza", "Sushi", "Salad"],
        closesAt: String? = nil
    ) async throws -> PollDTO {
        let response = try await send(.post, "/polls", json: pollJSON(title: title, candidates: candidates, closesAt: closesAt), token: user.token)
        try #require(response.status == .created, "create poll: \(response.status) \(String(buffer: response.body))")
        return try response.decode(PollDTO.self)
    }

    func poll(_ id: UUID, as user: TestUser? = nil) async throws -> PollDTO {
        let response = try await send(.get, "/polls/\(id)", token: user?.token)
        try #require(response.status == .ok, "get poll: \(response.status)")
        return try response.decode(PollDTO.self)
    }

    func vote(_ user: TestUser, poll: UUID, candidate: UUID) async throws -> TestResponse {
        try await send(.post, "/polls/\(poll)/votes", json: #"{"candidateId": "\#(candidate)"}"#, token: user.token)
    }

    func retract(_ user: TestUser, poll: UUID) async throws -> TestResponse {
        try await send(.delete, "/polls/\(poll)/votes/me", token: user.token)
    }

    /// Waits until `/ready` says yes (the notification listener is connected); fails the
    /// test, and stops it, if it never does.
    func waitUntilReady(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await eventually(timeout: .seconds(20), { try await send(.get, "/ready").status == .ok }, sourceLocation: sourceLocation)
    }
}

func pollJSON(title: String, candidates: [String], closesAt: String? = nil) -> String {
    var object: [String: Any] = ["title": title, "candidates": candidates]
    if let closesAt { object["closesAt"] = closesAt }
    let data = try! JSONSerialization.data(withJSONObject: object)
    return String(decoding: data, as: UTF8.self)
}

/// Runs SQL on the service's database, to arrange what the API cannot (a poll that closed).
func runSQL(_ sql: String, on databaseURL: String) async throws {
    try await TestDatabase.withClient(databaseURL) { client in
        for try await _ in try await client.query(PostgresQuery(unsafeSQL: sql)) {}
    }
}

// MARK: Server-Sent Events client

/// One frame of an event stream.
enum SSEFrame: Sendable, Equatable {
    case event(name: String, data: String)
    case comment(String)
}

/// Frames as they arrive; `next` waits for one, up to a deadline.
actor SSEInbox {
    private var frames: [SSEFrame] = []
    private var finished = false
    private var waiter: (id: UUID, continuation: CheckedContinuation<SSEFrame?, Never>)?

    func append(_ frame: SSEFrame) {
        if let waiter {
            self.waiter = nil
            waiter.continuation.resume(returning: frame)
        } else {
            frames.append(frame)
        }
    }

    /// Whether the stream ended (the server closed it), as opposed to nothing arriving.
    var isFinished: Bool { finished }

    func finish() {
        finished = true
        waiter?.continuation.resume(returning: nil)
        waiter = nil
    }

    /// The next frame; `nil` when the stream ended or nothing came within `timeout`.
    func next(timeout: Duration) async -> SSEFrame? {
        if !frames.isEmpty { return frames.removeFirst() }
        if finished { return nil }
        let id = UUID()
        return await withCheckedContinuation { continuation in
            waiter = (id, continuation)
            Task {
                try? await Task.sleep(for: timeout)
                self.expire(id)
            }
        }
    }

    private func expire(_ id: UUID) {
        guard let waiter, waiter.id == id else { return }
        self.waiter = nil
        waiter.continuation.resume(returning: nil)
    }
}

/// A streaming `GET …/events` over a real connection (AsyncHTTPClient).
final class EventStreamClient: Sendable {
    let status: HTTPResponseStatus
    let headers: HTTPHeaders
    let inbox: SSEInbox
    private let http: HTTPClient
    private let reader: Task<Void, Never>

    private init(status: HTTPResponseStatus, headers: HTTPHeaders, http: HTTPClient, body: HTTPClientResponse.Body, inbox: SSEInbox) {
        self.status = status
        self.headers = headers
        self.http = http
        self.inbox = inbox
        self.reader = Task {
            var text = ""
            do {
                for try await buffer in body {
                    text += String(buffer: buffer)
                    while let end = text.range(of: "\n\n") {
                        let block = String(text[..<end.lowerBound])
                        text = String(text[end.upperBound...])
                        if let frame = Self.parse(block) { await inbox.append(frame) }
                    }
                }
            } catch {}
            await inbox.finish()
        }
    }

    /// Opens the stream; the caller must `close()` it.
    static func open(port: Int, path: String, token: String? = nil) async throws -> EventStreamClient {
        let http = HTTPClient()
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.headers.add(name: "Accept", value: "text/event-stream")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        do {
            let response = try await http.execute(request, timeout: .seconds(30))
            return EventStreamClient(
                status: response.status, headers: response.headers, http: http, body: response.body, inbox: SSEInbox())
        } catch {
            try? await http.shutdown()
            throw error
        }
    }

    static func parse(_ block: String) -> SSEFrame? {
        var name = "message"
        var data: [String] = []
        for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(":") { return .comment(line.dropFirst().trimmingCharacters(in: .whitespaces)) }
            if line.hasPrefix("event:") { name = line.dropFirst(6).trimmingCharacters(in: .whitespaces) }
            if line.hasPrefix("data:") { data.append(String(line.dropFirst(5).drop(while: { $0 == " " }))) }
        }
        return data.isEmpty ? nil : .event(name: name, data: data.joined(separator: "\n"))
    }

    /// The next frame of any kind.
    func nextFrame(timeout: Duration = .seconds(5)) async -> SSEFrame? {
        await inbox.next(timeout: timeout)
    }

    /// The next `counts` event, skipping keepalives; fails the test if none comes in time.
    func nextCounts(timeout: Duration = .seconds(5)) async throws -> CountsDTO {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard let frame = await inbox.next(timeout: deadline - ContinuousClock.now) else { break }
            if case .event(let name, let data) = frame {
                #expect(name == "counts")
                let decoder = JSONDecoder()
                return try decoder.decode(CountsDTO.self, from: Data(data.utf8))
            }
        }
        throw NoEventError()
    }

    /// Waits for counts equal to `expected`, skipping intermediate (coalesced) ones.
    func waitForCounts(_ expected: [Int], timeout: Duration = .seconds(5)) async throws -> CountsDTO {
        let deadline = ContinuousClock.now + timeout
        var last: CountsDTO?
        while ContinuousClock.now < deadline {
            let counts = try await nextCounts(timeout: deadline - ContinuousClock.now)
            if counts.counts == expected { return counts }
            last = counts
        }
        throw NoEventError(detail: "expected \(expected), last seen \(last.map { "\($0.counts)" } ?? "nothing")")
    }

    /// How a stream that should end did.
    enum Ending: Sendable, Equatable {
        /// The server closed it.
        case ended
        /// An event came instead (its name and data).
        case event(String)
        /// Still open at the deadline.
        case stillOpen
    }

    /// Waits for the server to close the stream, skipping keepalive comments; an event, or
    /// the deadline passing with the stream still open, is reported instead.
    func waitForEnd(timeout: Duration) async -> Ending {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard let frame = await inbox.next(timeout: deadline - ContinuousClock.now) else { break }
            if case .event(let name, let data) = frame { return .event("\(name): \(data)") }
        }
        return await inbox.isFinished ? .ended : .stillOpen
    }

    func close() async {
        reader.cancel()
        await reader.value
        try? await http.shutdown()
    }
}

struct NoEventError: Error, CustomStringConvertible {
    var detail = "no counts event arrived in time"
    var description: String { detail }
}

/// Opens an event stream, runs `body`, and always closes the stream.
func withEventStream<T: Sendable>(
    port: Int?, poll: UUID, token: String? = nil, _ body: (EventStreamClient) async throws -> T
) async throws -> T {
    let port = try #require(port, "event streams need a live service")
    let stream = try await EventStreamClient.open(port: port, path: "/polls/\(poll)/events", token: token)
    do {
        let value = try await body(stream)
        await stream.close()
        return value
    } catch {
        await stream.close()
        throw error
    }
}
