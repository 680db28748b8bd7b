import Foundation
import Prometheus
import ResellerCore

/// The dispatcher's metrics: what became of messages, pauses it caused, and how long upstream calls take.
extension ServiceMetrics {
    private static var dispatchedMessages: MetricNameDescriptor {
        MetricNameDescriptor(
            metricName: "dispatch_messages", unitName: "total",
            helpText:
                "Dispatch results recorded by this instance, by outcome (submitted, failed, retried, released, late_submission, discarded, stale)"
        )
    }

    /// Counts recorded dispatch results.
    package func recordDispatch(_ recorded: RecordedResults) {
        for (outcome, count) in [
            ("submitted", recorded.submitted), ("late_submission", recorded.lateSubmissions),
            ("failed", recorded.failed),
            ("retried", recorded.retried), ("released", recorded.released), ("discarded", recorded.discarded),
            ("stale", recorded.stale),
        ] where count > 0 {
            registry.makeCounter(descriptor: Self.dispatchedMessages, labels: [("outcome", outcome)]).increment(
                by: Int64(count))
        }
    }

    /// Counts a pause of an upstream connection by this instance's dispatcher.
    package func recordDispatchPause(connection: String, code: Int?) {
        registry.makeCounter(
            descriptor: .init(
                metricName: "dispatch_connection_pauses", unitName: "total",
                helpText: "Upstream connections paused by this instance's dispatcher after an account-level error"),
            labels: [("connection", connection), ("code", code.map(String.init) ?? "none")]
        ).increment()
    }

    /// Records the duration of one upstream send call by its disposition (`ok`, `retry`, `failMessage`, `pauseConnection`).
    package func recordUpstreamCall(connection: String, result: String, duration: Duration) {
        registry.makeDurationHistogram(
            descriptor: .init(
                metricName: "dispatch_upstream_call_duration", unitName: "seconds",
                helpText: "Upstream send calls by result"),
            labels: [("connection", connection), ("result", result)],
            buckets: Self.latencyBuckets
        ).record(duration)
    }
}
