import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Shared
import Testing

/// The system as `scripts/with-test-stack.sh` started it (`make test` does).
enum Stack {
    static func url(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            throw StackNotRunning(variable: name)
        }
        return value
    }

    static var gateway: String { get throws { try url("E2E_GATEWAY_URL") } }
    static var logDirectory: String { get throws { try url("E2E_LOG_DIR") } }

    struct StackNotRunning: Error, CustomStringConvertible {
        var variable: String
        var description: String { "\(variable) is not set: run the end-to-end tests with `make test` (scripts/with-test-stack.sh)" }
    }

    /// Every service the system has; the end-to-end tests need all of them.
    static let services = ["auth", "vote", "recording", "feed"]

    /// The URL of `service` in the stack. A service that is missing (its binary was not
    /// built, so `with-test-stack.sh` left it out) throws: the test fails, naming it,
    /// rather than being skipped or passing without it.
    static func require(_ service: String) throws -> String {
        let variable = "E2E_\(service.uppercased())_URL"
        guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else {
            if ProcessInfo.processInfo.environment["E2E_GATEWAY_URL"] == nil { throw StackNotRunning(variable: "E2E_GATEWAY_URL") }
            throw ServiceMissing(service: service, variable: variable)
        }
        return value
    }

    struct ServiceMissing: Error, CustomStringConvertible {
        var service: String
        var variable: String
        var description: String {
            "the test stack runs without the \(service) service (\(variable) is not set): its binary "
                + "\(service)-service is missing from the build directory; run `swift build` before the end-to-end tests"
        }
    }
}

struct Reply: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: Data

    var json: [String: JSONValue] {
        get throws {
            guard case .object(let object) = try JSONDecoder().decode(JSONValue.self, from: body) else { throw NotAnObject() }
            return object
        }
    }
    struct NotAnObject: Error {}

    func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(T.self, from: body)
    }
}

/// A small client for the gateway: JSON in, status/headers/body out.
struct GatewayClient: Sendable {
    var base: String
    var http: HTTPClient = .shared

    init(base: String? = nil, http: HTTPClient = .shared) throws {
        if base == nil {
            // Every test through the gateway needs the whole system behind it.
            for service in Stack.services { _ = try Stack.require(service) }
        }
        self.base = try base ?? Stack.gateway
        self.http = http
    }

    func send(
        _ method: HTTPMethod, _ path: String, json: String? = nil, body: Data? = nil, token: String? = nil,
        headers: [(String, String)] = []
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let json {
            if !request.headers.contains(name: "Content-Type") { request.headers.add(name: "Content-Type", value: "application/json") }
            request.body = .bytes(ByteBuffer(string: json))
        } else if let body {
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await http.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: Data(buffer: bytes))
    }
}

struct SessionReply: Decodable {
    struct User: Decodable { var id: String; var email: String; var name: String }
    var user: User
    var accessToken: String
    var refreshToken: String
}

extension GatewayClient {
    func signup(name: String = "E2E User") async throws -> SessionReply {
        let email = "e2e-\(UUID().apiString.prefix(12))@example.com"
        let reply = try await send(.POST, "/auth/signup", json: #"{"email":"\#(email)","password":"e2e password","name":"\#(name)"}"#)
        #expect(reply.status == 201)
        return try reply.decode(SessionReply.self)
    }
}

/// Lines of a service's logs (JSON lines) in the stack's log directory: every instance's
/// (`vote.log`, `vote-2.log`, ...), since the gateway may send a request to any of them.
func logLines(of service: String) throws -> [String] {
    let directory = try Stack.logDirectory
    let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { name in
        name == "\(service).log" || (name.hasPrefix("\(service)-") && name.hasSuffix(".log") && Int(name.dropFirst(service.count + 1).dropLast(4)) != nil)
    }
    return try files.flatMap { file in
        (try String(contentsOfFile: directory + "/" + file, encoding: .utf8)).split(separator: "\n").map(String.init)
    }
}
