// The in-process figures of `make bench`, each beside the primitive it is bounded by:
// access-token verification and signing (what every authenticated request and every
// login pays) against one raw HMAC-SHA256 of the same bytes, and one bcrypt verification
// at the configured cost (the login limit is cores x that rate).
//
//   micro-benchmarks [--bcrypt-cost N] [--seconds S]
//
// Prints one JSON object: operations per second of each, and the core count.
// `micro-benchmarks serve-nio|serve-hummingbird|serve-hummingbird-postgres|postgres ...` are the floors (Floors.swift).
import Foundation
import HummingbirdBcrypt
import Shared

struct Options {
    var bcryptCost = 12
    var seconds = 1.0

    init(_ arguments: [String]) {
        var rest = arguments.dropFirst()
        while let flag = rest.popFirst() {
            switch flag {
            case "--bcrypt-cost": bcryptCost = Int(rest.popFirst() ?? "") ?? bcryptCost
            case "--seconds": seconds = Double(rest.popFirst() ?? "") ?? seconds
            default:
                FileHandle.standardError.write(Data("usage: micro-benchmarks [--bcrypt-cost N] [--seconds S]\n".utf8))
                exit(2)
            }
        }
    }
}

/// Runs `body` in growing batches until `seconds` have passed; operations per second.
/// The result of every call is folded into `sink` so the optimiser cannot drop the work.
func measure(seconds: Double, _ body: () throws -> Int) rethrows -> Double {
    let clock = ContinuousClock()
    var sink = 0
    _ = try body()  // warm-up: lazy statics, caches
    var operations = 0
    var batch = 1
    let start = clock.now
    var elapsed = Duration.zero
    while elapsed < .seconds(seconds) {
        for _ in 0..<batch { sink &+= try body() }
        operations += batch
        elapsed = clock.now - start
        if elapsed < .milliseconds(50) { batch *= 2 }
    }
    if sink == 42 { print("", terminator: "") }
    return Double(operations) / elapsed.timeInterval
}

let arguments = CommandLine.arguments
switch arguments.dropFirst().first {
case "serve-nio" where arguments.count == 3:
    try await Floors.serveNIO(port: Int(arguments[2])!)
    exit(0)
case "serve-hummingbird" where arguments.count == 3:
    try await Floors.serveHummingbird(port: Int(arguments[2])!)
    exit(0)
case "serve-hummingbird-postgres" where arguments.count >= 4:
    try await Floors.serveHummingbirdPostgres(port: Int(arguments[2])!, scripts: Array(arguments[3...]))
    exit(0)
case "postgres" where arguments.count >= 5:
    try await Floors.postgres(
        seconds: Double(arguments[2])!, connections: Int(arguments[3])!, scripts: Array(arguments[4...]))
    exit(0)
default:
    break
}

let options = Options(arguments)
let settings = TokenSettings(
    secret: String(repeating: "k", count: 48), issuer: "backend-auth", audience: "backend")
let tokens = try AccessTokens(settings: settings)
let (token, _) = try tokens.issue(userID: UUID.random(), name: "Benchmark User", sessionID: UUID.random())
let signingInput = Array(token.utf8[..<token.utf8.lastIndex(of: UInt8(ascii: "."))!])
let key = Array(settings.secret.utf8)

// The limit: libcrypto's one-shot HMAC() of the token's signing input. Verification MACs
// the same bytes with the key's pads absorbed once (HMACSHA256Key), also measured alone.
// Five interleaved rounds, the best of each kept: a burst of other work on the shared cores
// then lowers one round of one figure, not the ratio between the figures.
let keyedKey = HMACSHA256Key(key: key)
let rounds = 5
var best = [Double](repeating: 0, count: 4)
for _ in 0..<rounds {
    let round = try [
        measure(seconds: options.seconds / Double(rounds)) { Int(Crypto.hmacSHA256(key: key, data: signingInput)[0]) },
        measure(seconds: options.seconds / Double(rounds)) { Int(keyedKey.authenticate(signingInput)[0]) },
        measure(seconds: options.seconds / Double(rounds)) { try tokens.verify(token).name.utf8.count },
        measure(seconds: options.seconds / Double(rounds)) {
            try tokens.issue(userID: UUID.random(), name: "Benchmark User", sessionID: UUID.random()).token.utf8.count
        },
    ]
    best = zip(best, round).map { max($0, $1) }
}
let (hmac, hmacKeyed, verify, sign) = (best[0], best[1], best[2], best[3])

// bcrypt: one thread, as each verification is; a few calls suffice at ~100 ms each.
let password = "correct horse battery"
let hash = Bcrypt.hash(password, cost: UInt8(options.bcryptCost))
let bcrypt = measure(seconds: max(options.seconds, 2)) { Bcrypt.verify(password, hash: hash) ? 1 : 0 }

let result: [String: Double] = [
    "hmacSHA256PerSecond": hmac,
    "hmacSHA256KeyedPerSecond": hmacKeyed,
    "jwtVerifyPerSecond": verify,
    "jwtSignPerSecond": sign,
    "bcryptVerifyPerSecond": bcrypt,
    "bcryptCost": Double(options.bcryptCost),
    "cores": Double(ProcessInfo.processInfo.activeProcessorCount),
    "tokenBytes": Double(token.utf8.count),
]
let encoder = JSONEncoder()
encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
print(String(decoding: try encoder.encode(result), as: UTF8.self))
