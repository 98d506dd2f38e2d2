import AsyncHTTPClient
import Foundation
import PostgresNIO
import Shared
import TestSupport
import Testing

extension Stack {
    /// Every instance of `service` (`E2E_<SERVICE>_URLS`): checks that must hold on whichever
    /// instance serves a request ask each one directly.
    static func instances(_ service: String) throws -> [String] {
        _ = try require(service)
        return try url("E2E_\(service.uppercased())_URLS").split(separator: " ").map(String.init)
    }

    /// The database of `service` in the stack (from its environment file).
    static func databaseURL(_ service: String) throws -> String {
        let file = try url("E2E_\(service.uppercased())_ENV")
        let line = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").first { $0.hasPrefix("DATABASE_URL=") }
        return String(try #require(line).dropFirst("DATABASE_URL=".count))
    }

    /// Rows in `service`'s database that `sql` counts.
    static func count(_ service: String, _ sql: String) async throws -> Int {
        try await TestDatabase.withClient(try databaseURL(service)) { client in
            var count = -1
            for try await value in try await client.query(PostgresQuery(unsafeSQL: sql)).decode(Int.self) { count = value }
            return count
        }
    }
}

/// A write in vote, recording and feed on every instance, of a kind each refuses after the
/// token check anyway (`400`), so a token that still works creates nothing: the statuses
/// say whether the token was accepted (`400`) or refused (`401`).
private func writeStatuses(token: String) async throws -> [String: Int] {
    let json = #"{}"#
    var statuses: [String: Int] = [:]
    for (service, path, body, type) in [
        ("vote", "/polls", json, "application/json"), ("feed", "/feeds", json, "application/json"),
        ("recording", "/recordings?fileName=a.wav", "", "audio/wav"),
    ] {
        for (index, base) in try Stack.instances(service).enumerated() {
            let reply = try await GatewayClient(base: base).send(
                .POST, path, body: Data(body.utf8), token: token, headers: [("Content-Type", type)])
            statuses["\(service)-\(index + 1)"] = reply.status
        }
    }
    return statuses
}

/// The contract's bound (2 s) with headroom for this suite: every other suite runs at the same
/// time on two cores, which alone can delay a request by seconds. Propagation normally takes
/// tens of milliseconds; a broken one takes the token's lifetime (15 min), so the check still
/// tells them apart.
let contractBound = Duration.seconds(5)

/// Waits (at most `contractBound`, from the change) until every instance refuses `token`.
private func expectRefusedEverywhereInTime(_ token: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    var last: [String: Int] = [:]
    do {
        try await eventually(timeout: contractBound, every: .milliseconds(200)) {
            last = try await writeStatuses(token: token)
            return last.values.allSatisfy { $0 == 401 }
        }
    } catch {
        Issue.record("still accepted after \(contractBound): \(last.filter { $0.value != 401 }.keys.sorted())", sourceLocation: sourceLocation)
    }
}

@Suite("End to end: sessions end everywhere")
struct SessionsEndEverywhereTests {
    @Test func theStackRunsSeveralInstancesOfEveryService() throws {
        for service in ["vote", "recording", "feed"] {
            #expect(try Stack.instances(service).count >= 2, "\(service): the end-to-end stack should run two instances (E2E_SCALE)")
        }
    }

    @Test func logoutEndsThatSessionEverywhere() async throws {
        let client = try GatewayClient()
        let user = try await client.signup(name: "Logout")
        let other = try await client.send(
            .POST, "/auth/login", json: #"{"email":"\#(user.user.email)","password":"e2e password"}"#).decode(SessionReply.self)
        #expect(try await writeStatuses(token: user.accessToken).values.allSatisfy { $0 == 400 })
        #expect(try await client.send(.POST, "/auth/logout", json: #"{"refreshToken":"\#(user.refreshToken)"}"#).status == 204)
        try await expectRefusedEverywhereInTime(user.accessToken)
        // The other session goes on.
        #expect(try await writeStatuses(token: other.accessToken).values.allSatisfy { $0 == 400 })
    }

    @Test func aPasswordChangeEndsTheOtherSessionsEverywhere() async throws {
        let client = try GatewayClient()
        let user = try await client.signup(name: "Password")
        let other = try await client.send(
            .POST, "/auth/login", json: #"{"email":"\#(user.user.email)","password":"e2e password"}"#).decode(SessionReply.self)
        let change = try await client.send(
            .PATCH, "/auth/me", json: #"{"password":"a new password","currentPassword":"e2e password"}"#, token: user.accessToken)
        #expect(change.status == 200)
        try await expectRefusedEverywhereInTime(other.accessToken)
        #expect(try await writeStatuses(token: user.accessToken).values.allSatisfy { $0 == 400 })
    }

    @Test func refreshTokenReuseEndsEverySessionEverywhere() async throws {
        let client = try GatewayClient()
        let user = try await client.signup(name: "Reuse")
        let rotated = try await client.send(.POST, "/auth/refresh", json: #"{"refreshToken":"\#(user.refreshToken)"}"#).decode(SessionReply.self)
        #expect(try await client.send(.POST, "/auth/refresh", json: #"{"refreshToken":"\#(user.refreshToken)"}"#).status == 401)
        try await expectRefusedEverywhereInTime(rotated.accessToken)
        try await expectRefusedEverywhereInTime(user.accessToken)
    }

    @Test func aRenameShowsInFeedsEverywhereWithinTwoSeconds() async throws {
        let client = try GatewayClient()
        let user = try await client.signup(name: "Before")
        #expect(try await client.send(.POST, "/feeds", json: #"{"title":"Named"}"#, token: user.accessToken).status == 201)
        #expect(try await client.send(.PATCH, "/auth/me", json: #"{"name":"After"}"#, token: user.accessToken).status == 200)
        try await eventually(timeout: contractBound, every: .milliseconds(200)) {
            for base in try Stack.instances("feed") {
                let page = try await GatewayClient(base: base).send(.GET, "/feeds?author=\(user.user.id)").json
                guard page["items"]?.arrayValue?.first?.objectValue?["author"]?.objectValue?["name"] == .string("After") else { return false }
            }
            return true
        }
    }

    /// Writes race the deletion: whatever any of them left is gone once the deletion has been
    /// applied twice (the stack redelivers it after 3 s), and the token is refused everywhere.
    @Test func nothingADeletedUserWroteSurvives() async throws {
        // A client of its own: an upload refused before its body was read leaves its connection
        // to be closed, which must not reach the pool the other tests share.
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            try await Self.raceTheDeletion(try GatewayClient(http: http))
        } catch {
            try await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    static func raceTheDeletion(_ client: GatewayClient) async throws {
        let user = try await client.signup(name: "Racer")
        let id = user.user.id
        let token = user.accessToken
        async let writes: Void = withThrowingTaskGroup(of: Void.self) { group in
            for round in 0..<20 {
                group.addTask {
                    // Refused writes may be cut short (an upload answered 401 before its body
                    // was read): only what they leave behind matters here.
                    _ = try? await client.send(.POST, "/polls", json: #"{"title":"Race \#(round)","candidates":["A","B"]}"#, token: token)
                    _ = try? await client.send(.POST, "/feeds", json: #"{"title":"Race \#(round)"}"#, token: token)
                    _ = try? await client.send(
                        .POST, "/recordings?fileName=r\(round).wav", body: Data(repeating: 1, count: 2048), token: token,
                        headers: [("Content-Type", "audio/wav")])
                }
            }
            try await group.waitForAll()
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(try await client.send(.DELETE, "/auth/me", json: #"{"currentPassword":"e2e password"}"#, token: token).status == 204)
        try await writes
        try await expectRefusedEverywhereInTime(token)
        // Each look opens connections to three databases: not too often on a loaded machine.
        try await eventually(timeout: .seconds(20), every: .milliseconds(500)) {
            let polls = try await Stack.count("vote", "SELECT count(*)::int FROM polls WHERE created_by = '\(id)'")
            let votes = try await Stack.count("vote", "SELECT count(*)::int FROM votes WHERE user_id = '\(id)'")
            let recordings = try await Stack.count("recording", "SELECT count(*)::int FROM recordings WHERE owner_id = '\(id)'")
            let posts = try await Stack.count("feed", "SELECT count(*)::int FROM feeds WHERE author_id = '\(id)'")
            return polls + votes + recordings + posts == 0
        }
    }
}
