import Metrics
import PostgresLibpq
import Prometheus

/// The service's Prometheus registry and the metrics it records itself.
public final class ServiceMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    /// Counts a finished request and records its latency, by operation id and status.
    func recordRequest(operation: String, status: Int, duration: Duration) {
        registry.makeCounter(
            descriptor: .init(metricName: "http_requests", unitName: "total", helpText: "HTTP requests by operation and status"),
            labels: [("operation", operation), ("status", String(status))]
        ).increment()
        registry.makeDurationHistogram(
            descriptor: .init(metricName: "http_request_duration", unitName: "seconds", helpText: "HTTP request latency by operation"),
            labels: [("operation", operation)],
            buckets: Self.latencyBuckets
        ).record(duration)
    }

    /// Copies the pool's current figures into gauges (called before each scrape).
    func recordPool(_ statistics: PostgresPoolStatistics) {
        let connections = MetricNameDescriptor(
            metricName: "db_pool_connections", unitName: "", helpText: "Database pool connections by state")
        for (state, value) in [
            ("idle", statistics.idle), ("leased", statistics.leased), ("opening", statistics.opening), ("waiting", statistics.waiting),
        ] {
            registry.makeGauge(descriptor: connections, labels: [("state", state)]).set(Double(value))
        }
        let events = MetricNameDescriptor(
            metricName: "db_pool_events", unitName: "", helpText: "Database pool events since start, by kind")
        for (kind, value) in [
            ("opened", statistics.opened), ("closed", statistics.closed), ("acquire_timeout", statistics.acquireTimeouts),
            ("connect_failure", statistics.connectFailures),
        ] {
            registry.makeGauge(descriptor: events, labels: [("event", kind)]).set(Double(value))
        }
    }

    /// The Prometheus text exposition of every registered metric.
    func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}
