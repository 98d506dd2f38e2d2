import Foundation
import Hummingbird
import NIOCore
import ObjectStore
import Shared
import TestSupport
import Testing

/// A request body that arrives in chunks of `size` bytes.
private func body(_ bytes: [UInt8], chunkSize size: Int) -> RequestBody {
    let (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
    var offset = 0
    while offset < bytes.count {
        continuation.yield(ByteBuffer(bytes: bytes[offset..<min(offset + size, bytes.count)]))
        offset += size
    }
    continuation.finish()
    return RequestBody(asyncSequence: stream)
}

private struct ReadPart: Equatable {
    var part: MultipartFormReader.Part
    var bytes: [UInt8]
}

private func readAll(_ reader: MultipartFormReader) async throws -> [ReadPart] {
    var parts: [ReadPart] = []
    while let part = try await reader.nextPart() {
        var bytes: [UInt8] = []
        while let chunk = try await reader.nextChunk() { bytes += chunk.readableBytesView }
        parts.append(ReadPart(part: part, bytes: bytes))
    }
    return parts
}

private let boundary = "XyZ-boundary-42"

/// File bytes full of near-delimiters: CRLFs, dashes and a boundary without its leading CRLF.
private let trickyFile: [UInt8] = Array("\r\n\r\n--XyZ-bound\r\n-\r\r\n--XyZ-boundary-4 X--XyZ-boundary-42\r".utf8) + [0, 255, 13, 10]

private let sample: [UInt8] = Array("""
    preamble to ignore\r
    --\(boundary)\r
    Content-Disposition: form-data; name="title"\r
    \r
    Hello, wörld\r
    --\(boundary)\r
    Content-Disposition: form-data; name="images"; filename="plain.bin"; filename*=UTF-8''caf%C3%A9.png\r
    Content-Type: image/png\r
    \r

    """.utf8) + trickyFile + Array("""
    \r
    --\(boundary)\r
    content-disposition: form-data; name="empty"\r
    \r
    \r
    --\(boundary)--\r
    epilogue to ignore
    """.utf8)

@Suite("Shared: streaming multipart reader")
struct MultipartFormReaderTests {
    @Test(arguments: [1, 2, 3, 5, 17, 64, 100_000])
    func readsPartsWhateverTheChunking(chunkSize: Int) async throws {
        let reader = MultipartFormReader(body: body(sample, chunkSize: chunkSize), boundary: boundary)
        let parts = try await readAll(reader)
        #expect(parts == [
            ReadPart(part: .init(name: "title", fileName: nil, contentType: nil), bytes: Array("Hello, wörld".utf8)),
            ReadPart(part: .init(name: "images", fileName: "café.png", contentType: "image/png"), bytes: trickyFile),
            ReadPart(part: .init(name: "empty", fileName: nil, contentType: nil), bytes: []),
        ])
    }

    @Test func movingOnSkipsTheRestOfAPartAndTextIsBounded() async throws {
        let reader = MultipartFormReader(body: body(sample, chunkSize: 7), boundary: boundary)
        #expect(try await reader.nextPart()?.name == "title")
        // Not read: skipped by the next call.
        #expect(try await reader.nextPart()?.name == "images")
        await #expect(throws: APIError.self) { try await reader.text(maxBytes: 10, field: "images") }

        let again = MultipartFormReader(body: body(sample, chunkSize: 7), boundary: boundary)
        _ = try await again.nextPart()
        #expect(try await again.text(maxBytes: 100, field: "title") == "Hello, wörld")
    }

    @Test func aBodyThatEndsInsideAPartIsIncomplete() async throws {
        for cut in [60, 200, sample.count - 40] {
            let reader = MultipartFormReader(body: body(Array(sample.prefix(cut)), chunkSize: 16), boundary: boundary)
            do {
                _ = try await readAll(reader)
                Issue.record("no error for a body cut at \(cut)")
            } catch let error as APIError {
                #expect(error.code == "upload_incomplete", "cut at \(cut)")
            }
        }
    }

    @Test func tooMuchBesidesThePartsIsTooLarge() async throws {
        let header = "--\(boundary)\r\nContent-Disposition: form-data; name=\"f\"; filename=\"\(String(repeating: "a", count: 5000))\"\r\n\r\nx\r\n"
        let reader = MultipartFormReader(body: body(Array(header.utf8), chunkSize: 1000), boundary: boundary, maxOverheadBytes: 4096)
        do {
            _ = try await readAll(reader)
            Issue.record("no error")
        } catch let error as APIError {
            #expect(error.status == .contentTooLarge)
        }
    }

    @Test func garbageIsNotMultipart() async throws {
        let reader = MultipartFormReader(body: body(Array("--\(boundary)\r\nno colon here\r\n\r\n".utf8), chunkSize: 8), boundary: boundary)
        await #expect(throws: APIError.self) { _ = try await readAll(reader) }
    }

    @Test func boundaryFromTheContentType() throws {
        #expect(try MultipartFormReader.boundary(in: "multipart/form-data; boundary=abc") == "abc")
        #expect(try MultipartFormReader.boundary(in: #"Multipart/Form-Data; charset=utf-8; boundary="a b;c""#) == "a b;c")
        #expect(try MultipartFormReader.boundary(in: "application/json") == nil)
        #expect(try MultipartFormReader.boundary(in: nil) == nil)
        #expect(throws: APIError.self) { try MultipartFormReader.boundary(in: "multipart/form-data") }
        #expect(throws: APIError.self) { try MultipartFormReader.boundary(in: "multipart/form-data; boundary=\(String(repeating: "b", count: 71))") }
        #expect(MultipartFormReader.mediaType(" Image/PNG ; q=1") == "image/png")
    }
}

@Suite("Shared: header parameters")
struct HeaderParametersTests {
    @Test func quotedValuesKeepBackslashesButUnescapeQuotes() {
        let parameters = HeaderParameters.parse(#"form-data; name="file"; filename="C:\music\take \"1\".mp3"; Size=3"#)
        #expect(parameters["name"] == "file")
        #expect(parameters["filename"] == #"C:\music\take "1".mp3"#)
        #expect(parameters["size"] == "3")
        #expect(HeaderParameters.parse(#"x; a="back\\slash""#)["a"] == #"back\slash"#)
        #expect(HeaderParameters.decodeExtendedValue("UTF-8''caf%C3%A9.png") == "café.png")
        #expect(HeaderParameters.decodeExtendedValue("latin1''x") == nil)
    }
}
