import Logging
import PostgresLibpq
import ServiceLifecycle

/// Background upkeep of the ledger: voids reservations whose timeout has passed (as `expired`) and
/// forgets idempotency records older than the retention. Safe to run on several instances at once:
/// expiry claims reservations with `FOR UPDATE SKIP LOCKED`, and each void is a transfer that can
/// happen only once.
package struct LedgerMaintenance: Service {
    package let ledger: LedgerRepository
    package let idempotency: IdempotencyRepository
    package let interval: Duration
    package let retention: Duration
    package let logger: Logger
    /// Told how many reservations each round expired (for the `ledger_reservations_expired_total` counter).
    package let onExpired: @Sendable (Int) -> Void
    /// Reservations expired per transaction.
    package var batchSize = 500

    package init(
        pool: PostgresPool, interval: Duration, retention: Duration, logger: Logger,
        onExpired: @escaping @Sendable (Int) -> Void = { _ in }
    ) {
        self.onExpired = onExpired
        self.ledger = LedgerRepository(pool: pool)
        self.idempotency = IdempotencyRepository(pool: pool)
        self.interval = interval
        self.retention = retention
        self.logger = logger
    }

    package func run() async throws {
        await cancelWhenGracefulShutdown {
            var rounds = 0
            while !Task.isCancelled {
                await runOnce(purge: rounds % 60 == 0)
                rounds += 1
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// One round: expire everything due, then (when asked) purge old idempotency records.
    package func runOnce(purge: Bool) async {
        do {
            var expired = 0
            while true {
                let count = try await ledger.expireDue(limit: batchSize, by: "system:ledger-maintenance")
                expired += count
                if count < batchSize { break }
            }
            if expired > 0 {
                onExpired(expired)
                logger.info("reservations expired", metadata: ["count": "\(expired)"])
            }
            if purge {
                let purged = try await idempotency.purge(olderThan: retention)
                if purged > 0 { logger.info("idempotency records purged", metadata: ["count": "\(purged)"]) }
            }
        } catch let error as PostgresError where error.sqlState == "42P01" {
            // undefined_table: `serve --migrate` is still applying the schema.
            logger.debug("ledger maintenance waits for the schema", metadata: ["error": "\(error)"])
        } catch {
            // Shutting down cancels the round in flight: nothing to report.
            if Task.isCancelled || error is CancellationError { return }
            // The next round tries again; a database outage must not stop the service.
            logger.warning("ledger maintenance failed", metadata: ["error": "\(error)"])
        }
    }
}
