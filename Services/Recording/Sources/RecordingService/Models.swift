import Foundation
import Hummingbird
import Shared

/// A recording as stored: its metadata row. The bytes live in the object store under
/// `objectKey`, a key made from the recording's id, never from what the client sent.
struct RecordingRecord: Sendable, Equatable {
    var id: UUID
    var ownerID: UUID
    var title: String
    var fileName: String
    var contentType: String
    var sizeBytes: Int64
    var sha256: String
    var objectKey: String
    var createdAt: Date
    var deletedAt: Date?
}

/// A row of a list page, with the exact position of its sort key for the next cursor.
struct RecordingListRow: Sendable {
    var record: RecordingRecord
    var cursor: PageCursor
}

/// The contract's `recording`.
struct RecordingResponse: ResponseCodable, Sendable, Equatable {
    var id: String
    var title: String
    var fileName: String
    var contentType: String
    var sizeBytes: Int64
    var sha256: String
    var createdAt: Date
    var contentUrl: String

    init(_ record: RecordingRecord) {
        self.id = record.id.apiString
        self.title = record.title
        self.fileName = record.fileName
        self.contentType = record.contentType
        self.sizeBytes = record.sizeBytes
        self.sha256 = record.sha256
        self.createdAt = record.createdAt
        self.contentUrl = RecordingRules.contentURL(record.id)
    }
}

struct RenameRequest: Decodable {
    var title: String
}

/// The input rules of the contract, in one place.
enum RecordingRules {
    static let titleLength = 1...200
    static let fileNameLength = 1...255
    /// Used when a multipart file part names no file.
    static let defaultFileName = "recording"

    static func objectKey(_ id: UUID) -> String {
        "recordings/\(id.apiString)"
    }

    /// The gateway path of the bytes (owner only; never a public link).
    static func contentURL(_ id: UUID) -> String {
        "/recordings/\(id.apiString)/content"
    }

    static func normalizedTitle(_ title: String) -> String {
        title.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func titleError(_ title: String) -> FieldError? {
        titleLength.contains(title.count) ? nil : FieldError(field: "title", message: "must be 1 to 200 characters after trimming")
    }

    /// The last path component (clients may send `C:\music\a.mp3`), without control
    /// characters, trimmed; nil when nothing usable is left.
    static func sanitizedFileName(_ raw: String) -> String? {
        let lastComponent = raw.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        var cleaned = ""
        cleaned.unicodeScalars.append(contentsOf: lastComponent.unicodeScalars.filter {
            !($0.value < 0x20 || $0.value == 0x7F || (0x80...0x9F).contains($0.value))
        })
        let trimmed = cleaned.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, trimmed != ".", trimmed != ".." else { return nil }
        return String(trimmed.prefix(fileNameLength.upperBound))
    }

    /// `audio/<subtype>` (parameters dropped, lower-cased), or nil for anything else.
    static func audioContentType(_ header: String) -> String? {
        let essence = header.split(separator: ";", maxSplits: 1).first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        } ?? ""
        let parts = essence.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0] == "audio", !parts[1].isEmpty, parts[1] != "*",
            parts[1].utf8.count <= 100, parts[1].utf8.allSatisfy(isTokenByte)
        else { return nil }
        return essence
    }

    /// RFC 9110 `tchar`.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }

    static let notFound = APIError.notFound("recording_not_found", "No such recording.")
}

/// `POST /recordings/{id}/link`: a gateway path that serves the content without a token
/// until `expiresAt`.
struct ContentLinkResponse: ResponseCodable, Sendable {
    var url: String
    var expiresAt: Date
}
