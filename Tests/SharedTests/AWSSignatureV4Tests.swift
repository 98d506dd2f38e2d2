import Foundation
import ObjectStore
import Shared
import Testing

/// The published vectors: the SigV4 test suite (service `service`) and the S3 documentation's examples.
@Suite("Storage: AWS Signature V4")
struct AWSSignatureV4Tests {
    let suite = AWSSignatureV4(
        accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", region: "us-east-1",
        service: "service")
    let s3 = AWSSignatureV4(
        accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1",
        service: "s3")
    let suiteTime = "20150830T123600Z"

    func suiteRequest(_ method: String = "GET", path: String = "/", query: [(name: String, value: String)] = [], body: String = "")
        -> AWSSignatureV4.Request
    {
        AWSSignatureV4.Request(
            method: method, path: path, query: query,
            headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", suiteTime)],
            payloadHash: Hex.encode(Crypto.sha256(body)))
    }

    @Test func getVanilla() {
        let request = suiteRequest()
        let canonical = suite.canonicalRequest(request)
        #expect(canonical == "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Hex.encode(Crypto.sha256(canonical)) == "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63")
        #expect(suite.stringToSign(canonicalRequest: canonical, timestamp: suiteTime)
            == "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63")
        #expect(suite.signature(request, timestamp: suiteTime) == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        #expect(suite.authorization(request, timestamp: suiteTime)
            == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    }

    @Test func getUTF8PathIsEncodedOnce() {
        let request = suiteRequest(path: "/ሴ")
        #expect(request.encodedPath == "/%E1%88%B4")
        #expect(suite.signature(request, timestamp: suiteTime) == "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85")
    }

    @Test func getVanillaQueryOrderKeyCase() {
        let request = suiteRequest(query: [("Param2", "value2"), ("Param1", "value1")])
        #expect(request.encodedQuery == "Param1=value1&Param2=value2")
        #expect(suite.signature(request, timestamp: suiteTime) == "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
    }

    @Test func postXWWWFormURLEncoded() {
        var request = suiteRequest("POST", body: "Param1=value1")
        request.headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        #expect(suite.authorization(request, timestamp: suiteTime).contains("SignedHeaders=content-type;host;x-amz-date,"))
        #expect(suite.signature(request, timestamp: suiteTime) == "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a")
    }

    @Test func s3PresignedURL() {
        let request = AWSSignatureV4.Request(
            method: "GET", path: "/test.txt", headers: [("host", "examplebucket.s3.amazonaws.com")],
            payloadHash: AWSSignatureV4.unsignedPayload)
        let query = s3.presignedQuery(request, timestamp: "20130524T000000Z", expires: 86400)
        var unsigned = request
        unsigned.query = Array(query.dropLast())
        #expect(Hex.encode(Crypto.sha256(s3.canonicalRequest(unsigned))) == "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04")
        #expect(query.last?.name == "X-Amz-Signature")
        #expect(query.last?.value == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
        #expect(query.first { $0.name == "X-Amz-Credential" }?.value == "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request")
    }

    @Test func s3GetObjectWithRange() {
        let request = AWSSignatureV4.Request(
            method: "GET", path: "/test.txt",
            headers: [
                ("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"),
                ("x-amz-content-sha256", AWSSignatureV4.emptyPayloadHash), ("x-amz-date", "20130524T000000Z"),
            ],
            payloadHash: AWSSignatureV4.emptyPayloadHash)
        #expect(s3.signature(request, timestamp: "20130524T000000Z") == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test func s3PathsAreNotNormalized() {
        // Dot segments and doubled slashes are part of S3 keys: kept, each byte encoded once.
        let request = suiteRequest(path: "/bucket/a/../b//c d%")
        #expect(request.encodedPath == "/bucket/a/../b//c%20d%25")
        // A changed byte changes the signature.
        #expect(suite.signature(request, timestamp: suiteTime) != suite.signature(suiteRequest(path: "/bucket/b//c d%"), timestamp: suiteTime))
    }

    @Test func timestampIsUTC() {
        #expect(AWSSignatureV4.timestamp(Date(timeIntervalSince1970: 1_440_938_160)) == "20150830T123600Z")
    }
}
