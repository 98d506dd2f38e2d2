import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Shared

extension TestClientProtocol {
    /// Sends a request with an optional JSON body and bearer token.
    @discardableResult
    public func send(
        _ method: HTTPRequest.Method, _ uri: String, json: String? = nil, token: String? = nil,
        headers: HTTPFields = [:]
    ) async throws -> TestResponse {
        var headers = headers
        if let token { headers[.authorization] = "Bearer \(token)" }
        if json != nil, headers[.contentType] == nil { headers[.contentType] = "application/json" }
        return try await executeRequest(uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) })
    }
}

extension TestClientProtocol {
    /// Delivers a user event to `target`'s `POST /internal/events`, as auth's outbox does.
    @discardableResult
    public func deliver(_ event: UserEvent, to target: String, from caller: String = "auth") async throws -> TestResponse {
        try await send(
            .post, "/internal/events", json: try TestEnvironment.userEventJSON(event),
            token: try TestEnvironment.serviceToken(from: caller, to: target))
    }
}

extension UserEvent {
    /// `user.deleted` of `userID`.
    public static func deleted(_ userID: UUID, id: Int64 = 1) -> UserEvent { UserEvent(id: id, type: .userDeleted, userId: userID) }
}

extension TestResponse {
    public var data: Data { Data(buffer: body) }

    public func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(T.self, from: data)
    }

    /// The body as a JSON object, for asserting on exact keys and values.
    public var json: [String: JSONValue] {
        get throws {
            guard case .object(let object) = try decode(JSONValue.self) else { throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "not an object")) }
            return object
        }
    }

    public var problem: ProblemDetails {
        get throws { try decode(ProblemDetails.self) }
    }
}

extension OpenAPIContract {
    /// Checks one test response against the document; returns the problems found.
    public func validate(_ response: TestResponse, method: HTTPRequest.Method, path: String) -> [String] {
        validate(
            method: method.rawValue, path: path, status: response.status.code,
            contentType: response.headers[.contentType], body: response.data)
    }
}

extension JSONValue {
    /// The member `key` of an object; nil for anything else.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members[key]
    }
}
