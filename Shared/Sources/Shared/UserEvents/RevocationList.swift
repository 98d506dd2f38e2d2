import Foundation
import Synchronization

/// This instance's view of the users and sessions whose access tokens no longer count,
/// checked after every token's signature: a lookup in memory, no database call.
///
/// Filled from the service's `revoked_tokens` table at start and after every gap in the
/// notifications, and from each `NOTIFY` in between (`UserEventListener`). An entry lives as
/// long as a token issued before it could (access-token lifetime plus leeway), then goes.
public final class RevocationList: Sendable {
    public enum Kind: String, Sendable {
        case user
        case session
    }

    struct Entry: Hashable {
        var kind: Kind
        var id: UUID
    }

    private let entries = Mutex<[Entry: Date]>([:])

    public init() {}

    /// Whether a token of `userID` (session `sessionID`) has been revoked.
    public func isRevoked(userID: UUID, sessionID: UUID?) -> Bool {
        entries.withLock { entries in
            if entries[Entry(kind: .user, id: userID)] != nil { return true }
            if let sessionID, entries[Entry(kind: .session, id: sessionID)] != nil { return true }
            return false
        }
    }

    public var count: Int { entries.withLock { $0.count } }

    func add(_ kind: Kind, _ ids: [UUID], until expiry: Date) {
        entries.withLock { entries in
            for id in ids {
                let entry = Entry(kind: kind, id: id)
                entries[entry] = max(entries[entry] ?? expiry, expiry)
            }
        }
    }

    /// Everything live, as loaded from the table (which has every entry ever notified);
    /// entries whose tokens have all expired go (the listener reloads every few minutes).
    func replace(with loaded: [(Kind, UUID, Date)]) {
        var fresh: [Entry: Date] = [:]
        for (kind, id, expiry) in loaded { fresh[Entry(kind: kind, id: id)] = expiry }
        entries.withLock { entries in
            // Notifications that arrived while the load ran are in the table too, except
            // those committed after its snapshot: keep them.
            for (entry, expiry) in entries where fresh[entry] == nil && expiry > Date() { fresh[entry] = expiry }
            entries = fresh
        }
    }
}
