import Foundation

/// Exponential backoff with full jitter: after attempt `n` the next waits a uniformly random time between zero and
/// `min(cap, base × 2^(n-1))`, so retries of many messages that failed together spread out instead of returning in
/// step.
package struct RetryBackoff: Sendable, Equatable {
    package var base: Duration
    package var cap: Duration

    package init(base: Duration, cap: Duration) {
        self.base = base
        self.cap = cap
    }

    /// The longest wait after `attempt` (1-based).
    package func ceiling(afterAttempt attempt: Int) -> Duration {
        min(cap, base * (1 << min(max(attempt - 1, 0), 30)))
    }

    /// A random wait after `attempt`.
    package func delay(afterAttempt attempt: Int) -> Duration {
        let ceiling = ceiling(afterAttempt: attempt)
        let (seconds, attoseconds) = ceiling.components
        let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        return .nanoseconds(Int64.random(in: 0...max(nanoseconds, 0)))
    }
}

/// `host/pid/random`: names a running worker (a dispatcher, a webhook sender) in the leases it takes; unique, and
/// tells an operator which instance holds a lease.
package func workerName() -> String {
    "\(ProcessInfo.processInfo.hostName)/\(ProcessInfo.processInfo.processIdentifier)/\(UUID().uuidString.prefix(8).lowercased())"
}
