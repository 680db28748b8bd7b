import Crypto
import Foundation
import PostgresLibpq
import ResellerCore
import SMSCore
import Synchronization

/// The outcome of a 1601-style login (`klantuser` / `klantpwd`).
package enum GatewayAuthentication: Sendable {
    case authenticated(SubAccountRecord)
    /// 104 (unknown user, wrong password, closed account), 115 or 116 (blocked: only told to the right password).
    case refused(GatewayErrorCode)
    /// Too many wrong passwords for this username or from this address: refused without looking at the password.
    case throttled(retryAfter: Duration)
    /// Too many slow checks in progress in this process (``PasswordHashing``): not checked, nothing counted; the
    /// client may retry in a moment.
    case busy
}

/// Checks sub-account credentials for the 1601-compatible endpoint.
///
/// The stored hash is deliberately slow (PBKDF2, ``PasswordHasher``), and 1601 clients send the password with every
/// request. So a password that was verified is remembered for a while, as an HMAC (keyed with a secret of this
/// process) of the username, the stored hash and the password presented: the next request with the same password
/// skips the slow check, and a changed password (a new stored hash) no longer matches. Identical checks running at the
/// same time (an integration starting many requests at once) share one slow check. The account's status is read from
/// the database on every request, so a block applies at once.
///
/// Every slow check goes through ``LoginThrottle`` first. An unknown username costs the same slow check as a wrong
/// password, so timing does not tell which usernames exist; a name no account can have (``Validator/isUsername(_:)``)
/// counts against the client's address only.
package final class GatewayAuthenticator: Sendable {
    package let accounts: SubAccountRepository
    package let throttle: LoginThrottle
    /// Where the slow checks run, with the bound on how many may be in progress.
    package let hashing: PasswordHashing
    /// How long a verified password is remembered.
    package let rememberFor: Duration
    private let verified = Mutex<[Data: ContinuousClock.Instant]>([:])
    private let inFlight = Mutex<[Data: Task<Bool, any Error>]>([:])
    /// The HMAC key of remembered passwords: random per process, never stored.
    private let rememberKey = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
    private let decoy: PasswordHasher.Hash
    package static let maximumRemembered = 50_000

    package init(
        pool: PostgresPool, throttle: LoginThrottle = LoginThrottle(), hashing: PasswordHashing = PasswordHashing(),
        rememberFor: Duration = .seconds(15 * 60), decoyIterations: Int
    ) {
        accounts = SubAccountRepository(pool: pool)
        self.throttle = throttle
        self.hashing = hashing
        self.rememberFor = rememberFor
        var generator = SystemRandomNumberGenerator()
        let random = { (count: Int) in Data((0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        }
        decoy = PasswordHasher.Hash(salt: random(16), iterations: decoyIterations, hash: random(32))
    }

    /// `username` and `password` are not empty (100 and 101 come first); `address` is the client's.
    package func authenticate(username: String, password: String, address: String) async throws -> GatewayAuthentication
    {
        guard Validator.isUsername(username) else {
            if let wait = throttle.reserve(username: nil, address: address) { return .throttled(retryAfter: wait) }
            return try await decoyCheck(password, username: nil, address: address)
        }
        if let wait = throttle.refusal(username: username, address: address) { return .throttled(retryAfter: wait) }
        guard let login = try await accounts.login(username: username) else {
            if let wait = throttle.reserve(username: username, address: address) { return .throttled(retryAfter: wait) }
            return try await decoyCheck(password, username: username, address: address)
        }
        let key = rememberedKey(username: login.account.username, hash: login.hash, password: password)
        if !isRemembered(key) {
            switch try await verify(password, against: login.hash, key: key, username: username, address: address) {
            case .right: break
            case .wrong: return .refused(.invalidCredentials)
            case .refused(let wait): return .throttled(retryAfter: wait)
            case .busy: return .busy
            }
        }
        throttle.recordSuccess(username: username, address: address)
        switch login.account.effectiveStatus {
        case .active: return .authenticated(login.account)
        case .closed: return .refused(.invalidCredentials)
        case let status: return .refused(status.gatewayCode ?? .accountBlocked)
        }
    }

    private enum Verdict {
        case right, wrong, busy
        case refused(Duration)
    }

    /// The slow check an unknown name costs, as a wrong password would; a check refused as busy gives its count back
    /// (nothing was checked), as a wrong password's would be.
    private func decoyCheck(_ password: String, username: String?, address: String) async throws
        -> GatewayAuthentication
    {
        do {
            _ = try await PasswordHasher.verify(password, against: decoy, on: hashing)
        } catch is PasswordHashingBusy {
            throttle.release(username: username ?? "", address: address)
            return .busy
        }
        return .refused(.invalidCredentials)
    }

    /// The slow check, shared by identical checks in flight; the first takes a check from the throttle (or is refused
    /// one) and gives it back when the password is right.
    private func verify(
        _ password: String, against hash: PasswordHasher.Hash, key: Data, username: String, address: String
    ) async throws -> Verdict {
        enum Role {
            case joined(Task<Bool, any Error>)
            case leads(Task<Bool, any Error>)
            case refused(Duration)
        }
        let (throttle, hashing) = (self.throttle, self.hashing)
        let role: Role = inFlight.withLock { running in
            if let task = running[key] { return .joined(task) }
            if let wait = throttle.reserve(username: username, address: address) { return .refused(wait) }
            let task = Task { try await PasswordHasher.verify(password, against: hash, on: hashing) }
            running[key] = task
            return .leads(task)
        }
        switch role {
        case .refused(let wait):
            return .refused(wait)
        case .joined(let task):
            do {
                return try await task.value ? .right : .wrong
            } catch is PasswordHashingBusy {
                return .busy
            }
        case .leads(let task):
            defer { _ = inFlight.withLock { $0.removeValue(forKey: key) } }
            let right: Bool
            do {
                right = try await task.value
            } catch is PasswordHashingBusy {
                throttle.release(username: username, address: address)
                return .busy
            }
            if right {
                throttle.release(username: username, address: address)
                remember(key)
            }
            return right ? .right : .wrong
        }
    }

    private func rememberedKey(username: String, hash: PasswordHasher.Hash, password: String) -> Data {
        var mac = HMAC<SHA256>(key: SymmetricKey(data: rememberKey))
        for part in [Data(username.lowercased().utf8), hash.salt, hash.hash, Data(password.utf8)] {
            mac.update(data: withUnsafeBytes(of: UInt32(part.count).bigEndian) { Data($0) })
            mac.update(data: part)
        }
        return Data(mac.finalize())
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
