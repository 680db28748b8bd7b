import Finance
import Foundation
import HTTPTypes
import Logging
import Messaging
import OpenAPIRuntime
import PostgresLibpq
import ResellerAPI
import ResellerCore

extension APIHandlers {
    package func getLiveness(_ input: Operations.GetLiveness.Input) async throws -> Operations.GetLiveness.Output {
        .ok(.init(body: .json(.init(status: .ok))))
    }

    package func getReadiness(_ input: Operations.GetReadiness.Input) async throws -> Operations.GetReadiness.Output {
        let started = ContinuousClock.now
        let failure: String?
        do {
            failure = try await withThrowingTaskGroup(of: String?.self) { group in
                group.addTask {
                    let answer = try await pool.query("SELECT 1").first(as: Int.self)
                    return answer == 1 ? nil : "unexpected answer from the database"
                }
                group.addTask {
                    try await Task.sleep(for: readinessTimeout)
                    return "no answer within \(readinessTimeout)"
                }
                let first = try await group.next() ?? "no answer"
                group.cancelAll()
                return first
            }
        } catch {
            failure = "\(error)"
        }
        let elapsed = ContinuousClock.now - started
        let milliseconds = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
        if let failure {
            logger.warning("not ready", metadata: ["check": "database", "reason": "\(failure)"])
            let problem = APIProblem(.serviceUnavailable, code: "not_ready", detail: "database: \(failure)")
            return .serviceUnavailable(
                .init(
                    body: .applicationProblemJson(
                        problem.document(instance: "/health/ready", requestID: RequestScope.requestID))))
        }
        return .ok(
            .init(
                body: .json(
                    .init(
                        status: .ready,
                        checks: [.init(name: "database", status: .ok, durationMs: milliseconds)]
                    ))))
    }

    package func getMetrics(_ input: Operations.GetMetrics.Input) async throws -> Operations.GetMetrics.Output {
        metrics.recordPool(pool.statistics, maximum: pool.poolConfiguration.maximumConnections)
        // A scrape still answers, and quickly, while the database is away: the gauges then keep their last values.
        let connections = upstreamConnections
        let states = try? await withThrowingTaskGroup(of: [(id: UUID, name: String, paused: Bool)]?.self) { group in
            group.addTask { try await connections.pauseStates() }
            group.addTask {
                try await Task.sleep(for: readinessTimeout)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        if let states { metrics.recordUpstreamConnections(states) }
        let operational = OperationalFiguresRepository(pool: pool)
        let figures = try? await withThrowingTaskGroup(of: OperationalFigures?.self) { group in
            group.addTask { try await operational.figures() }
            group.addTask {
                try await Task.sleep(for: readinessTimeout)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        if let figures { metrics.recordOperationalFigures(figures) }
        metrics.recordDatabaseUp(states != nil && figures != nil)
        let reconciliation = ReconciliationRepository(pool: pool)
        let gauges = try? await withThrowingTaskGroup(of: [ReconciliationGaugeRecord]?.self) { group in
            group.addTask { try await reconciliation.gauges() }
            group.addTask {
                try await Task.sleep(for: readinessTimeout)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        if let gauges {
            metrics.recordReconciliation(
                gauges.map { gauge in
                    ServiceMetrics.ReconciliationFigures(
                        connectionID: gauge.connectionID, name: gauge.name, drift: gauge.drift,
                        snapshotAgeSeconds: gauge.snapshotAgeSeconds,
                        differences: [
                            ("unknown_upstream", gauge.unknownUpstream), ("listed_twice", gauge.listedTwice),
                            ("missing_upstream", gauge.missingUpstream), ("other_upstream_id", gauge.otherUpstreamID),
                        ])
                })
        }
        return .ok(.init(body: .plainText(HTTPBody(metrics.exposition()))))
    }
}
