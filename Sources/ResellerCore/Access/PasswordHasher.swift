import Crypto
import Foundation
import NIOPosix
import _CryptoExtras

/// Sub-account passwords for the 1601-compatible endpoint.
///
/// The upstream lets a client send either the password or the lowercase SHA-1 hex of it. So the
/// stored hash is PBKDF2-HMAC-SHA256 over the **SHA-1 hex of the password** (random 16-byte salt,
/// ``iterations`` rounds, 32 bytes): a client sending the plain password is verified by hashing it
/// with SHA-1 first; a client sending 40 hex digits is verified as it is (and, should a real
/// password look like 40 hex digits, also as a plain password).
package struct PasswordHasher: Sendable {
    package static let defaultIterations = 210_000
    package var iterations: Int

    package init(iterations: Int = PasswordHasher.defaultIterations) {
        self.iterations = iterations
    }

    package struct Hash: Sendable, Equatable {
        package var salt: Data
        package var iterations: Int
        package var hash: Data

        package init(salt: Data, iterations: Int, hash: Data) {
            self.salt = salt
            self.iterations = iterations
            self.hash = hash
        }
    }

    /// The lowercase SHA-1 hex of a password, the form the upstream accepts in place of it.
    package static func sha1Hex(_ password: String) -> String {
        Insecure.SHA1.hash(data: Data(password.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    package static func derive(_ sha1Hex: String, salt: Data, iterations: Int) throws -> Data {
        let key = try KDF.Insecure.PBKDF2.deriveKey(
            from: Data(sha1Hex.utf8), salt: salt, using: .sha256, outputByteCount: 32, unsafeUncheckedRounds: iterations
        )
        return key.withUnsafeBytes { Data($0) }
    }

    /// Hashes a new password (off the cooperative pool: this is deliberately slow).
    package func hash(_ password: String) async throws -> Hash {
        var generator = SystemRandomNumberGenerator()
        let salt = Data((0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        let iterations = self.iterations
        let hash = try await NIOThreadPool.singleton.runIfActive {
            try Self.derive(Self.sha1Hex(password), salt: salt, iterations: iterations)
        }
        return Hash(salt: salt, iterations: iterations, hash: hash)
    }

    /// Whether `presented` (the password, or its SHA-1 hex) matches `stored`.
    package static func verify(_ presented: String, against stored: Hash) async throws -> Bool {
        let looksLikeSHA1Hex = presented.utf8.count == 40 && presented.allSatisfy(\.isHexDigit)
        let candidates = looksLikeSHA1Hex ? [presented.lowercased(), sha1Hex(presented)] : [sha1Hex(presented)]
        return try await NIOThreadPool.singleton.runIfActive {
            for candidate in candidates {
                let derived = try derive(candidate, salt: stored.salt, iterations: stored.iterations)
                if constantTimeEquals(derived, stored.hash) { return true }
            }
            return false
        }
    }

    package static func constantTimeEquals(_ a: Data, _ b: Data) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
