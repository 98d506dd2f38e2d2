import AsyncHTTPClient
import Foundation
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import Shared
import TestSupport
import Testing

@testable import VoteService

/// The database goes away under load and comes back (issue: a `201` for a vote that was
/// never stored). Each test runs against a PostgreSQL cluster of its own.
@Suite("Vote: database faults")
struct VoteDatabaseFaultTests {
    /// The drill's short connection wait may refuse a first request on a loaded machine
    /// (`503`, nothing written): the poll the drill needs is asked for until it is made.
    static func createPollPatiently(_ client: any TestClientProtocol, owner: TestUser) async throws -> PollDTO {
        var created: TestResponse?
        try await eventually {
            created = try await client.send(.post, "/polls", json: pollJSON(title: "Drill", candidates: ["A", "B"]), token: owner.token)
            return created?.status == .created
        }
        return try #require(created).decode(PollDTO.self)
    }

    @Test func everyAcknowledgedVoteSurvivesAFastShutdownAndACrash() async throws {
        try await FaultablePostgres.with { database in
            try await withVoteService(databaseURL: database.url(database: "service"), extra: database.serviceVariables) { client, _ in
                let poll = try await Self.createPollPatiently(client, owner: try TestUser())
                try await database.slowCommits(on: "votes")
                let drill = FaultDrill(bound: FaultablePostgres.requestBound)
                let report = try await drill.run(on: database) { index in
                    let voter = try TestUser()
                    let response = try await client.vote(voter, poll: poll.id, candidate: poll.candidates[index % 2].id)
                    return response.status == .created
                        ? .acknowledged(key: voter.id.uuidString.lowercased()) : .refused(status: Int(response.status.code))
                }
                report.check(stored: try await database.strings("SELECT user_id::text FROM votes"), bound: drill.bound)
                // The counts the trigger keeps agree with the rows that survived.
                let counted = try await database.strings("SELECT sum(vote_count)::text FROM candidates")
                let rows = try await database.strings("SELECT count(*)::text FROM votes")
                #expect(counted == rows)
            }
        }
    }

    @Test func aStoppedDatabaseIsA503QuicklyAndTheServiceRecoversWithoutARestart() async throws {
        try await FaultablePostgres.with { database in
            try await withVoteService(databaseURL: database.url(database: "service"), extra: database.serviceVariables) { client, _ in
                let poll = try await Self.createPollPatiently(client, owner: try TestUser())
                try await database.stopFast()

                // A read: nothing can have been written, so the code says so.
                let start = ContinuousClock.now
                let refused = try await client.send(.get, "/polls/\(poll.id)")
                #expect(ContinuousClock.now - start <= FaultablePostgres.requestBound)
                #expect(refused.status == .serviceUnavailable)
                #expect(refused.headers[.contentType] == "application/problem+json")
                #expect(try refused.problem.code == "service_unavailable")
                // A write: also 503 (its code may say the outcome is unknown when the pool's
                // connection broke under the statement rather than before it).
                let vote = try await client.vote(try TestUser(), poll: poll.id, candidate: poll.candidates[0].id)
                #expect(vote.status == .serviceUnavailable)
                #expect(["service_unavailable", "write_outcome_unknown"].contains(try vote.problem.code))
                try await eventually { try await client.send(.get, "/ready").status == .serviceUnavailable }

                // Back within seconds of the database's return (the pool's own backoff could
                // take far longer after a long outage; DatabasePool replaces it then).
                try await database.restart()
                try await eventually(timeout: .seconds(10)) { try await client.send(.get, "/ready").status == .ok }
                #expect(try await client.vote(try TestUser(), poll: poll.id, candidate: poll.candidates[0].id).status == .created)
            }
        }
    }
}

/// The real executable, stopped with SIGTERM while its requests hang on a database that
/// holds their connections open and never answers.
@Suite("Vote: shutdown on a frozen database")
struct VoteShutdownTests {
    @Test func sigtermWhileRequestsHangExitsWithinTheGracePeriod() async throws {
        try await FaultablePostgres.with { database in
            let port = Int.random(in: 20_000..<30_000)
            let base = "http://127.0.0.1:\(port)"
            // Next to the test bundle (`swift build` puts every product in one folder).
            let binaries = ProcessInfo.processInfo.environment["E2E_BIN_DIR"]
                ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
            let environment = TestEnvironment.variables(databaseURL: database.url(database: "service"), extra: [
                "HTTP_HOST": "127.0.0.1", "HTTP_PORT": "\(port)", "PATH": "/usr/bin:/bin",
                // Only the grace period may end the stuck requests.
                "DATABASE_CONNECTION_WAIT_MS": "60000", "DATABASE_QUERY_TIMEOUT_MS": "60000", "SHUTDOWN_GRACE_SECONDS": "2",
            ])
            let process = try ChildProcess(
                [binaries + "/vote-service"], environment: environment, outputPath: database.directory + "/vote-service.log")
            defer { process.signal(SIGKILL) }
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            do {
                try await eventually(timeout: .seconds(30)) { (try? await http.status(.GET, "\(base)/ready")) == 200 }
                let owner = try TestUser()
                var create = HTTPClientRequest(url: "\(base)/polls")
                create.method = .POST
                create.headers.add(name: "Authorization", value: "Bearer \(owner.token)")
                create.headers.add(name: "Content-Type", value: "application/json")
                create.body = .bytes(ByteBuffer(string: pollJSON(title: "Frozen", candidates: ["A", "B"])))
                #expect(try await http.execute(create, timeout: .seconds(10)).status == .created)

                try await database.freeze()
                let stuck = (0..<4).map { _ in Task { try? await http.status(.GET, "\(base)/polls", timeout: .seconds(60)) } }
                try await eventually { try await http.activeRequests(base) >= 4 }

                let start = ContinuousClock.now
                process.signal(SIGTERM)
                try await eventually(timeout: .seconds(15)) { process.hasExited }
                // Grace (2 s) plus the cancellation allowance (2 s) plus a margin.
                #expect(ContinuousClock.now - start < .seconds(10))
                for request in stuck { _ = await request.value }
                try await database.thaw()
                try await http.shutdown()
            } catch {
                try? await database.thaw()
                try? await http.shutdown()
                throw error
            }
        }
    }
}

extension HTTPClient {
    fileprivate func status(_ method: HTTPMethod, _ url: String, timeout: TimeAmount = .seconds(5)) async throws -> UInt {
        var request = HTTPClientRequest(url: url)
        request.method = method
        let response = try await execute(request, timeout: timeout)
        _ = try await response.body.collect(upTo: 1 << 20)
        return response.status.code
    }

    /// Requests the service is working on now, from its `/metrics` (which needs no database).
    fileprivate func activeRequests(_ base: String) async throws -> Int {
        let response = try await execute(HTTPClientRequest(url: "\(base)/metrics"), timeout: .seconds(5))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        return text.split(separator: "\n")
            .filter { $0.hasPrefix("http_server_active_requests") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
            .reduce(0) { $0 + Int($1) }
    }
}
