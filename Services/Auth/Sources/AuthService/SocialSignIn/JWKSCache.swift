import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Shared

/// A provider's signing keys, fetched (through discovery unless a JWKS URL is configured)
/// and kept: `Cache-Control: max-age` says how long (within 1 min .. 1 day; 1 h without
/// it). A `kid` it does not know makes it fetch again, at most once a minute (a rotation);
/// while the provider is unreachable it serves the keys it has, and only when it never had
/// any is the answer `503`. Concurrent sign-ins share one fetch.
actor JWKSCache {
    let provider: OIDCProvider
    let http: HTTPClient
    let logger: Logger
    let timeout: TimeAmount
    private var keys: [JWKPublicKey] = []
    private var freshUntil: Date = .distantPast
    private var lastFetch: Date = .distantPast
    private var fetching: Task<[JWKPublicKey], any Error>?
    /// Discovery's `authorization_endpoint`, once a fetch went through discovery.
    private var discoveredAuthorizationEndpoint: String?
    /// The least time between two fetches for an unknown `kid` (`OIDC_KEYS_REFETCH_SECONDS`):
    /// tokens with made-up `kid`s must not turn into a flood of requests to the provider.
    let refetchInterval: TimeInterval

    init(provider: OIDCProvider, http: HTTPClient, logger: Logger, refetchInterval: TimeInterval = 60, timeout: TimeAmount = .seconds(5)) {
        self.provider = provider
        self.http = http
        self.logger = logger
        self.refetchInterval = refetchInterval
        self.timeout = timeout
    }

    /// The key for a token's `kid` (or the only key, when the token names none).
    func key(id kid: String?) async throws -> JWKPublicKey {
        let now = Date()
        if keys.isEmpty || now >= freshUntil {
            await refresh(required: keys.isEmpty)
        } else if find(kid) == nil, now.timeIntervalSince(lastFetch) >= refetchInterval {
            await refresh(required: false)
        }
        guard !keys.isEmpty else { throw APIError.unavailable("The sign-in provider's keys cannot be fetched. Try again shortly.") }
        guard let key = find(kid) else { throw IDTokenError("no key \(kid ?? "(no kid)") among \(keys.count)") }
        return key
    }

    /// Where a browser signs in: configured, or from discovery (fetched with the keys when
    /// not yet known, no more often than an unknown `kid` would; a fetch under way is waited
    /// for). nil when neither says.
    func authorizationEndpoint() async -> String? {
        if let configured = provider.authorizationURL { return configured }
        guard provider.jwksURL == nil else { return nil }
        if discoveredAuthorizationEndpoint == nil, fetching != nil || Date().timeIntervalSince(lastFetch) >= refetchInterval {
            await refresh(required: false)
        }
        return discoveredAuthorizationEndpoint
    }

    private func find(_ kid: String?) -> JWKPublicKey? {
        guard let kid else { return keys.count == 1 ? keys[0] : nil }
        return keys.first { $0.keyID == kid }
    }

    /// Fetches once for every caller waiting now; a failure keeps the old keys.
    private func refresh(required: Bool) async {
        let task: Task<[JWKPublicKey], any Error>
        if let fetching {
            task = fetching
        } else {
            lastFetch = Date()
            task = Task { try await self.fetch() }
            fetching = task
        }
        defer { if fetching == task { fetching = nil } }
        do {
            keys = try await task.value
        } catch {
            // Without any key this provider cannot sign anyone in: louder.
            logger.log(level: required ? .error : .warning, "could not fetch the provider's keys", metadata: [
                "provider": "\(provider.name)", "error": "\(error)",
            ])
            // Keep serving what we have; try again on a later sign-in, not on every one.
            freshUntil = Date().addingTimeInterval(refetchInterval)
        }
    }

    private func fetch() async throws -> [JWKPublicKey] {
        var url = provider.jwksURL
        if url == nil {
            let discovery = try await get("\(provider.issuer.hasSuffix("/") ? String(provider.issuer.dropLast()) : provider.issuer)/.well-known/openid-configuration")
            guard case .object(let document) = JSONValue.parse(discovery.body),
                  document["issuer"]?.stringValue == provider.issuer, let jwksURI = document["jwks_uri"]?.stringValue
            else { throw IDTokenError("discovery document without this issuer or a jwks_uri") }
            url = jwksURI
            discoveredAuthorizationEndpoint = document["authorization_endpoint"]?.stringValue
        }
        let (body, maxAge) = try await get(url!)
        guard case .object(let set) = JSONValue.parse(body), let entries = set["keys"]?.arrayValue else {
            throw IDTokenError("JWKS without keys")
        }
        var loaded: [JWKPublicKey] = []
        for entry in entries {
            guard let jwk = entry.objectValue else { continue }
            do {
                loaded.append(try JWKPublicKey(jwk: jwk))
            } catch {
                // Encryption keys, other curves: skipped, never used to verify.
                logger.debug("JWKS key skipped", metadata: ["provider": "\(provider.name)", "kid": "\(jwk["kid"]?.stringValue ?? "-")", "reason": "\(error)"])
            }
        }
        guard !loaded.isEmpty else { throw IDTokenError("JWKS has no usable signing key") }
        freshUntil = Date().addingTimeInterval(min(86_400, max(60, maxAge ?? 3600)))
        logger.info("provider keys fetched", metadata: ["provider": "\(provider.name)", "keys": "\(loaded.count)"])
        return loaded
    }

    private func get(_ url: String) async throws -> (body: [UInt8], maxAge: TimeInterval?) {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        let response = try await http.execute(request, timeout: timeout)
        guard response.status == .ok else { throw IDTokenError("\(url): HTTP \(response.status.code)") }
        let body = try await response.body.collect(upTo: 512 * 1024)
        let maxAge = response.headers["Cache-Control"].lazy.flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            .first { $0.hasPrefix("max-age=") }.flatMap { TimeInterval($0.dropFirst("max-age=".count)) }
        return (Array(buffer: body), maxAge)
    }
}
