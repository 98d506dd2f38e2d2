import Foundation
import Hummingbird
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Shared

/// Reads a `multipart/form-data` request body (RFC 7578) as it arrives: one part after
/// another, and each part's bytes chunk by chunk, so a handler can stream file parts (into
/// an object store) while it keeps small fields in memory. Memory does not grow with the body.
///
/// Everything that is not a part's bytes (preamble, delimiters, part headers) is bounded by
/// `maxOverheadBytes` (`413` beyond it); bounding the bytes of each part is the caller's job
/// (`text(maxBytes:field:)` for fields, a byte limit for files).
///
/// Errors are `APIError`s: `400 validation_failed` for a body that is not multipart,
/// `400 upload_incomplete` when the body ends before its closing delimiter (the client went away).
///
/// The delimiter is found with `memchr`/`memcmp`, so parsing costs about a copy of the body
/// even in debug builds. Not `Sendable`: one task reads the body.
public final class MultipartFormReader {
    /// What a part's headers say about it.
    public struct Part: Sendable, Equatable {
        /// `name` of its `Content-Disposition`.
        public var name: String?
        /// `filename*` (RFC 8187) or `filename` of its `Content-Disposition`.
        public var fileName: String?
        /// Its `Content-Type`, as sent.
        public var contentType: String?

        public init(name: String?, fileName: String?, contentType: String?) {
            self.name = name
            self.fileName = fileName
            self.contentType = contentType
        }
    }

    private enum Phase {
        /// Before the first delimiter.
        case preamble
        /// Just after a delimiter: `--` ends the body, CRLF starts a part's headers.
        case afterDelimiter
        case headers
        /// Inside a part's content.
        case content
        /// After the closing delimiter.
        case done
    }

    private var iterator: RequestBody.AsyncIterator
    /// Unconsumed bytes of the body.
    private var buffer: ByteBuffer
    private var phase = Phase.preamble
    /// `CRLF--boundary`: what ends a part (and, after a virtual CRLF, what starts the first).
    private let delimiter: [UInt8]
    private let maxOverheadBytes: Int
    private var overheadBytes = 0
    private var endOfBody = false

    /// - Parameters:
    ///   - boundary: from the request's `Content-Type` (see `boundary(in:)`).
    ///   - maxOverheadBytes: bytes of preamble, delimiters and part headers allowed in the whole body.
    public init(body: RequestBody, boundary: String, maxOverheadBytes: Int = 64 * 1024) {
        self.iterator = body.makeAsyncIterator()
        self.delimiter = Array("\r\n--\(boundary)".utf8)
        self.maxOverheadBytes = maxOverheadBytes
        // The first delimiter may open the body without a CRLF before it.
        self.buffer = ByteBuffer(string: "\r\n")
        self.overheadBytes = -2
    }

    /// The boundary of a `multipart/form-data` content type; nil for any other media type.
    /// Throws `400` for a multipart type without a usable boundary.
    public static func boundary(in contentType: String?) throws(APIError) -> String? {
        guard let contentType, mediaType(contentType) == "multipart/form-data" else { return nil }
        guard let boundary = HeaderParameters.parse(contentType)["boundary"], (1...70).contains(boundary.utf8.count) else {
            throw APIError.validation(field: "Content-Type", "multipart/form-data needs a boundary parameter")
        }
        return boundary
    }

    /// The lower-cased `type/subtype` of a `Content-Type` value, without parameters.
    public static func mediaType(_ contentType: String) -> String {
        contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first?
            .trimmingCharacters(in: .whitespaces).lowercased() ?? ""
    }

    /// Moves to the next part, skipping what is left of the current one; nil after the
    /// closing delimiter.
    public func nextPart() async throws -> Part? {
        while true {
            switch phase {
            case .content:
                while try await nextChunk() != nil {}
            case .preamble:
                switch Self.find(delimiter, in: buffer) {
                case .found(let index):
                    try consumeOverhead(index + delimiter.count)
                    phase = .afterDelimiter
                case .partial(let index):
                    try consumeOverhead(index)
                    guard try await readMore() else { throw Self.malformed }
                case .absent:
                    try consumeOverhead(buffer.readableBytes)
                    guard try await readMore() else { throw Self.malformed }
                }
            case .afterDelimiter:
                // Transport padding (spaces, tabs) may follow a delimiter.
                while let byte = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self), byte == 0x20 || byte == 0x09 {
                    try consumeOverhead(1)
                }
                guard buffer.readableBytes >= 2 else {
                    guard try await readMore() else { throw Self.incomplete }
                    continue
                }
                let next = buffer.getBytes(at: buffer.readerIndex, length: 2) ?? []
                try consumeOverhead(2)
                if next == [0x2D, 0x2D] {  // "--": the closing delimiter; the epilogue is not read.
                    phase = .done
                } else if next == [0x0D, 0x0A] {
                    phase = .headers
                } else {
                    throw Self.malformed
                }
            case .headers:
                // The header block ends with an empty line; a part may have no headers at all.
                if buffer.readableBytesView.starts(with: [0x0D, 0x0A]) {
                    try consumeOverhead(2)
                    phase = .content
                    return Part(name: nil, fileName: nil, contentType: nil)
                }
                switch Self.find(Self.headersEnd, in: buffer) {
                case .found(let index):
                    let block = buffer.getString(at: buffer.readerIndex, length: index) ?? ""
                    try consumeOverhead(index + Self.headersEnd.count)
                    phase = .content
                    return try Self.part(fromHeaders: block)
                case .partial, .absent:
                    guard overheadBytes + buffer.readableBytes <= maxOverheadBytes else { throw Self.tooMuchOverhead }
                    guard try await readMore() else { throw Self.incomplete }
                }
            case .done:
                return nil
            }
        }
    }

    /// The next chunk of the current part's bytes; nil at the part's end.
    public func nextChunk() async throws -> ByteBuffer? {
        while phase == .content {
            switch Self.find(delimiter, in: buffer) {
            case .found(0):
                try consumeOverhead(delimiter.count)
                phase = .afterDelimiter
                return nil
            case .found(let index):
                return buffer.readSlice(length: index)
            case .partial(let index) where index > 0:
                return buffer.readSlice(length: index)
            case .absent where buffer.readableBytes > 0:
                return buffer.readSlice(length: buffer.readableBytes)
            default:
                // Nothing to hand out yet, or only what may be the start of the delimiter.
                guard try await readMore() else { throw Self.incomplete }
            }
        }
        return nil
    }

    /// The rest of the current part as UTF-8 text; `400` naming `field` past `maxBytes`.
    public func text(maxBytes: Int, field: String) async throws -> String {
        var bytes: [UInt8] = []
        while let chunk = try await nextChunk() {
            guard bytes.count + chunk.readableBytes <= maxBytes else {
                throw APIError.validation(field: field, "is too long")
            }
            bytes += chunk.readableBytesView
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public static let incomplete = APIError(
        .badRequest, code: "upload_incomplete", detail: "The request body ended before the multipart body did.")

    static let malformed = APIError.validation(field: "body", "is not valid multipart/form-data")

    static let tooMuchOverhead = APIError(
        .contentTooLarge, code: "payload_too_large", detail: "The multipart body carries too much besides its parts' contents.")

    static let headersEnd: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A]

    /// Appends the next chunk of the body to the buffer; false at the end of the body.
    private func readMore() async throws -> Bool {
        guard !endOfBody else { return false }
        let chunk: ByteBuffer?
        do {
            chunk = try await iterator.next()
        } catch {
            // A connection that breaks mid-body is the client going away, not a server failure.
            throw Self.incomplete
        }
        guard var chunk else {
            endOfBody = true
            return false
        }
        buffer.discardReadBytes()
        buffer.writeBuffer(&chunk)
        return true
    }

    private func consumeOverhead(_ count: Int) throws {
        buffer.moveReaderIndex(forwardBy: count)
        overheadBytes += count
        guard overheadBytes <= maxOverheadBytes else { throw Self.tooMuchOverhead }
    }

    enum Match: Equatable {
        /// The needle starts here.
        case found(Int)
        /// The bytes from here to the end are the start of the needle.
        case partial(Int)
        case absent
    }

    /// Where `needle` (which starts with CR) first occurs in the readable bytes of `buffer`.
    static func find(_ needle: [UInt8], in buffer: ByteBuffer) -> Match {
        buffer.withUnsafeReadableBytes { bytes -> Match in
            guard let base = bytes.baseAddress else { return .absent }
            var start = 0
            while start < bytes.count, let hit = memchr(base + start, Int32(needle[0]), bytes.count - start) {
                let index = base.distance(to: UnsafeRawPointer(hit))
                let available = min(needle.count, bytes.count - index)
                let equal = needle.withUnsafeBytes { memcmp(hit, $0.baseAddress!, available) == 0 }
                if equal { return available == needle.count ? .found(index) : .partial(index) }
                start = index + 1
            }
            return .absent
        }
    }

    /// `Name: value` lines separated by CRLF (obsolete folded lines are joined).
    static func part(fromHeaders block: String) throws -> Part {
        var headers: [(name: String, value: String)] = []
        for line in block.components(separatedBy: "\r\n") {
            if let first = line.unicodeScalars.first, first == " " || first == "\t", !headers.isEmpty {
                headers[headers.count - 1].value += " " + line.trimmingCharacters(in: .whitespaces)
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { throw malformed }
            let name = String(line[..<colon])
            guard !name.isEmpty, name.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else { throw malformed }
            headers.append((name.lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var part = Part(name: nil, fileName: nil, contentType: nil)
        for (name, value) in headers {
            switch name {
            case "content-disposition":
                let parameters = HeaderParameters.parse(value)
                part.name = parameters["name"]
                part.fileName = parameters["filename*"].flatMap(HeaderParameters.decodeExtendedValue) ?? parameters["filename"]
            case "content-type":
                part.contentType = value
            default:
                break
            }
        }
        return part
    }
}

/// The parameters of a header value such as `form-data; name="title"` or
/// `multipart/form-data; boundary=abc`: lower-cased names to values (quotes removed).
public enum HeaderParameters {
    public static func parse(_ header: String) -> [String: String] {
        var result: [String: String] = [:]
        let scalars = Array(header.unicodeScalars)
        var index = scalars.firstIndex(of: ";") ?? scalars.endIndex
        while index < scalars.endIndex {
            index += 1  // past ';'
            while index < scalars.endIndex, scalars[index] == " " || scalars[index] == "\t" { index += 1 }
            var name = ""
            while index < scalars.endIndex, scalars[index] != "=", scalars[index] != ";" {
                name.unicodeScalars.append(scalars[index])
                index += 1
            }
            name = name.trimmingCharacters(in: .whitespaces).lowercased()
            var value = ""
            if index < scalars.endIndex, scalars[index] == "=" {
                index += 1
                while index < scalars.endIndex, scalars[index] == " " { index += 1 }
                if index < scalars.endIndex, scalars[index] == "\"" {
                    index += 1
                    while index < scalars.endIndex, scalars[index] != "\"" {
                        // Only \" and \\ are escapes: browsers send Windows paths (C:\x\y.mp3) as they are.
                        if scalars[index] == "\\", index + 1 < scalars.endIndex, scalars[index + 1] == "\"" || scalars[index + 1] == "\\" {
                            index += 1
                        }
                        value.unicodeScalars.append(scalars[index])
                        index += 1
                    }
                    // Skip to the next parameter.
                    while index < scalars.endIndex, scalars[index] != ";" { index += 1 }
                } else {
                    while index < scalars.endIndex, scalars[index] != ";" {
                        value.unicodeScalars.append(scalars[index])
                        index += 1
                    }
                    value = value.trimmingCharacters(in: .whitespaces)
                }
            }
            if !name.isEmpty, result[name] == nil { result[name] = value }
        }
        return result
    }

    /// RFC 8187 `UTF-8''percent%20encoded`.
    public static func decodeExtendedValue(_ value: String) -> String? {
        let parts = value.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].lowercased() == "utf-8" else { return nil }
        return String(parts[2]).removingPercentEncoding
    }
}
