import Foundation
import Gateway1601
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

    /// Records a failed upstream call: its duration by disposition, and `dispatch_upstream_errors_total` by the 1601
    /// error code (or the kind of failure when the gateway gave no code).
    package func recordUpstreamCall(connection: String, error: Gateway1601Error, duration: Duration) {
        recordUpstreamCall(connection: connection, result: error.disposition.rawValue, duration: duration)
        registry.makeCounter(
            descriptor: .init(
                metricName: "dispatch_upstream_errors", unitName: "total",
                helpText:
                    "Failed upstream calls of this instance's dispatcher by 1601 error code (or timeout, connection_failed, connection_lost, http_status, malformed_answer, invalid_request, invalid_configuration)"
            ),
            labels: [("connection", connection), ("code", Self.errorCode(error))]
        ).increment()
    }

    /// The `code` label of an upstream failure: the 1601 code's number, else the kind of failure.
    package static func errorCode(_ error: Gateway1601Error) -> String {
        switch error {
        case .gateway(let code): String(code.rawValue)
        case .timeout: "timeout"
        case .connectionFailed: "connection_failed"
        case .connectionLost: "connection_lost"
        case .httpStatus: "http_status"
        case .malformedAnswer: "malformed_answer"
        case .invalidRequest: "invalid_request"
        case .invalidConfiguration: "invalid_configuration"
        }
    }
}
