import Logging
import ObjectStore
import Shared

/// Deleting objects whose rows are gone (or were never written).
enum PostImageObjects {
    static func remove(_ keys: [String], from storage: any ObjectStorage, logger: Logger, reason: String) async {
        for key in keys {
            do {
                try await storage.delete(try ObjectKey(key))
            } catch {
                logger.warning(
                    "could not delete an image object; the sweeper will", metadata: ["key": "\(key)", "reason": "\(reason)", "error": "\(error)"])
            }
        }
    }
}
