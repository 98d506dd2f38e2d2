import Foundation
import Shared

/// Short-lived signed links to a recording's content, for players that cannot send an
/// `Authorization` header (the browser's audio element): `POST /recordings/{id}/link` gives
/// `/recordings/{id}/content?token=...`, good for `RECORDING_LINK_TTL_SECONDS` and for that
/// recording of that owner only. The token is `owner (16 bytes) | expiry (8, big-endian unix
/// seconds) | HMAC-SHA256(key, recording | owner | expiry)`, base64url; the key is derived
/// from SERVICE_TOKEN_SECRET, so no new secret is needed and no other use of that secret can
/// produce one. Nothing is stored: a link works until it expires (minutes), and stops at
/// once when the recording is trashed or its owner deleted (the lookup finds nothing).
struct ContentLinks: Sendable {
    let key: [UInt8]
    let lifetime: Duration

    init(serviceTokenSecret: String, lifetime: Duration) {
        self.key = Crypto.hmacSHA256(key: Array(serviceTokenSecret.utf8), data: "recording content links v1")
        self.lifetime = lifetime
    }

    struct Link: Sendable {
        var token: String
        var expiresAt: Date
    }

    func make(recordingID: UUID, ownerID: UUID, now: Date = Date()) -> Link {
        let expiry = UInt64(now.timeIntervalSince1970.rounded(.down)) + UInt64(lifetime.components.seconds)
        let signed = Self.bytes(ownerID) + Self.bytes(expiry)
        let token = Base64URL.encode(signed + mac(recordingID: recordingID, signed: signed))
        return Link(token: token, expiresAt: Date(timeIntervalSince1970: TimeInterval(expiry)))
    }

    enum Check: Equatable {
        case valid(ownerID: UUID)
        case expired
        case invalid
    }

    func check(token: String, recordingID: UUID, now: Date = Date()) -> Check {
        guard let bytes = Base64URL.decode(token), bytes.count == 16 + 8 + 32 else { return .invalid }
        let signed = Array(bytes[0..<24])
        guard Crypto.constantTimeEquals(Array(bytes[24...]), mac(recordingID: recordingID, signed: signed)) else { return .invalid }
        let owner = signed.withUnsafeBytes { UUID(uuid: $0.loadUnaligned(as: uuid_t.self)) }
        let expiry = signed[16..<24].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard Double(expiry) > now.timeIntervalSince1970 else { return .expired }
        return .valid(ownerID: owner)
    }

    private func mac(recordingID: UUID, signed: [UInt8]) -> [UInt8] {
        Crypto.hmacSHA256(key: key, data: Self.bytes(recordingID) + signed)
    }

    private static func bytes(_ id: UUID) -> [UInt8] {
        withUnsafeBytes(of: id.uuid) { Array($0) }
    }

    private static func bytes(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) }
    }
}
