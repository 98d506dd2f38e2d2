import Foundation
import HTTPTypes
import HummingbirdTesting
import Shared

/// Calls a running service and checks every response against the OpenAPI document the
/// service itself serves at `/openapi.yaml`, collecting the mismatches.
public final class ContractCheck {
    public let contract: OpenAPIContract
    let client: any TestClientProtocol
    /// Every mismatch seen so far; a test expects none.
    public private(set) var problems: [String] = []

    public init(client: any TestClientProtocol) async throws {
        let served = try await client.send(.get, "/openapi.yaml")
        guard served.status == .ok else {
            throw OpenAPIContract.ContractError("GET /openapi.yaml answered \(served.status)")
        }
        self.contract = try OpenAPIContract(yaml: String(buffer: served.body))
        self.client = client
    }

    /// Sends the request and checks its response against the document.
    @discardableResult
    public func call(_ method: HTTPRequest.Method, _ path: String, json: String? = nil, token: String? = nil) async throws -> TestResponse {
        let response = try await client.send(method, path, json: json, token: token)
        problems += contract.validate(response, method: method, path: path)
        return response
    }

    /// `POST /internal/events` of `service` (vote, recording, feed): applied (`204`), malformed
    /// (`400`), without a service credential (`401`), from a service other than auth (`403`).
    public func callUserEvents(of service: String, deleting userID: UUID, userToken: String) async throws {
        let event = try TestEnvironment.userEventJSON(UserEvent(id: 1, type: .userDeleted, userId: userID))
        let fromAuth = try TestEnvironment.serviceToken(from: "auth", to: service)
        _ = try await call(.post, "/internal/events", json: event, token: fromAuth)
        _ = try await call(.post, "/internal/events", json: #"{"id":1,"type":"nope"}"#, token: fromAuth)
        _ = try await call(.post, "/internal/events", json: event, token: userToken)
        _ = try await call(.post, "/internal/events", json: event, token: try TestEnvironment.serviceToken(from: "feed", to: service))
    }

    /// Adds mismatches found another way (e.g. a streamed response checked by hand).
    public func record(_ problems: [String]) {
        self.problems += problems
    }

    /// Documented operations no call has exercised yet.
    public var untestedOperations: Set<String> {
        contract.operations.subtracting(contract.exercisedOperations)
    }
}
