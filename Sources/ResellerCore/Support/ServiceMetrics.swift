import Foundation
import Metrics
import PostgresLibpq
import Prometheus
import Synchronization

/// The service's Prometheus registry and the metrics it records itself.
package final class ServiceMetrics: Sendable {
    package let registry: PrometheusCollectorRegistry
    /// The labels each upstream connection's gauge was last written with, so a renamed or vanished one is removed.
    private let upstreamGauges = Mutex<[UUID: [(String, String)]]>([:])
    /// The reconciliation gauges last written (descriptor name and labels), so those of a vanished connection go.
    private let reconciliationGauges = Mutex<[String: (name: String, labels: [(String, String)])]>([:])
    /// The labels each gauge family of ``setGauges(_:_:)`` was last written with, by metric name.
    private let gaugeFamilies = Mutex<[String: [[(String, String)]]]>([:])
    package static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5),
        .seconds(10),
    ]

    package init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    /// Counts a finished request and records its latency, by operation id and status.
    package func recordRequest(operation: String, status: Int, duration: Duration) {
        registry.makeCounter(
            descriptor: .init(
                metricName: "http_requests", unitName: "total", helpText: "HTTP requests by operation and status"),
            labels: [("operation", operation), ("status", String(status))]
        ).increment()
        registry.makeDurationHistogram(
            descriptor: .init(
                metricName: "http_request_duration", unitName: "seconds", helpText: "HTTP request latency by operation"),
            labels: [("operation", operation)],
            buckets: Self.latencyBuckets
        ).record(duration)
    }

    /// Sets every gauge of one family at once (one value per label set, or one value without labels) and removes those
    /// of the family that were set last time and are not any more, so a gauge of a vanished thing does not linger.
    package func setGauges(_ descriptor: MetricNameDescriptor, _ values: [([(String, String)], Double)]) {
        gaugeFamilies.withLock { families in
            for (labels, value) in values {
                registry.makeGauge(descriptor: descriptor, labels: labels).set(value)
            }
            for labels in families[descriptor.metricName] ?? []
            where !values.contains(where: { $0.0.elementsEqual(labels, by: ==) }) {
                registry.unregisterGauge(registry.makeGauge(descriptor: descriptor, labels: labels))
            }
            families[descriptor.metricName] = values.map(\.0)
        }
    }

    /// Copies the pool's current figures into gauges (called before each scrape).
    package func recordPool(_ statistics: PostgresPoolStatistics, maximum: Int) {
        registry.makeGauge(
            descriptor: .init(
                metricName: "db_pool_max_connections", unitName: "",
                helpText: "Most connections the database pool opens (its size)")
        ).set(Double(maximum))
        let connections = MetricNameDescriptor(
            metricName: "db_pool_connections", unitName: "", helpText: "Database pool connections by state")
        for (state, value) in [
            ("idle", statistics.idle), ("leased", statistics.leased), ("opening", statistics.opening),
            ("waiting", statistics.waiting),
        ] {
            registry.makeGauge(descriptor: connections, labels: [("state", state)]).set(Double(value))
        }
        let events = MetricNameDescriptor(
            metricName: "db_pool_events", unitName: "", helpText: "Database pool events since start, by kind")
        for (kind, value) in [
            ("opened", statistics.opened), ("closed", statistics.closed),
            ("acquire_timeout", statistics.acquireTimeouts),
            ("connect_failure", statistics.connectFailures),
        ] {
            registry.makeGauge(descriptor: events, labels: [("event", kind)]).set(Double(value))
        }
    }

    /// Sets `upstream_connection_paused{connection="<name>",connection_id="<id>"}` to 1 for each paused connection and 0
    /// for each active one, from the database's current state (called before each scrape, so every instance reports
    /// the same, whoever paused it).
    package func recordUpstreamConnections(_ states: [(id: UUID, name: String, paused: Bool)]) {
        let descriptor = MetricNameDescriptor(
            metricName: "upstream_connection_paused", unitName: "",
            helpText: "1 while an upstream connection is paused (nothing is sent through it), else 0")
        upstreamGauges.withLock { known in
            var current: [UUID: [(String, String)]] = [:]
            for state in states {
                let labels = [("connection", state.name), ("connection_id", state.id.uuidString.lowercased())]
                registry.makeGauge(descriptor: descriptor, labels: labels).set(state.paused ? 1.0 : 0.0)
                current[state.id] = labels
            }
            for (id, labels) in known {
                if let now = current[id], now.elementsEqual(labels, by: { left, right in left == right }) { continue }
                registry.unregisterGauge(registry.makeGauge(descriptor: descriptor, labels: labels))
            }
            known = current
        }
    }

    /// One connection's latest reconciliation figures (docs/reconciliation.md, "Metrics").
    package struct ReconciliationFigures: Sendable {
        package var connectionID: UUID
        package var name: String
        /// In ledger minor units; nil before the first snapshot.
        package var drift: Int64?
        package var snapshotAgeSeconds: Double?
        /// Differences by kind in the day reports of the last 7 UTC days.
        package var differences: [(kind: String, count: Int)]

        package init(
            connectionID: UUID, name: String, drift: Int64?, snapshotAgeSeconds: Double?,
            differences: [(kind: String, count: Int)]
        ) {
            self.connectionID = connectionID
            self.name = name
            self.drift = drift
            self.snapshotAgeSeconds = snapshotAgeSeconds
            self.differences = differences
        }
    }

    /// Sets `upstream_credit_drift` (credits), `upstream_credit_snapshot_age_seconds` and
    /// `upstream_reconciliation_differences{kind}` per connection from the database (called before each scrape, so
    /// every instance shows the latest stored values).
    package func recordReconciliation(_ figures: [ReconciliationFigures]) {
        let drift = MetricNameDescriptor(
            metricName: "upstream_credit_drift", unitName: "",
            helpText:
                "Change of (upstream credits - ledger upstream balance) since the reconciliation baseline, in credits, at the latest snapshot"
        )
        let age = MetricNameDescriptor(
            metricName: "upstream_credit_snapshot_age", unitName: "seconds",
            helpText: "Age of the latest credit snapshot of the connection")
        let differences = MetricNameDescriptor(
            metricName: "upstream_reconciliation_differences", unitName: "",
            helpText: "Differences with the upstream's report table in the day reports of the last 7 UTC days, by kind")
        let descriptors = [drift.metricName: drift, age.metricName: age, differences.metricName: differences]
        func name(_ descriptor: MetricNameDescriptor) -> String { descriptor.metricName }
        reconciliationGauges.withLock { known in
            var current: [String: (name: String, labels: [(String, String)])] = [:]
            func set(_ descriptor: MetricNameDescriptor, _ labels: [(String, String)], _ value: Double) {
                registry.makeGauge(descriptor: descriptor, labels: labels).set(value)
                let key = ([name(descriptor)] + labels.map { "\($0.0)=\($0.1)" }).joined(separator: "|")
                current[key] = (name(descriptor), labels)
            }
            for figure in figures {
                let labels = [
                    ("connection", figure.name), ("connection_id", figure.connectionID.uuidString.lowercased()),
                ]
                if let value = figure.drift { set(drift, labels, Double(value) / 10_000) }
                if let value = figure.snapshotAgeSeconds { set(age, labels, value) }
                for (kind, count) in figure.differences { set(differences, labels + [("kind", kind)], Double(count)) }
            }
            for (key, gauge) in known where current[key] == nil {
                guard let descriptor = descriptors[gauge.name] else { continue }
                registry.unregisterGauge(registry.makeGauge(descriptor: descriptor, labels: gauge.labels))
            }
            known = current
        }
    }

    /// The histogram `db_pool_acquire_wait_seconds`: how long each acquisition of a pooled connection waited (zero when
    /// one was idle). Made once, here, so the pool's observer does no registry look-up per acquisition.
    package func poolAcquireWaitObserver() -> @Sendable (Duration) -> Void {
        let histogram = registry.makeDurationHistogram(
            descriptor: .init(
                metricName: "db_pool_acquire_wait", unitName: "seconds",
                helpText: "Time a task waited for a database connection from the pool (zero when one was idle)"),
            labels: [],
            buckets: Self.waitBuckets
        )
        return { histogram.record($0) }
    }

    /// Buckets for waits that are mostly zero: from 100 µs, where a waiting acquisition starts.
    package static let waitBuckets: [Duration] =
        [.microseconds(100), .microseconds(500)] + latencyBuckets

    /// The Prometheus text exposition of every registered metric.
    package func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}
