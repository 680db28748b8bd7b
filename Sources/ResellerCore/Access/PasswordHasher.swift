import Crypto
import Foundation
import NIOPosix
import Synchronization
import _CryptoExtras

/// Refused at once: as many slow password checks as ``PasswordHashing`` admits are running or waiting already.
package struct PasswordHashingBusy: Error, Sendable, Equatable {
    package init() {}
}

/// Where the slow password hashes run, and how many may at once.
///
/// PBKDF2 runs on a thread pool of its own (never the shared `NIOThreadPool.singleton`, which also resolves webhook
/// addresses and does file I/O), and at most ``maximumAdmitted`` hashes of one application are running or waiting
/// for a thread at any time: a check past that is refused at once with ``PasswordHashingBusy`` rather than queued, so
/// a flood of wrong passwords costs a bounded amount of work and never delays anything else by more than a few
/// hashes.
package final class PasswordHashing: Sendable {
    /// The threads every application's hashes share (a process has one pool; started once, never stopped).
    package static let threads = 2
    private static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
        return pool
    }()

    package let maximumAdmitted: Int
    private let admitted = Atomic<Int>(0)

    /// Running or waiting hashes past `maximumAdmitted` are refused.
    package init(maximumAdmitted: Int = 8 * PasswordHashing.threads) {
        self.maximumAdmitted = max(1, maximumAdmitted)
    }

    /// Hashes running or waiting for a thread now.
    package var inProgress: Int { admitted.load(ordering: .relaxed) }

    /// Runs `work` on the hashing threads, or throws ``PasswordHashingBusy`` at once when too many are in progress.
    package func run<Value: Sendable>(_ work: @escaping @Sendable () throws -> Value) async throws -> Value {
        let (taken, _) = admitted.wrappingAdd(1, ordering: .acquiringAndReleasing)
        guard taken < maximumAdmitted else {
            admitted.wrappingSubtract(1, ordering: .acquiringAndReleasing)
            throw PasswordHashingBusy()
        }
        defer { admitted.wrappingSubtract(1, ordering: .acquiringAndReleasing) }
        return try await Self.pool.runIfActive(work)
    }
}

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
    /// Where the hashes run (shared by the whole application: the bound is on all of them together).
    package var hashing: PasswordHashing

    package init(iterations: Int = PasswordHasher.defaultIterations, hashing: PasswordHashing = PasswordHashing()) {
        self.iterations = iterations
        self.hashing = hashing
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

    /// Hashes a new password (on ``hashing``'s threads: this is deliberately slow); ``PasswordHashingBusy`` when too
    /// many hashes are in progress.
    package func hash(_ password: String) async throws -> Hash {
        var generator = SystemRandomNumberGenerator()
        let salt = Data((0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        let iterations = self.iterations
        let hash = try await hashing.run {
            try Self.derive(Self.sha1Hex(password), salt: salt, iterations: iterations)
        }
        return Hash(salt: salt, iterations: iterations, hash: hash)
    }

    /// Whether `presented` (the password, or its SHA-1 hex) matches `stored`, checked on `hashing`'s threads;
    /// ``PasswordHashingBusy`` when too many hashes are in progress.
    package static func verify(
        _ presented: String, against stored: Hash, on hashing: PasswordHashing = PasswordHashing()
    ) async throws -> Bool {
        let looksLikeSHA1Hex = presented.utf8.count == 40 && presented.allSatisfy(\.isHexDigit)
        let candidates = looksLikeSHA1Hex ? [presented.lowercased(), sha1Hex(presented)] : [sha1Hex(presented)]
        return try await hashing.run {
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
