import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Shared
import TestSupport
import Testing

@Suite("End to end: a user's journey across the services")
struct JourneyTests {
    @Test func accountLifecycleThroughTheGateway() async throws {
        let client = try GatewayClient()
        let session = try await client.signup(name: "Journey")
        let me = try await client.send(.GET, "/auth/me", token: session.accessToken)
        #expect(me.status == 200)
        #expect(try me.json["name"] == .string("Journey"))
        let refreshed = try await client.send(.POST, "/auth/refresh", json: #"{"refreshToken":"\#(session.refreshToken)"}"#)
        #expect(refreshed.status == 200)
        let verify = try await client.send(.GET, "/auth/verify", token: try refreshed.decode(SessionReply.self).accessToken)
        #expect(try verify.json["sub"] == .string(session.user.id))
    }
}

@Suite("End to end: graceful shutdown")
struct GracefulShutdownTests {
    /// A second auth instance (same binary, same database) takes slow logins; SIGTERM while
    /// they are in flight must let every one of them finish.
    @Test func sigtermLetsInFlightRequestsFinish() async throws {
        let binary = try Stack.url("E2E_BIN_DIR") + "/auth-service"
        var environment = try Self.environment(of: "E2E_AUTH_ENV")
        let port = try Self.freePort()
        environment["HTTP_PORT"] = String(port)
        environment["BCRYPT_COST"] = "12"  // ~0.25 s per login: 16 of them keep the server busy for seconds
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.environment = environment
        // The service's request log tells when all the logins have reached it.
        let output = Pipe()
        let requestLog = LoginRequestCounter()
        output.fileHandleForReading.readabilityHandler = { handle in requestLog.add(handle.availableData) }
        process.standardOutput = output
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        // Set-up over the shared client; the logins over a fresh one with a connection per
        // request, so each is really in flight at the server (not queued in a client pool,
        // not racing the server's closing of an idle keep-alive connection) at SIGTERM.
        let setup = try GatewayClient(base: "http://127.0.0.1:\(port)")
        try await eventually(timeout: .seconds(30)) { (try? await setup.send(.GET, "/ready").status) == 200 }
        let session = try await setup.signup(name: "Shutdown")
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 32
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let client = try GatewayClient(base: "http://127.0.0.1:\(port)", http: http)
        let email = session.user.email
        let statuses: [Int]
        do {
            statuses = try await Self.loginsDuringShutdown(client: client, email: email, process: process, requestLog: requestLog)
        } catch {
            try await http.shutdown()
            throw error
        }
        try await http.shutdown()
        #expect(statuses == Array(repeating: 200, count: 16))
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    static func loginsDuringShutdown(
        client: GatewayClient, email: String, process: Process, requestLog: LoginRequestCounter
    ) async throws -> [Int] {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    try await client.send(.POST, "/auth/login", json: #"{"email":"\#(email)","password":"e2e password"}"#).status
                }
            }
            // SIGTERM once the service has logged all 16 (each is then really being served; the
            // ~2 s of bcrypt work they queue up on 2 cores is far from done), not after a fixed
            // pause, which a loaded machine can outlast before accepting every connection.
            try await eventually(timeout: .seconds(30), every: .milliseconds(10)) { requestLog.logins >= 16 }
            kill(process.processIdentifier, SIGTERM)
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
    }

    static func environment(of variable: String) throws -> [String: String] {
        let text = try String(contentsOfFile: try Stack.url(variable), encoding: .utf8)
        var environment = ProcessInfo.processInfo.environment
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { environment[String(parts[0])] = String(parts[1]) }
        }
        return environment
    }

    static func freePort() throws -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

@Suite("End to end: votes through the gateway")
struct VoteJourneyTests {
    @Test func pollVoteLiveCountsAndAccountDeletion() async throws {
        let client = try GatewayClient()
        let owner = try await client.signup(name: "Poll Owner")
        let voter = try await client.signup(name: "Voter")
        let created = try await client.send(
            .POST, "/polls", json: #"{"title":"Lunch?","candidates":["Pizza","Sushi"]}"#, token: owner.accessToken)
        #expect(created.status == 201)
        let poll = try created.json
        let pollID = try #require(poll["id"]?.stringValue)
        #expect(created.headers.first(name: "Location") == "/polls/\(pollID)")
        #expect(poll["createdBy"] == .string(owner.user.id))
        let pizza = try #require(poll["candidates"]?.arrayValue?.first?.objectValue?["id"]?.stringValue)

        // The live stream through the gateway: the first event arrives at once, unbuffered.
        var request = HTTPClientRequest(url: try Stack.gateway + "/polls/\(pollID)/events")
        request.headers.add(name: "Accept", value: "text/event-stream")
        let stream = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        #expect(stream.status == .ok)
        #expect(stream.headers.first(name: "Content-Type")?.hasPrefix("text/event-stream") == true)
        var events = stream.body.makeAsyncIterator()
        var received = ""
        while !received.contains("\"totalVotes\":0") {
            guard let chunk = try await events.next() else { break }
            received += String(buffer: chunk)
        }
        #expect(received.contains("event: counts"))

        let vote = try await client.send(.POST, "/polls/\(pollID)/votes", json: #"{"candidateId":"\#(pizza)"}"#, token: voter.accessToken)
        #expect(vote.status == 201)
        while !received.contains("\"totalVotes\":1") {
            guard let chunk = try await events.next() else { break }
            received += String(buffer: chunk)
        }
        #expect(received.contains("\"totalVotes\":1"))
        #expect(try await client.send(.POST, "/polls/\(pollID)/votes", json: #"{"candidateId":"\#(pizza)"}"#, token: voter.accessToken).status == 409)

        // Deleting the voter's account takes the vote out of the owner's poll, within seconds.
        #expect(try await client.send(.DELETE, "/auth/me", json: #"{"currentPassword":"e2e password"}"#, token: voter.accessToken).status == 204)
        try await eventually(timeout: .seconds(20)) {
            try await client.send(.GET, "/polls/\(pollID)").json["totalVotes"] == .number(0)
        }
    }
}

/// Counts the login requests in a service's JSON log as it is written.
final class LoginRequestCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var pending = ""
    private var count = 0

    var logins: Int { lock.withLock { count } }

    func add(_ data: Data) {
        lock.withLock {
            pending += String(decoding: data, as: UTF8.self)
            var lines = pending.split(separator: "\n", omittingEmptySubsequences: false)
            pending = String(lines.removeLast())
            count += lines.filter { $0.contains(#""path":"/auth/login""#) }.count
        }
    }
}
