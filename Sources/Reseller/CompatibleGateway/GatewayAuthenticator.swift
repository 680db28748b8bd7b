import Crypto
import Foundation
import PostgresLibpq
import SMSCore
import Synchronization

/// The outcome of a 1601-style login (`klantuser` / `klantpwd`).
enum GatewayAuthentication: Sendable {
    case authenticated(SubAccountRecord)
    /// 104 (unknown user, wrong password, closed account), 115 or 116 (blocked: only told to the right password).
    case refused(GatewayErrorCode)
    /// Too many wrong passwords for this username or from this address: refused without looking at the password.
    case throttled(retryAfter: Duration)
}

/// Checks sub-account credentials for the 1601-compatible endpoint.
///
/// The stored hash is deliberately slow (PBKDF2, ``PasswordHasher``), and 1601 clients send the password with every
/// request. So a password that was verified is remembered for a while, as a SHA-256 of the username, the stored hash
/// and the password presented: the next request with the same password skips the slow check, and a changed password
/// (a new stored hash) no longer matches. The account's status is read from the database on every request, so a block
/// applies at once. Wrong passwords go through ``LoginThrottle``; an unknown username costs the same slow check as a
/// wrong password, so timing does not tell which usernames exist.
final class GatewayAuthenticator: Sendable {
    let accounts: SubAccountRepository
    let throttle: LoginThrottle
    /// How long a verified password is remembered.
    let rememberFor: Duration
    private let verified = Mutex<[Data: ContinuousClock.Instant]>([:])
    private let decoy: PasswordHasher.Hash
    static let maximumRemembered = 50_000

    init(pool: PostgresPool, throttle: LoginThrottle = LoginThrottle(), rememberFor: Duration = .seconds(15 * 60), decoyIterations: Int) {
        accounts = SubAccountRepository(pool: pool)
        self.throttle = throttle
        self.rememberFor = rememberFor
        var generator = SystemRandomNumberGenerator()
        let random = { (count: Int) in Data((0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }) }
        decoy = PasswordHasher.Hash(salt: random(16), iterations: decoyIterations, hash: random(32))
    }

    /// `username` and `password` are not empty (100 and 101 come first); `address` is the client's.
    func authenticate(username: String, password: String, address: String) async throws -> GatewayAuthentication {
        if let wait = throttle.refusal(username: username, address: address) { return .throttled(retryAfter: wait) }
        guard let login = try await accounts.login(username: username) else {
            _ = try await PasswordHasher.verify(password, against: decoy)
            throttle.recordFailure(username: username, address: address)
            return .refused(.invalidCredentials)
        }
        let key = Self.rememberedKey(username: login.account.username, hash: login.hash, password: password)
        if !isRemembered(key) {
            guard try await PasswordHasher.verify(password, against: login.hash) else {
                throttle.recordFailure(username: username, address: address)
                return .refused(.invalidCredentials)
            }
            remember(key)
        }
        throttle.recordSuccess(username: username, address: address)
        switch login.account.effectiveStatus {
        case .active: return .authenticated(login.account)
        case .closed: return .refused(.invalidCredentials)
        case let status: return .refused(status.gatewayCode ?? .accountBlocked)
        }
    }

    private static func rememberedKey(username: String, hash: PasswordHasher.Hash, password: String) -> Data {
        var hasher = SHA256()
        for part in [Data(username.lowercased().utf8), hash.salt, hash.hash, Data(password.utf8)] {
            hasher.update(data: withUnsafeBytes(of: UInt32(part.count).bigEndian) { Data($0) })
            hasher.update(data: part)
        }
        return Data(hasher.finalize())
    }

    private func isRemembered(_ key: Data) -> Bool {
        verified.withLock { entries in entries[key].map { ContinuousClock.now < $0 + rememberFor } ?? false }
    }

    private func remember(_ key: Data) {
        let now = ContinuousClock.now
        verified.withLock { entries in
            if entries.count >= Self.maximumRemembered {
                entries = entries.filter { now < $0.value + rememberFor }
                if entries.count >= Self.maximumRemembered { entries.removeAll() }
            }
            entries[key] = now
        }
    }
}
