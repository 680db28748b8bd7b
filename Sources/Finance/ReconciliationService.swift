import Foundation
import Gateway1601
import Logging
import PostgresLibpq
import ResellerCore
import ServiceLifecycle

/// How reconciliation reaches a connection's upstream account: its client (paused connections included) and name.
package struct ReconciliationUpstream: Sendable {
    package var name: String
    package var client: Gateway1601Client
    package var requestTimeout: Duration

    package init(name: String, client: Gateway1601Client, requestTimeout: Duration) {
        self.name = name
        self.client = client
        self.requestTimeout = requestTimeout
    }
}

/// Finds a connection's upstream; nil for an unknown connection, throws when it cannot be used (its credentials).
package typealias ReconciliationUpstreamProvider = @Sendable (UUID) async throws -> ReconciliationUpstream?

/// What one run wrote.
package struct ReconciliationRunResult: Sendable {
    package var run: ReconciliationRunRecord
    package var snapshot: CreditSnapshotRecord?
    package var days: [ReconciliationDayRecord]
}

/// Why a run did not start.
package enum ReconciliationRefusal: Error, Sendable, Equatable {
    case unknownConnection
    /// Another run holds the connection.
    case running
}

/// One reconciliation run of a connection (docs/reconciliation.md): a credit snapshot beside the ledger, then the
/// upstream's report table compared with our messages, per UTC day.
package struct Reconciler: Sendable {
    package var repository: ReconciliationRepository
    package var upstream: ReconciliationUpstreamProvider
    package var settings: ReconciliationSettings
    package var logger: Logger
    /// Names this instance in claims.
    package var worker: String

    package init(
        pool: PostgresPool, upstream: @escaping ReconciliationUpstreamProvider, settings: ReconciliationSettings,
        logger: Logger, worker: String = "reconciliation-\(UUID().apiString.prefix(8))"
    ) {
        self.repository = ReconciliationRepository(pool: pool)
        self.upstream = upstream
        self.settings = settings
        self.logger = logger
        self.worker = worker
    }

    /// The admin's run now: refused (``ReconciliationRefusal``) for an unknown connection or while another run holds
    /// it.
    package func runNow(connectionID: UUID, by actor: String) async throws -> ReconciliationRunResult {
        guard
            let claimed = try await repository.claimNow(
                connectionID: connectionID, worker: worker, lease: settings.runLease)
        else { throw ReconciliationRefusal.unknownConnection }
        guard claimed else { throw ReconciliationRefusal.running }
        let result: Result<ReconciliationRunResult, any Error>
        do {
            result = .success(try await run(connectionID: connectionID, trigger: .admin, by: actor))
        } catch {
            result = .failure(error)
        }
        try? await repository.release(connectionID: connectionID, worker: worker)
        return try result.get()
    }

    /// Runs a connection already claimed. Upstream failures are recorded as failed (or partial) runs, never thrown.
    package func run(connectionID: UUID, trigger: ReconciliationTrigger, by actor: String) async throws
        -> ReconciliationRunResult
    {
        let startedAt = Date()
        let target: ReconciliationUpstream
        do {
            guard let found = try await upstream(connectionID) else { throw ReconciliationRefusal.unknownConnection }
            target = found
        } catch let refusal as ReconciliationRefusal {
            throw refusal
        } catch {
            let run = try await repository.recordFailedRun(
                connectionID: connectionID, trigger: trigger, startedAt: startedAt,
                error: "the connection cannot be used: \(error)", by: actor)
            return ReconciliationRunResult(run: run, snapshot: nil, days: [])
        }

        // The snapshot: at a quiet instant if one comes within the tries, else the last try, inexact.
        var stored: (run: ReconciliationRunRecord, snapshot: CreditSnapshotRecord)?
        for attempt in 1...max(1, settings.quietAttempts) {
            guard let before = try await repository.probe(connectionID: connectionID) else {
                throw ReconciliationRefusal.unknownConnection
            }
            let askedAt = Date()
            let credits: Decimal
            do throws(Gateway1601Error) {
                credits = try await target.client.credits()
            } catch {
                logger.warning(
                    "reconciliation: the upstream's credits could not be read",
                    metadata: ["connection": "\(target.name)", "error": "\(error)"])
                let run = try await repository.recordFailedRun(
                    connectionID: connectionID, trigger: trigger, startedAt: startedAt,
                    error: "action=credits failed: \(error)", by: actor)
                return ReconciliationRunResult(run: run, snapshot: nil, days: [])
            }
            let reading = ReconciliationRepository.CreditsReading(
                answer: GatewayAnswer.credits(credits), credits: Reconciliation.minorUnits(ofCredits: credits),
                askedAt: askedAt, answeredAt: Date(), before: before)
            stored = try await repository.storeSnapshot(
                connectionID: connectionID, connectionName: target.name, trigger: trigger, startedAt: startedAt,
                reading: reading, threshold: settings.driftThreshold, force: attempt >= settings.quietAttempts,
                by: actor)
            if stored != nil { break }
            try? await Task.sleep(for: settings.quietPause)
        }
        guard let stored else { throw ReconciliationRefusal.unknownConnection }

        // The report table.
        let askedAt = Date()
        let rows: [ReportEntry]
        do throws(Gateway1601Error) {
            rows = try await target.client.report(count: settings.reportRows)
        } catch {
            logger.warning(
                "reconciliation: the upstream's report table could not be read",
                metadata: ["connection": "\(target.name)", "error": "\(error)"])
            _ = try await repository.storeDays(
                runID: stored.run.id, connectionID: connectionID, connectionName: target.name, days: [],
                wholeAccount: false, outcome: .partial, error: "action=rapport failed: \(error)")
            return ReconciliationRunResult(
                run: try await repository.run(id: stored.run.id) ?? stored.run, snapshot: stored.snapshot, days: [])
        }
        let ids = rows.compactMap { UUID(uuidString: $0.reference) }
        let known = try await repository.messages(
            ids: ids, upstreamIDs: rows.map(\.smsID), connectionID: connectionID)
        let comparison = try await Reconciliation.compare(
            rows: rows, asked: settings.reportRows, connectionID: connectionID, known: known, askedAt: askedAt,
            margin: Reconciliation.recordingMargin(requestTimeout: target.requestTimeout)
        ) { start in
            try await repository.submitted(connectionID: connectionID, after: start, upTo: askedAt)
        }
        let days = Reconciliation.days(of: comparison)
        let written = try await repository.storeDays(
            runID: stored.run.id, connectionID: connectionID, connectionName: target.name, days: days,
            wholeAccount: comparison.windowStart == nil, outcome: comparison.covers ? .ok : .partial,
            error: comparison.covers
                ? nil
                : "the report table (\(rows.count) rows) lists none of our messages through this connection: it covers no known period"
        )
        let differences = days.reduce(0) { $0 + $1.differences.count }
        logger.info(
            "reconciliation run",
            metadata: [
                "connection": "\(target.name)", "drift": "\(stored.snapshot.drift)",
                "exact": "\(stored.snapshot.exact)", "days": "\(written.count)", "differences": "\(differences)",
            ])
        return ReconciliationRunResult(
            run: try await repository.run(id: stored.run.id) ?? stored.run, snapshot: stored.snapshot, days: written)
    }
}

/// The background job: every few seconds, claims a connection whose run is due (one per connection per interval,
/// whatever the number of instances) and runs it. Off when the interval is zero.
package struct ReconciliationService: Service {
    package var reconciler: Reconciler
    /// How often due connections are looked for.
    package var tick: Duration

    package init(reconciler: Reconciler, tick: Duration = .seconds(5)) {
        self.reconciler = reconciler
        self.tick = tick
    }

    /// Runs every connection that is due now, one after the other; returns how many ran.
    @discardableResult
    package func runDue() async throws -> Int {
        let settings = reconciler.settings
        try await reconciler.repository.ensureStates()
        var ran = 0
        while let connectionID = try await reconciler.repository.claimDue(
            worker: reconciler.worker, interval: settings.interval, lease: settings.runLease)
        {
            do {
                _ = try await reconciler.run(
                    connectionID: connectionID, trigger: .schedule, by: "system:reconciliation")
            } catch {
                reconciler.logger.warning(
                    "reconciliation run failed", metadata: ["connection_id": "\(connectionID)", "error": "\(error)"])
            }
            try? await reconciler.repository.release(connectionID: connectionID, worker: reconciler.worker)
            ran += 1
        }
        return ran
    }

    /// Not to be run with a zero interval (the job is off then: leave it out of the services).
    package func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await runDue()
                } catch is CancellationError {
                    return
                } catch {
                    reconciler.logger.warning("reconciliation failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: tick)
            }
        }
    }
}
