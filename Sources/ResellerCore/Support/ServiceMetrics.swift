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

    /// Copies the pool's current figures into gauges (called before each scrape).
    package func recordPool(_ statistics: PostgresPoolStatistics) {
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

    /// The Prometheus text exposition of every registered metric.
    package func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}
