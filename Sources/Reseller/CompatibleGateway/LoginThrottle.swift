import Foundation
import Synchronization

/// How many wrong passwords the 1601-compatible endpoint takes before it stops checking them.
struct LoginThrottleSettings: Sendable {
    /// Wrong passwords from one client address within ``window``; then that address is refused until the window ends.
    var failuresPerAddress = 20
    /// Wrong passwords for one username within ``window``, from addresses it has not logged in from; then such
    /// addresses are refused for that username until the window ends. Addresses the user has logged in from are not:
    /// an attack on a username does not lock its owner out.
    var failuresPerUsername = 10
    var window: Duration = .seconds(15 * 60)
    /// How long a successful login makes an address known for its username.
    var knownAddressFor: Duration = .seconds(30 * 86_400)
    /// Entries kept per table; past it, the oldest windows and known addresses are forgotten first.
    var maximumEntries = 100_000
}

/// Brute-force protection for the password check: counts wrong passwords per client address and per username, in
/// fixed windows, in this process (each instance counts its own; see the README).
///
/// A refused attempt is answered without checking the password at all, so a refusal never tells a correct guess from
/// a wrong one. A correct password from an address that is not refused is never slowed down: there are no delays,
/// only refusals.
final class LoginThrottle: Sendable {
    let settings: LoginThrottleSettings
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

    init(settings: LoginThrottleSettings = LoginThrottleSettings()) {
        self.settings = settings
    }

    /// Nil when an attempt for `username` from `address` may be checked; otherwise how long until it may.
    func refusal(username: String, address: String, now: ContinuousClock.Instant = .now) -> Duration? {
        let username = username.lowercased()
        return state.withLock { state in
            var wait: Duration?
            if let window = state.addresses[address], window.failures >= settings.failuresPerAddress, now < window.start + settings.window {
                wait = window.start + settings.window - now
            }
            if let window = state.usernames[username], window.failures >= settings.failuresPerUsername, now < window.start + settings.window,
               !isKnown(username: username, address: address, now: now, in: state) {
                wait = max(wait ?? .zero, window.start + settings.window - now)
            }
            return wait
        }
    }

    /// Counts a wrong password (or an unknown username) against both the address and the username.
    func recordFailure(username: String, address: String, now: ContinuousClock.Instant = .now) {
        let username = username.lowercased()
        state.withLock { state in
            count(&state.addresses, key: address, now: now)
            count(&state.usernames, key: username, now: now)
        }
    }

    /// Remembers that `username` logged in from `address`. Failure counts stay: a valid login does not wipe out an
    /// attack that is going on at the same time.
    func recordSuccess(username: String, address: String, now: ContinuousClock.Instant = .now) {
        let key = username.lowercased() + "\u{1F}" + address
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

    private func count(_ windows: inout [String: Window], key: String, now: ContinuousClock.Instant) {
        if var window = windows[key], now < window.start + settings.window {
            window.failures += 1
            windows[key] = window
        } else {
            windows[key] = Window(start: now, failures: 1)
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
