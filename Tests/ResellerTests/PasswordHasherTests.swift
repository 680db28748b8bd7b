import Crypto
import Foundation
import ResellerCore
import Testing
import _CryptoExtras

@Suite struct PasswordHasherTests {
    /// RFC 7914 §11: PBKDF2-HMAC-SHA256, P = "passwd", S = "salt", c = 1, dkLen = 64.
    @Test func pbkdf2MatchesTheRFC7914Vector() throws {
        let key = try KDF.Insecure.PBKDF2.deriveKey(
            from: Data("passwd".utf8), salt: Data("salt".utf8), using: .sha256, outputByteCount: 64,
            unsafeUncheckedRounds: 1)
        let hex = key.withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() }
        #expect(
            hex
                == "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
        )
    }

    @Test func verifiesThePasswordAndItsSHA1HexButNothingElse() async throws {
        let hash = try await PasswordHasher(iterations: 1_000).hash("Geheim!123")
        #expect(hash.iterations == 1_000 && hash.salt.count == 16 && hash.hash.count == 32)
        #expect(PasswordHasher.sha1Hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(try await PasswordHasher.verify("Geheim!123", against: hash))
        #expect(try await PasswordHasher.verify(PasswordHasher.sha1Hex("Geheim!123"), against: hash))
        #expect(try await PasswordHasher.verify(PasswordHasher.sha1Hex("Geheim!123").uppercased(), against: hash))
        #expect(try await !PasswordHasher.verify("geheim!123", against: hash))
        #expect(try await !PasswordHasher.verify(PasswordHasher.sha1Hex("other"), against: hash))
        let again = try await PasswordHasher(iterations: 1_000).hash("Geheim!123")
        #expect(again.salt != hash.salt && again.hash != hash.hash)
    }
}
