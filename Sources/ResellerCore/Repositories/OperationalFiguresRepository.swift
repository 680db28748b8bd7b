import Foundation
import PostgresLibpq

/// What an on-call person watches that is database state (docs/operations.md, "Metrics"): read at each scrape, so
/// every instance reports the same figures, whoever did the work.
package struct OperationalFigures: Sendable {
    /// One upstream connection's outbox. `connectionID` nil: messages of resellers without an effective connection.
    package struct Queue: Sendable, Equatable {
        package var connectionID: UUID?
        package var name: String
        package var queued: Int64
        package var due: Int64
        /// Age of the oldest message due now (0 when none is due).
        package var oldestDueSeconds: Double
    }

    /// One webhook endpoint's pending deliveries. `endpointID` nil: per-message callback URLs (legacy notifications).
    package struct WebhookBacklog: Sendable, Equatable {
        package var endpointID: UUID?
        package var pending: Int64
        /// Age of the oldest delivery due now (0 when none is due).
        package var oldestDueSeconds: Double
    }

    package var queues: [Queue] = []
    /// Messages submitted upstream whose final report has not come.
    package var awaitingReport: Int64 = 0
    /// Age of the oldest submission still waiting for its report (0 when none waits).
    package var oldestAwaitingReportSeconds: Double = 0
    package var webhookBacklogs: [WebhookBacklog] = []
    package var webhookEndpointsActive: Int64 = 0
    package var webhookEndpointsDisabled: Int64 = 0
    /// Active endpoints whose deliveries have all failed since then: seconds since the first failure.
    package var webhookEndpointsFailing: [(id: UUID, seconds: Double)] = []
    /// Reservations whose timeout has passed and that the ledger upkeep has not expired yet.
    package var expiryBacklog: Int64 = 0
    /// How long the oldest of them is overdue (0 when none is).
    package var expiryOverdueSeconds: Double = 0
    /// PostgreSQL's live-row estimate of `idempotency_record` (statistics, not a count).
    package var idempotencyRecords: Double = 0
    /// Age of the oldest idempotency record (0 when there is none): the purge keeps it under the retention.
    package var idempotencyOldestSeconds: Double = 0
    /// Each monthly-partitioned table: how far ahead of now its months are made (negative: rows are already going
    /// to the default partition) and whether its default partition holds rows (1 when it does).
    package var partitions: [(table: String, madeAheadSeconds: Double, defaultRows: Int64)] = []

    package init() {}
}

/// Reads ``OperationalFigures`` with cheap statements: each one an index range (or index-only) scan, except
/// `webhook_endpoint`, a table of one row per endpoint, the idempotency table's size, which is PostgreSQL's
/// statistics rather than a count, and the partitions, read from the catalog.
package struct OperationalFiguresRepository: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    package func figures() async throws -> OperationalFigures {
        try await pool.withConnection { connection in
            var figures = OperationalFigures()
            // Per connection through message_outbox_due (connection_id, due_at); the connections no message uses
            // report zero, so the gauges exist before the first queue forms.
            figures.queues = try await connection.query(
                """
                SELECT c.id, c.name, q.queued, q.due, q.oldest
                FROM upstream_connection c
                CROSS JOIN LATERAL (
                    SELECT count(*)::bigint AS queued, count(*) FILTER (WHERE due_at <= now())::bigint AS due,
                           coalesce(extract(epoch FROM now() - min(due_at) FILTER (WHERE due_at <= now())), 0)::float8
                               AS oldest
                    FROM message_outbox WHERE connection_id = c.id
                ) q
                UNION ALL
                SELECT NULL, '', count(*)::bigint, count(*) FILTER (WHERE due_at <= now())::bigint,
                       coalesce(extract(epoch FROM now() - min(due_at) FILTER (WHERE due_at <= now())), 0)::float8
                FROM message_outbox WHERE connection_id IS NULL
                """
            ).decode((UUID?, String, Int64, Int64, Double).self).map {
                OperationalFigures.Queue(
                    connectionID: $0.0, name: $0.1, queued: $0.2, due: $0.3, oldestDueSeconds: $0.4)
            }
            // message_awaiting_report (submitted_at) WHERE status = 'submitted'.
            if let (count, oldest) = try await connection.query(
                """
                SELECT count(*)::bigint, coalesce(extract(epoch FROM now() - min(submitted_at)), 0)::float8
                FROM message WHERE status = 'submitted'
                """
            ).first(as: (Int64, Double).self) {
                figures.awaitingReport = count
                figures.oldestAwaitingReportSeconds = oldest
            }
            // webhook_delivery_endpoint_due and webhook_delivery_callback_due, both WHERE state = 'pending'.
            figures.webhookBacklogs = try await connection.query(
                """
                SELECT endpoint_id, count(*)::bigint,
                       coalesce(extract(epoch FROM now() - min(due_at) FILTER (WHERE due_at <= now())), 0)::float8
                FROM webhook_delivery WHERE state = 'pending'
                GROUP BY endpoint_id
                """
            ).decode((UUID?, Int64, Double).self).map {
                OperationalFigures.WebhookBacklog(endpointID: $0.0, pending: $0.1, oldestDueSeconds: $0.2)
            }
            for (id, status, failing) in try await connection.query(
                """
                SELECT id, status, extract(epoch FROM now() - failing_since)::float8 FROM webhook_endpoint
                """
            ).decode((UUID, String, Double?).self) {
                if status == "disabled" {
                    figures.webhookEndpointsDisabled += 1
                } else {
                    figures.webhookEndpointsActive += 1
                    if let failing { figures.webhookEndpointsFailing.append((id, max(0, failing))) }
                }
            }
            // ledger_transfer_expiry (timeout_at) WHERE state = 'pending' AND timeout_at IS NOT NULL.
            if let (count, overdue) = try await connection.query(
                """
                SELECT count(*)::bigint, coalesce(extract(epoch FROM now() - min(timeout_at)), 0)::float8
                FROM ledger_transfer WHERE state = 'pending' AND timeout_at IS NOT NULL AND timeout_at <= now()
                """
            ).first(as: (Int64, Double).self) {
                figures.expiryBacklog = count
                figures.expiryOverdueSeconds = overdue
            }
            // idempotency_record_age (created_at) for the oldest; the statistics for the size.
            if let (size, oldest) = try await connection.query(
                """
                SELECT coalesce((SELECT n_live_tup FROM pg_stat_user_tables
                                 WHERE relid = 'idempotency_record'::regclass), 0)::float8,
                       coalesce((SELECT extract(epoch FROM now() - min(created_at)) FROM idempotency_record), 0)::float8
                """
            ).first(as: (Double, Double).self) {
                figures.idempotencyRecords = size
                figures.idempotencyOldestSeconds = oldest
            }
            // The catalog, and pg_partman's check of the default partitions (one row is enough to tell).
            let now = Date()
            figures.partitions = try await PartitionRepository.sets(on: connection).map {
                ($0.table, ($0.madeUntil ?? now).timeIntervalSince(now), $0.defaultRows)
            }
            return figures
        }
    }
}
