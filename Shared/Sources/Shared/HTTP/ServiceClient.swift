import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// The process's HTTP client for calls to other services, run as a service so it is shut
/// down with the application. Its pool is sized for service-to-service traffic (the
/// library's default of 8 connections per host queues requests under load).
public final class ServiceHTTPClient: Service, Sendable {
    public let client: HTTPClient

    public init(maxConnectionsPerHost: Int = 64, connectTimeout: TimeAmount = .seconds(1), readTimeout: TimeAmount = .seconds(5)) {
        var configuration = HTTPClient.Configuration(timeout: .init(connect: connectTimeout, read: readTimeout))
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = maxConnectionsPerHost
        configuration.connectionPool.idleTimeout = .seconds(30)
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}

/// Calls one other service: a fresh service credential on every call, the caller's
/// request id forwarded, and a deadline. Errors stay with the caller to map or degrade.
public struct ServiceClient: Sendable {
    public let serviceName: String
    public let baseURL: String
    let http: HTTPClient
    let credentials: ServiceCredentials
    let timeout: TimeAmount

    public init(serviceName: String, baseURL: String, http: HTTPClient, credentials: ServiceCredentials, timeout: TimeAmount = .seconds(2)) {
        self.serviceName = serviceName
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.http = http
        self.credentials = credentials
        self.timeout = timeout
    }

    public struct Reply: Sendable {
        public var status: HTTPResponseStatus
        public var body: ByteBuffer
    }

    /// Sends `method path` and collects a reply of at most `maxBodyBytes`.
    public func send(
        _ method: HTTPMethod, _ path: String, body: ByteBuffer? = nil, requestID: String?, logger: Logger,
        maxBodyBytes: Int = 1 << 20
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(try credentials.token(for: serviceName))")
        if let requestID { request.headers.add(name: "X-Request-ID", value: requestID) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(body)
        }
        let response = try await http.execute(request, timeout: timeout, logger: logger)
        let bytes = try await response.body.collect(upTo: maxBodyBytes)
        return Reply(status: response.status, body: bytes)
    }
}
