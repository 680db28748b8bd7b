import Foundation
import ResellerCore
import Synchronization

/// How many wrong passwords the 1601-compatible endpoint takes before it stops checking them.
package struct LoginThrottleSettings: Sendable {
    /// Wrong passwords from one client address within ``window``; then that address is refused until the window ends.
    package var failuresPerAddress: Int = 20
    /// Wrong passwords for one username within ``window``, from addresses it has not logged in from; then such
    /// addresses are refused for that username until the window ends. Addresses the user has logged in from are not:
    /// an attack on a username does not lock its owner out.
    package var failuresPerUsername: Int = 10
    package var window: Duration = .seconds(15 * 60)
    /// How long a successful login makes an address known for its username.
    package var knownAddressFor: Duration = .seconds(30 * 86_400)
    /// Entries kept per table; past it, the oldest windows and known addresses are forgotten first.
    package var maximumEntries: Int = 100_000

    package init(
        failuresPerAddress: Int = 20, failuresPerUsername: Int = 10, window: Duration = .seconds(15 * 60),
        knownAddressFor: Duration = .seconds(30 * 86_400), maximumEntries: Int = 100_000
    ) {
        self.failuresPerAddress = failuresPerAddress
        self.failuresPerUsername = failuresPerUsername
        self.window = window
        self.knownAddressFor = knownAddressFor
        self.maximumEntries = maximumEntries
    }
}

/// Brute-force protection for the password check: counts wrong passwords per client address (IPv6 per /64, the block a
/// single client usually holds) and per username, in fixed windows, in this process (each instance counts its own;
/// see docs/gateway-1601.md).
///
/// A check is counted as a failure when it starts (``reserve(username:address:now:)``) and given back when the
/// password was right (``release(username:address:now:)``), so guesses sent all at once are counted before any of them
/// is checked. A refused attempt is answered without checking the password at all, so a refusal never tells a correct
/// guess from a wrong one. A correct password from an address that is not refused is never slowed down: there are no
/// delays, only refusals.
package final class LoginThrottle: Sendable {
    package let settings: LoginThrottleSettings
    private let state = Mutex(State())

    private struct Window {
        var start: ContinuousClock.Instant
        var failures: Int
    }

    private struct State {
        var addresses: [String: Window] = [:]
        var usernames: [String: Window] = [:]
        /// `username \u{1F} address` → when it last logged in.
        var known: [String: ContinuousClock.Instant] = [:]
    }

    package init(settings: LoginThrottleSettings = LoginThrottleSettings()) {
        self.settings = settings
    }

    /// Nil when an attempt for `username` from `address` may be checked; otherwise how long until it may.
    package func refusal(username: String, address: String, now: ContinuousClock.Instant = .now) -> Duration? {
        let (username, address) = (username.lowercased(), Self.addressKey(address))
        return state.withLock { refusal(username: username, address: address, now: now, in: $0) }
    }

    /// Takes a check: nil, and the attempt counted as a failure against the address and (if given) the username; or,
    /// when refused, how long until attempts are checked again. `username` is nil for a name no account can have: it
    /// counts against the address only, so made-up names cannot fill the table.
    package func reserve(username: String?, address: String, now: ContinuousClock.Instant = .now) -> Duration? {
        let (username, address) = (username?.lowercased(), Self.addressKey(address))
        return state.withLock { state in
            if let wait = refusal(username: username ?? "", address: address, now: now, in: state) { return wait }
            count(&state.addresses, key: address, by: 1, now: now)
            if let username { count(&state.usernames, key: username, by: 1, now: now) }
            return nil
        }
    }

    /// Gives back a check taken by ``reserve(username:address:now:)`` whose password was right.
    package func release(username: String, address: String, now: ContinuousClock.Instant = .now) {
        let (username, address) = (username.lowercased(), Self.addressKey(address))
        state.withLock { state in
            count(&state.addresses, key: address, by: -1, now: now)
            count(&state.usernames, key: username, by: -1, now: now)
        }
    }

    private func refusal(username: String, address: String, now: ContinuousClock.Instant, in state: State) -> Duration?
    {
        var wait: Duration?
        if let window = state.addresses[address], window.failures >= settings.failuresPerAddress,
            now < window.start + settings.window
        {
            wait = window.start + settings.window - now
        }
        if let window = state.usernames[username], window.failures >= settings.failuresPerUsername,
            now < window.start + settings.window,
            !isKnown(username: username, address: address, now: now, in: state)
        {
            wait = max(wait ?? .zero, window.start + settings.window - now)
        }
        return wait
    }

    /// The key an address is counted under: IPv6 addresses by their /64 (IPv4-mapped ones as IPv4), others as given.
    package static func addressKey(_ address: String) -> String {
        guard let parsed = IPAddress.parseV6(address) else { return address }
        if let v4 = parsed.mappedV4 { return v4.description }
        return IPAddress(bytes: Array(parsed.bytes[0..<8]) + Array(repeating: 0, count: 8)).description + "/64"
    }

    /// Remembers that `username` logged in from `address`. Failure counts stay: a valid login does not wipe out an
    /// attack that is going on at the same time.
    package func recordSuccess(username: String, address: String, now: ContinuousClock.Instant = .now) {
        let key = username.lowercased() + "\u{1F}" + Self.addressKey(address)
        state.withLock { state in
            state.known[key] = now
            if state.known.count > settings.maximumEntries {
                let horizon = now - settings.knownAddressFor
                state.known = state.known.filter { $0.value > horizon }
                if state.known.count > settings.maximumEntries {
                    // Still full of recent logins: keep the most recent half.
                    let recent = state.known.sorted { $0.value > $1.value }.prefix(settings.maximumEntries / 2)
                    state.known = Dictionary(uniqueKeysWithValues: recent.map { ($0.key, $0.value) })
                }
            }
        }
    }

    private func isKnown(username: String, address: String, now: ContinuousClock.Instant, in state: State) -> Bool {
        guard let last = state.known[username + "\u{1F}" + address] else { return false }
        return now < last + settings.knownAddressFor
    }

    /// Adds `delta` to the key's window, starting a new window when the last one is over (a release then has nothing
    /// to give back).
    private func count(_ windows: inout [String: Window], key: String, by delta: Int, now: ContinuousClock.Instant) {
        if var window = windows[key], now < window.start + settings.window {
            window.failures = max(0, window.failures + delta)
            windows[key] = window
        } else if delta > 0 {
            windows[key] = Window(start: now, failures: delta)
        }
        if windows.count > settings.maximumEntries {
            let horizon = now - settings.window
            windows = windows.filter { $0.value.start > horizon }
            if windows.count > settings.maximumEntries {
                // A flood of distinct keys within one window: keep those with the most failures.
                let worst = windows.sorted { $0.value.failures > $1.value.failures }.prefix(settings.maximumEntries / 2)
                windows = Dictionary(uniqueKeysWithValues: worst.map { ($0.key, $0.value) })
            }
        }
    }
}
