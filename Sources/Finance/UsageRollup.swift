import Foundation
import Logging
import PostgresLibpq
import ServiceLifecycle

/// Seals finished hours into `usage_money_hour` (the `usage_seal` function), so that usage reports over long periods
/// read hourly sums rather than every fact. It never touches the send path: it reads the ledger behind it, and an hour
/// is sealed only once no transaction that could still add to it is running. Every instance may run it; calls
/// serialise in the database.
package struct UsageRollupService: Service {
    package var pool: PostgresPool
    package var interval: Duration
    /// Hours sealed per call at most (a first run over a long history catches up call by call).
    package var hoursPerCall: Int
    package var logger: Logger

    package init(pool: PostgresPool, interval: Duration = .seconds(60), hoursPerCall: Int = 24, logger: Logger) {
        self.pool = pool
        self.interval = interval
        self.hoursPerCall = hoursPerCall
        self.logger = logger
    }

    /// One call of `usage_seal`; returns the new `sealed_until`.
    @discardableResult
    package static func seal(pool: PostgresPool, hours: Int = 24) async throws -> Date? {
        try await pool.query("SELECT usage_seal(\(hours)::integer)").first(as: Date?.self) ?? nil
    }

    package func run() async throws {
        await cancelWhenGracefulShutdown {
            var previous: Date?
            while !Task.isCancelled {
                do {
                    let sealed = try await Self.seal(pool: pool, hours: hoursPerCall)
                    if sealed != previous {
                        logger.debug(
                            "usage rollup sealed", metadata: ["until": "\(sealed.map { "\($0)" } ?? "nothing")"])
                        previous = sealed
                        // More to catch up: go on at once.
                        continue
                    }
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("usage rollup failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
