import Foundation
import Logging
import NIOCore
import NIOPosix
import _NIOFileSystem
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Shared

/// Objects as files under a root folder (`STORAGE_PATH`): key `a/b` is the file `<root>/a/b`.
///
/// A put writes `<root>/.incoming/<random>.part`, flushes it to disk and only then renames
/// it onto the key's path, so a crash never leaves a half-written file under a real key;
/// `.part` files a crash left behind are cleared by `removeAbandonedUploads(olderThan:)`.
/// Keys cannot name anything outside the root (see `ObjectKey`), and every path is checked
/// to be lexically inside it as well. All I/O runs on NIO's file-system thread pool, never
/// on the event loops or the cooperative pool.
public struct FileSystemObjectStorage: ObjectStorage {
    public let root: FilePath
    /// The gateway's internal location serving `root` (`STORAGE_GATEWAY_PATH`), if any.
    public let gatewayPath: String?
    let fileSystem: FileSystem
    let logger: Logger
    static let incomingFolder = ".incoming"
    static let chunkLength: ByteCount = .kibibytes(128)

    /// - Parameter root: the folder holding the objects; relative paths resolve against the
    ///   working directory. Created by `prepare()` when missing.
    /// - Parameter gatewayPath: the gateway's internal location whose files are `root`'s
    ///   (e.g. `/_store/files/recording/`), to hand downloads to the gateway; nil: the
    ///   service streams them.
    public init(root: String, gatewayPath: String? = nil, logger: Logger, fileSystem: FileSystem = .shared) throws(ObjectStorageError) {
        guard !root.isEmpty, !root.utf8.contains(0) else { throw .misconfigured("STORAGE_PATH must be a folder path.") }
        var path = FilePath(root)
        if !path.isAbsolute {
            path = FilePath(FileManager.default.currentDirectoryPath).pushing(path)
        }
        self.root = path.lexicallyNormalized()
        self.gatewayPath = gatewayPath
        self.fileSystem = fileSystem
        self.logger = logger
    }

    var incoming: FilePath { root.appending(Self.incomingFolder) }

    /// The file of `key`; never outside `root`.
    func path(for key: ObjectKey) throws -> FilePath {
        guard let path = root.lexicallyResolving(FilePath(key.rawValue)), path != root else {
            throw ObjectStorageError.invalidKey(key.rawValue)
        }
        return path
    }

    /// The key's file under the gateway's location for `root` (a key is a safe relative path).
    public func gatewayTarget(for key: ObjectKey) -> String? {
        gatewayPath.map { $0 + key.rawValue }
    }

    public func prepare() async throws {
        try await mapErrors("prepare") {
            try await fileSystem.createDirectory(at: incoming, withIntermediateDirectories: true, permissions: nil)
            guard try await fileSystem.info(forFileAt: root)?.type == .directory else {
                throw ObjectStorageError.misconfigured("STORAGE_PATH \(root) is not a folder.")
            }
        }
    }

    @discardableResult
    public func put<Body: AsyncSequence & Sendable>(
        _ key: ObjectKey, body: Body, length: Int64?
    ) async throws -> ObjectInfo where Body.Element == ByteBuffer {
        let target = try path(for: key)
        let temporary = incoming.appending("\(UUID.random().apiString).part")
        return try await mapErrors("put") {
            try await fileSystem.createDirectory(at: incoming, withIntermediateDirectories: true, permissions: nil)
            do {
                // Transactional creation: the .part file itself only appears once complete.
                try await fileSystem.withFileHandle(
                    forWritingAt: temporary, options: .newFile(replaceExisting: false)
                ) { handle in
                    let written = try await handle.withBufferedWriter(capacity: .kibibytes(256)) { writer in
                        var written: Int64 = 0
                        for try await chunk in body {
                            written += Int64(chunk.readableBytes)
                            if let length, written > length {
                                throw ObjectStorageError.lengthMismatch(expected: length, actual: written)
                            }
                            _ = try await writer.write(contentsOf: chunk)
                        }
                        return written
                    }
                    if let length, written != length {
                        throw ObjectStorageError.lengthMismatch(expected: length, actual: written)
                    }
                    // Durable before it becomes visible under the key (and before a row points at it).
                    try await handle.synchronize()
                }
                try await moveIntoPlace(temporary, to: target)
            } catch {
                _ = try? await fileSystem.removeItem(at: temporary, strategy: .platformDefault, recursively: false)
                throw error
            }
            guard let info = try await head(key) else { throw ObjectStorageError.notFound(key) }
            return info
        }
    }

    /// Renames the finished upload to its key, creating the key's folder. A delete that just
    /// emptied that folder may remove it between the two (see `delete`): then again.
    private func moveIntoPlace(_ temporary: FilePath, to target: FilePath) async throws {
        for attempt in 1...3 {
            try await fileSystem.createDirectory(at: target.removingLastComponent(), withIntermediateDirectories: true, permissions: nil)
            do {
                return try await Self.moveIntoPlace(temporary, to: target)
            } catch let error as RenameError where error.errorNumber == ENOENT && attempt < 3 {
                continue
            }
        }
    }

    /// `rename(2)` on the thread pool: atomically replaces an existing object (NIO's
    /// `moveItem` refuses to).
    static func moveIntoPlace(_ source: FilePath, to destination: FilePath) async throws {
        let errorNumber: Int32 = try await NIOThreadPool.singleton.runIfActive {
            source.withPlatformString { source in
                destination.withPlatformString { destination in
                    rename(source, destination) == 0 ? 0 : errno
                }
            }
        }
        guard errorNumber == 0 else { throw RenameError(errorNumber: errorNumber) }
    }

    struct RenameError: Error {
        var errorNumber: Int32
    }

    /// Opens the file before returning, so the response's status line and the bytes come
    /// from one file: a delete racing the download either wins before (`notFound`, a `404`)
    /// or is too late to matter (the open file's bytes stay readable after the unlink).
    public func get(_ key: ObjectKey, range: ClosedRange<Int64>?) async throws -> ObjectContent {
        let path = try path(for: key)
        let opened = try await mapErrors("get") { () -> OpenedFile? in
            do {
                return OpenedFile(try await fileSystem.openFile(forReadingAt: path))
            } catch let error as FileSystemError where error.code == .notFound {
                return nil
            }
        }
        guard let file = opened else { throw ObjectStorageError.notFound(key) }
        let info: ObjectInfo
        do {
            let stat = try await mapErrors("get") { try await file.info() }
            guard stat.type == .regular else { throw ObjectStorageError.notFound(key) }
            info = ObjectInfo(key: key, size: stat.size, lastModified: Self.date(stat.lastDataModificationTime))
            if let range {
                guard range.lowerBound >= 0, range.upperBound < info.size else {
                    throw ObjectStorageError.rangeNotSatisfiable(size: info.size)
                }
            }
        } catch {
            await file.close()
            throw error
        }
        let logger = self.logger
        return ObjectContent(info: info, range: range) { consume in
            defer { file.closeSoon() }
            guard info.size > 0 else { return }
            let bytes = range ?? 0...(info.size - 1)
            try await Self.mapErrors("get", logger: logger) {
                var delivered: Int64 = 0
                for try await chunk in file.chunks(in: bytes, chunkLength: Self.chunkLength) {
                    delivered += Int64(chunk.readableBytes)
                    try await consume(chunk)
                }
                // The file changed under us (truncated in place): do not end early silently.
                guard delivered == Int64(bytes.count) else {
                    throw ObjectStorageError.lengthMismatch(expected: Int64(bytes.count), actual: delivered)
                }
            }
        }
    }

    public func head(_ key: ObjectKey) async throws -> ObjectInfo? {
        let path = try path(for: key)
        return try await mapErrors("head") {
            guard let info = try await fileSystem.info(forFileAt: path, infoAboutSymbolicLink: true), info.type == .regular else {
                return nil
            }
            return ObjectInfo(key: key, size: info.size, lastModified: Self.date(info.lastDataModificationTime))
        }
    }

    public func delete(_ key: ObjectKey) async throws {
        let path = try path(for: key)
        try await mapErrors("delete") {
            _ = try await fileSystem.removeItem(at: path, strategy: .platformDefault, recursively: false)
        }
        await removeEmptyFolders(above: path)
    }

    /// Removes the folders a delete left empty (`feeds/<id>/` once its last image goes), up to
    /// but not including the root: `rmdir(2)` removes only an empty folder, so one that
    /// another put has just filled stays; best effort (a leftover is harmless).
    private func removeEmptyFolders(above path: FilePath) async {
        let root = self.root
        _ = try? await NIOThreadPool.singleton.runIfActive {
            var folder = path.removingLastComponent()
            while folder != root, folder.starts(with: root), folder.components.count > root.components.count {
                let removed = folder.withPlatformString { rmdir($0) == 0 }
                guard removed else { break }
                folder = folder.removingLastComponent()
            }
        }
    }

    public func list(prefix: String, startAfter: ObjectKey?, limit: Int) async throws -> [ObjectInfo] {
        guard ObjectKey.isValidPrefix(prefix) else { throw ObjectStorageError.invalidKey(prefix) }
        guard limit > 0 else { return [] }
        // Walk the deepest folder the prefix names completely; filter the rest by string.
        let folder = prefix.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let base = folder.isEmpty ? root : root.appending(folder)
        let keys: [ObjectKey] = try await mapErrors("list") {
            guard try await fileSystem.info(forFileAt: base, infoAboutSymbolicLink: true)?.type == .directory else { return [] }
            var keys: [ObjectKey] = []
            try await fileSystem.withDirectoryHandle(atPath: base) { directory in
                for try await entry in directory.listContents(recursive: true) where entry.type == .regular {
                    var relative = entry.path
                    guard relative.removePrefix(root) else { continue }
                    // Anything that is not a valid key (.incoming, stray files) is not an object.
                    guard let key = try? ObjectKey(relative.string), key.rawValue.hasPrefix(prefix) else { continue }
                    if let startAfter, key <= startAfter { continue }
                    keys.append(key)
                }
            }
            return keys
        }
        var page: [ObjectInfo] = []
        for key in keys.sorted() {
            guard page.count < limit else { break }
            if let info = try await head(key) { page.append(info) }
        }
        return page
    }

    @discardableResult
    public func removeAbandonedUploads(olderThan date: Date) async throws -> Int {
        try await mapErrors("removeAbandonedUploads") {
            guard try await fileSystem.info(forFileAt: incoming)?.type == .directory else { return 0 }
            var stale: [FilePath] = []
            try await fileSystem.withDirectoryHandle(atPath: incoming) { directory in
                for try await entry in directory.listContents() {
                    guard let info = try await fileSystem.info(forFileAt: entry.path, infoAboutSymbolicLink: true) else { continue }
                    if Self.date(info.lastDataModificationTime) < date { stale.append(entry.path) }
                }
            }
            for path in stale {
                _ = try await fileSystem.removeItem(at: path, strategy: .platformDefault, recursively: true)
            }
            if !stale.isEmpty { logger.info("removed abandoned uploads", metadata: ["count": "\(stale.count)"]) }
            return stale.count
        }
    }

    static func date(_ time: FileInfo.Timespec) -> Date {
        Date(timeIntervalSince1970: Double(time.seconds) + Double(time.nanoseconds) / 1e9)
    }

    func mapErrors<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        try await Self.mapErrors(operation, logger: logger, body)
    }

    /// Disk trouble (I/O error, full disk, missing mount) is the store being unavailable: `503`.
    static func mapErrors<T>(_ operation: String, logger: Logger, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as FileSystemError {
            throw unavailable(operation, error, logger: logger)
        } catch let error as RenameError {
            throw unavailable(operation, error, logger: logger)
        }
    }

    static func unavailable(_ operation: String, _ error: any Error, logger: Logger) -> APIError {
        logger.error("file storage failed", metadata: ["operation": "\(operation)", "error": "\(error)"])
        return APIError.unavailable("The file store is unavailable. Try again shortly.")
    }
}

/// A file opened for a download. Closed once the body has been read; if the content is
/// dropped unread (the client left before the body started), the descriptor is closed when
/// the last reference goes (NIO's handle must never be dropped open).
final class OpenedFile: Sendable {
    private let handle: Mutex<ReadFileHandle?>

    init(_ handle: ReadFileHandle) {
        self.handle = Mutex(handle)
    }

    func info() async throws -> FileInfo {
        guard let handle = handle.withLock({ $0 }) else { throw CancellationError() }  // closed: the download is over
        return try await handle.info()
    }

    func chunks(in range: ClosedRange<Int64>, chunkLength: ByteCount) -> FileChunks {
        // Only called while open (before `closeSoon`).
        handle.withLock { $0! }.readChunks(in: range, chunkLength: chunkLength)
    }

    func close() async {
        guard let handle = handle.withLock({ state in defer { state = nil }; return state }) else { return }
        try? await handle.close()
    }

    /// Closes without waiting (from a `defer`).
    func closeSoon() {
        guard let handle = handle.withLock({ state in defer { state = nil }; return state }) else { return }
        Task { try? await handle.close() }
    }

    deinit {
        guard let handle = handle.withLock({ state in defer { state = nil }; return state }) else { return }
        if let descriptor = try? handle.detachUnsafeFileDescriptor() { try? descriptor.close() }
    }
}
