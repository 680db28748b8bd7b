import Foundation
import Synchronization

/// How often something may be done: a burst, then a steady rate (a token bucket).
package struct RateLimit: Sendable, Equatable {
    /// Done this many times in a row at once, when it has not been done for a while.
    package var burst: Int
    /// Then this many times a minute.
    package var perMinute: Int

    package init(burst: Int, perMinute: Int) {
        self.burst = max(1, burst)
        self.perMinute = max(1, perMinute)
    }
}

/// Counts attempts per key (a reseller, …) in this process, each against a ``RateLimit``.
package final class RateLimiter: Sendable {
    package let limit: RateLimit
    private let buckets = Mutex<[UUID: Bucket]>([:])
    /// Buckets kept; past it, the full ones (keys quiet long enough) are forgotten.
    package static let maximumKeys = 100_000

    private struct Bucket {
        var tokens: Double
        var at: ContinuousClock.Instant
    }

    package init(_ limit: RateLimit) {
        self.limit = limit
    }

    /// Takes one attempt for `key`: nil when it may go ahead, otherwise how long until the next one may.
    package func take(_ key: UUID, now: ContinuousClock.Instant = .now) -> Duration? {
        let perSecond = Double(limit.perMinute) / 60
        let burst = Double(limit.burst)
        return buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: burst, at: now)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.at).seconds * perSecond)
            bucket.at = now
            guard bucket.tokens >= 1 else {
                buckets[key] = bucket
                return .seconds((1 - bucket.tokens) / perSecond)
            }
            bucket.tokens -= 1
            buckets[key] = bucket
            if buckets.count > Self.maximumKeys {
                buckets = buckets.filter { burst - $0.value.tokens > (now - $0.value.at).seconds * perSecond }
            }
            return nil
        }
    }
}

extension Duration {
    fileprivate var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
