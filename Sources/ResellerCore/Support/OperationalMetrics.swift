import Foundation
import Prometheus

/// The gauges of ``OperationalFigures`` and the counters of the background work (docs/operations.md, "Metrics").
extension ServiceMetrics {
    /// Writes the database's figures into their gauges (called at each scrape with what was just read).
    package func recordOperationalFigures(_ figures: OperationalFigures) {
        func connectionLabels(_ queue: OperationalFigures.Queue) -> [(String, String)] {
            [("connection", queue.name), ("connection_id", queue.connectionID?.uuidString.lowercased() ?? "none")]
        }
        setGauges(
            .init(
                metricName: "dispatch_queue_messages", unitName: "",
                helpText: "Messages in the outbox of the upstream connection (due now or later)"),
            figures.queues.map { (connectionLabels($0), Double($0.queued)) })
        setGauges(
            .init(
                metricName: "dispatch_queue_due_messages", unitName: "",
                helpText: "Messages of the upstream connection's outbox that are due now"),
            figures.queues.map { (connectionLabels($0), Double($0.due)) })
        setGauges(
            .init(
                metricName: "dispatch_queue_oldest_due_age", unitName: "seconds",
                helpText: "How long the oldest message due now has been due (0 when none is due)"),
            figures.queues.map { (connectionLabels($0), $0.oldestDueSeconds) })
        setGauges(
            .init(
                metricName: "delivery_reports_awaiting", unitName: "",
                helpText: "Messages submitted upstream whose final delivery report has not come"),
            [([], Double(figures.awaitingReport))])
        setGauges(
            .init(
                metricName: "delivery_report_oldest_awaiting_age", unitName: "seconds",
                helpText: "Time since the submission of the oldest message still waiting for its delivery report"),
            [([], figures.oldestAwaitingReportSeconds)])
        func endpointLabels(_ backlog: OperationalFigures.WebhookBacklog) -> [(String, String)] {
            [("endpoint_id", backlog.endpointID?.uuidString.lowercased() ?? "callback")]
        }
        setGauges(
            .init(
                metricName: "webhook_deliveries_pending", unitName: "",
                helpText: "Webhook deliveries not yet delivered nor given up, by endpoint (callback: per-message URLs)"),
            figures.webhookBacklogs.map { (endpointLabels($0), Double($0.pending)) })
        setGauges(
            .init(
                metricName: "webhook_delivery_oldest_due_age", unitName: "seconds",
                helpText: "How long the endpoint's oldest delivery due now has been due"),
            figures.webhookBacklogs.map { (endpointLabels($0), $0.oldestDueSeconds) })
        setGauges(
            .init(metricName: "webhook_endpoints", unitName: "", helpText: "Webhook endpoints by status"),
            [
                ([("status", "active")], Double(figures.webhookEndpointsActive)),
                ([("status", "disabled")], Double(figures.webhookEndpointsDisabled)),
            ])
        setGauges(
            .init(
                metricName: "webhook_endpoint_failing", unitName: "seconds",
                helpText: "Time since an active endpoint's deliveries started failing (absent while it succeeds)"),
            figures.webhookEndpointsFailing.map { ([("endpoint_id", $0.id.uuidString.lowercased())], $0.seconds) })
        setGauges(
            .init(
                metricName: "ledger_reservations_overdue", unitName: "",
                helpText: "Reservations whose timeout has passed and that are not expired yet (the upkeep's backlog)"),
            [([], Double(figures.expiryBacklog))])
        setGauges(
            .init(
                metricName: "ledger_reservations_overdue_age", unitName: "seconds",
                helpText: "How long the most overdue reservation has waited for its expiry"),
            [([], figures.expiryOverdueSeconds)])
        setGauges(
            .init(
                metricName: "idempotency_records", unitName: "",
                helpText: "Idempotency records kept (PostgreSQL's live-row estimate)"),
            [([], figures.idempotencyRecords)])
        setGauges(
            .init(
                metricName: "idempotency_oldest_record_age", unitName: "seconds",
                helpText: "Age of the oldest idempotency record (the purge keeps it near the retention)"),
            [([], figures.idempotencyOldestSeconds)])
        setGauges(
            .init(
                metricName: "partition_made_ahead", unitName: "seconds",
                helpText: "How far ahead of now the table's monthly partitions are made (partition maintenance)"),
            figures.partitions.map { ([("table", $0.table)], $0.madeAheadSeconds) })
        setGauges(
            .init(
                metricName: "partition_default_rows", unitName: "",
                helpText: "1 when the table's default partition holds rows (rows no month took), else 0"),
            figures.partitions.map { ([("table", $0.table)], Double(min($0.defaultRows, 1))) })
    }

    /// `database_up`: 1 when the scrape read the database's figures within the readiness timeout, else 0 (what
    /// `/health/ready` checks, seen by Prometheus).
    package func recordDatabaseUp(_ up: Bool) {
        setGauges(
            .init(
                metricName: "database_up", unitName: "",
                helpText: "1 when the database answered this scrape's reads in time (as /health/ready checks), else 0"),
            [([], up ? 1 : 0)])
    }

    /// Counts reservations expired by this instance's ledger upkeep.
    package func recordReservationsExpired(_ count: Int) {
        registry.makeCounter(
            descriptor: .init(
                metricName: "ledger_reservations_expired", unitName: "total",
                helpText: "Reservations this instance's ledger upkeep expired")
        ).increment(by: Int64(count))
    }
}
