import Foundation
import Gateway1601
import Logging
import PostgresLibpq
import Prometheus
import ResellerCore
import ServiceLifecycle

/// The polling fallback for delivery reports: a submitted message with no final report `pollAfter` its submission is
/// asked about through `gatewayrapport.php?smsid=…&datum=ja`, then again at doubling intervals (at most `pollCap`
/// apart); what the upstream answers is applied like a callback (`DeliveryReports`, source `poll`). A message still
/// without a final state `expireAfter` its submission becomes `expired` and is settled by its policy for `expired`.
/// Safe on several instances: polls are claimed with `SKIP LOCKED` and moved forward in the same statement.
package struct ReportPoller: Service {
    package struct Settings: Sendable {
        /// How often the poller looks for messages due for a poll or for expiry.
        package var interval: Duration = .seconds(5)
        /// A submitted message is first polled this long after submission, then at doubling intervals …
        package var pollAfter: Duration = .seconds(30 * 60)
        /// … at most this far apart.
        package var pollCap: Duration = .seconds(6 * 3600)
        /// A submitted message still without a final report this long after submission becomes `expired`.
        package var expireAfter: Duration = .seconds(72 * 3600)
        package var batchSize: Int = 100

        package init() {}
    }

    package let reports: DeliveryReports
    package let connections: UpstreamConnectionRepository
    package let clients: UpstreamClients
    package let settings: Settings
    package let metrics: ServiceMetrics
    package let logger: Logger

    package init(
        reports: DeliveryReports, connections: UpstreamConnectionRepository, clients: UpstreamClients,
        settings: Settings, metrics: ServiceMetrics, logger: Logger
    ) {
        self.reports = reports
        self.connections = connections
        self.clients = clients
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
    }

    package func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await runOnce()
                try? await Task.sleep(for: settings.interval)
            }
        }
    }

    /// One round: poll what is due (a batch), then expire what is too old.
    package func runOnce() async {
        do {
            let due = try await reports.repository.claimPolls(
                after: settings.pollAfter, cap: settings.pollCap, limit: settings.batchSize)
            var byConnection: [UUID: [DeliveryReportRepository.PollCandidate]] = [:]
            for candidate in due { byConnection[candidate.connectionID, default: []].append(candidate) }
            for (connectionID, candidates) in byConnection {
                guard let connection = try await connections.connection(id: connectionID), !connection.isPaused else {
                    continue
                }
                let client = try clients.client(for: connection)
                await withTaskGroup(of: Void.self) { group in
                    for candidate in candidates {
                        group.addTask { await poll(candidate, with: client, connection: connection.record.name) }
                    }
                }
            }
            let expired = try await reports.repository.expire(
                olderThan: settings.expireAfter, limit: settings.batchSize)
            if expired > 0 {
                logger.notice("messages expired without a final report", metadata: ["count": "\(expired)"])
            }
        } catch let error as PostgresError where error.sqlState == "42P01" {
            logger.debug("report polling waits for the schema", metadata: ["error": "\(error)"])
        } catch {
            if Task.isCancelled || error is CancellationError { return }
            logger.warning("report polling failed", metadata: ["error": "\(error)"])
        }
    }

    private func poll(
        _ candidate: DeliveryReportRepository.PollCandidate, with client: Gateway1601Client, connection: String
    ) async {
        do {
            let started = ContinuousClock.now
            let answer: Gateway1601.DeliveryReport
            do throws(Gateway1601Error) {
                answer = try await client.deliveryStatus(smsID: candidate.upstreamID, includeDate: true)
                metrics.recordReportPoll(connection: connection, error: nil, duration: ContinuousClock.now - started)
            } catch {
                metrics.recordReportPoll(connection: connection, error: error, duration: ContinuousClock.now - started)
                throw error
            }
            guard answer.status != .none else { return }
            _ = try await reports.receive(
                IncomingReport(
                    connectionID: candidate.connectionID, smsID: candidate.upstreamID, status: answer.status,
                    reportedAt: answer.updatedAt?.date(), reference: candidate.messageID.apiString, source: .poll))
        } catch {
            // The claim already moved the next poll forward: the message is asked about again later.
            logger.info(
                "delivery status poll failed", metadata: ["smsid": "\(candidate.upstreamID)", "error": "\(error)"])
        }
    }
}

/// The report poller's upstream calls, beside the dispatcher's (docs/operations.md, "Metrics").
extension ServiceMetrics {
    /// Records one delivery-status poll: its duration by result (`ok`, `error`), and for a failure
    /// `report_poll_errors_total` by the 1601 error code (or the kind of failure, as for the dispatcher's calls).
    package func recordReportPoll(connection: String, error: Gateway1601Error?, duration: Duration) {
        registry.makeDurationHistogram(
            descriptor: .init(
                metricName: "report_poll_call_duration", unitName: "seconds",
                helpText: "Delivery-status polls of the report poller (gatewayrapport.php) by result"),
            labels: [("connection", connection), ("result", error == nil ? "ok" : "error")],
            buckets: Self.latencyBuckets
        ).record(duration)
        guard let error else { return }
        registry.makeCounter(
            descriptor: .init(
                metricName: "report_poll_errors", unitName: "total",
                helpText: "Failed delivery-status polls of this instance's report poller by 1601 error code (or kind)"),
            labels: [("connection", connection), ("code", Self.errorCode(error))]
        ).increment()
    }
}
