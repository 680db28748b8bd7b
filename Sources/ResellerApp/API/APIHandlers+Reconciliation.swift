import Finance
import Foundation
import Gateway1601
import Logging
import Messaging
import ResellerAPI
import ResellerCore
import SMSCore

/// Reconciliation against the upstream (docs/reconciliation.md): admin only; to anyone else a connection does not
/// exist (404), as on the other upstream-connection paths.
extension APIHandlers {
    package var reconciler: Reconciler {
        Reconciler(
            pool: pool,
            upstream: Self.reconciliationUpstream(connections: upstreamConnections, clients: upstreamClients),
            settings: reconciliationSettings, logger: logger.relabeled("reconciliation"))
    }

    /// Reaches a connection's upstream account for reconciliation: paused connections too (that is when it matters).
    package static func reconciliationUpstream(
        connections: UpstreamConnectionRepository, clients: UpstreamClients
    ) -> ReconciliationUpstreamProvider {
        { id in
            guard let connection = try await connections.connection(id: id) else { return nil }
            let client = try clients.client(for: connection)
            return ReconciliationUpstream(
                name: connection.record.name, client: client,
                requestTimeout: .milliseconds(connection.record.requestTimeoutMilliseconds))
        }
    }

    package func runUpstreamReconciliation(_ input: Operations.RunUpstreamReconciliation.Input) async throws
        -> Operations.RunUpstreamReconciliation.Output
    {
        let (principal, id) = try adminConnectionID(input.path.connectionId)
        let result: ReconciliationRunResult
        do {
            result = try await reconciler.runNow(connectionID: id, by: principal.actor)
        } catch ReconciliationRefusal.unknownConnection {
            throw APIProblem.notFound("No upstream connection \(id.apiString).")
        } catch ReconciliationRefusal.running {
            throw APIProblem.conflict("A reconciliation of this connection is running; try again when it has finished.")
        }
        let repository = ReconciliationRepository(pool: pool)
        let purchases = try await repository.purchases(snapshotIDs: result.snapshot.map { [$0.id] } ?? [])
        return .created(
            .init(
                body: .json(
                    .init(
                        run: Self.schema(result.run),
                        snapshot: result.snapshot.map { Self.schema($0, purchases: purchases[$0.id] ?? []) },
                        days: try result.days.map { try Self.schema($0, withDifferences: true) }))))
    }

    package func listUpstreamCreditSnapshots(_ input: Operations.ListUpstreamCreditSnapshots.Input) async throws
        -> Operations.ListUpstreamCreditSnapshots.Output
    {
        let (_, id) = try adminConnectionID(input.path.connectionId)
        var validator = Validator()
        let limit = validator.limit(input.query.limit)
        let cursor = validator.uuidCursor(input.query.cursor)
        try validator.check()
        guard try await upstreamConnections.find(id: id) != nil else {
            throw APIProblem.notFound("No upstream connection \(id.apiString).")
        }
        let repository = ReconciliationRepository(pool: pool)
        let page = Page(
            try await repository.snapshots(connectionID: id, before: cursor, limit: limit + 1), limit: limit)
        let purchases = try await repository.purchases(snapshotIDs: page.items.map(\.id))
        return .ok(
            .init(
                body: .json(
                    .init(
                        items: page.items.map { Self.schema($0, purchases: purchases[$0.id] ?? []) },
                        nextCursor: page.nextCursor { $0.id.apiString }))))
    }

    package func resetUpstreamReconciliationBaseline(
        _ input: Operations.ResetUpstreamReconciliationBaseline.Input
    ) async throws -> Operations.ResetUpstreamReconciliationBaseline.Output {
        let (principal, id) = try adminConnectionID(input.path.connectionId)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let reason = validator.text(body.reason, field: "/reason", minimum: 1, maximum: 500)
        var snapshotID: UUID?
        if let text = body.snapshotId {
            snapshotID = UUID(uuidString: text)
            if snapshotID == nil { validator.fail("/snapshotId", "must be a UUID") }
        }
        try validator.check()
        guard try await upstreamConnections.find(id: id) != nil else {
            throw APIProblem.notFound("No upstream connection \(id.apiString).")
        }
        let repository = ReconciliationRepository(pool: pool)
        guard
            let snapshot = try await repository.resetBaseline(
                connectionID: id, snapshotID: snapshotID, reason: reason ?? "", by: AuditActor(principal))
        else {
            throw APIProblem.notFound(
                snapshotID == nil
                    ? "The connection has no credit snapshot yet: run a reconciliation first."
                    : "No credit snapshot \(snapshotID!.apiString) of this connection.")
        }
        logger.notice(
            "reconciliation baseline reset",
            metadata: [
                "connection_id": "\(id.apiString)", "snapshot": "\(snapshot.id.apiString)", "by": "\(principal.actor)",
            ])
        let purchases = try await repository.purchases(snapshotIDs: [snapshot.id])
        return .ok(.init(body: .json(Self.schema(snapshot, purchases: purchases[snapshot.id] ?? []))))
    }

    package func listUpstreamReconciliationDays(_ input: Operations.ListUpstreamReconciliationDays.Input) async throws
        -> Operations.ListUpstreamReconciliationDays.Output
    {
        let (_, id) = try adminConnectionID(input.path.connectionId)
        var validator = Validator()
        let limit = validator.limit(input.query.limit)
        let cursor = input.query.cursor
        if let cursor, Self.day(cursor) == nil { validator.fail("/cursor", "must be the nextCursor of a page") }
        try validator.check()
        guard try await upstreamConnections.find(id: id) != nil else {
            throw APIProblem.notFound("No upstream connection \(id.apiString).")
        }
        let rows = try await ReconciliationRepository(pool: pool).days(
            connectionID: id, before: cursor, limit: limit + 1)
        let page = Page(rows, limit: limit)
        return .ok(
            .init(
                body: .json(
                    .init(
                        items: try page.items.map { try Self.schema($0, withDifferences: false) },
                        nextCursor: page.nextCursor { $0.day }))))
    }

    package func getUpstreamReconciliationDay(_ input: Operations.GetUpstreamReconciliationDay.Input) async throws
        -> Operations.GetUpstreamReconciliationDay.Output
    {
        let (_, id) = try adminConnectionID(input.path.connectionId)
        guard let day = Self.day(input.path.day) else {
            throw APIProblem.validation([.init(field: "/day", message: "must be a date YYYY-MM-DD")])
        }
        guard try await upstreamConnections.find(id: id) != nil else {
            throw APIProblem.notFound("No upstream connection \(id.apiString).")
        }
        guard let record = try await ReconciliationRepository(pool: pool).day(connectionID: id, day: day) else {
            throw APIProblem.notFound("No reconciliation of \(day) for this connection.")
        }
        return .ok(.init(body: .json(try Self.schema(record, withDifferences: true))))
    }

    /// `YYYY-MM-DD` of a real date, else nil.
    private static func day(_ text: String) -> String? {
        guard text.count == 10,
            let date = try? Date(text, strategy: Date.ISO8601FormatStyle(timeZone: .gmt).year().month().day()),
            date.formatted(Date.ISO8601FormatStyle(timeZone: .gmt).year().month().day()) == text
        else { return nil }
        return text
    }

    // MARK: - Schemas

    static func money(_ units: Int64) -> String { Money(minorUnits: units).description }

    static func schema(_ run: ReconciliationRunRecord) -> Components.Schemas.ReconciliationRun {
        .init(
            id: run.id.apiString, connectionId: run.connectionID.apiString,
            trigger: run.trigger == .admin ? .admin : .schedule, startedAt: run.startedAt, finishedAt: run.finishedAt,
            outcome: .init(rawValue: run.outcome.rawValue)!, error: run.error, createdBy: run.createdBy)
    }

    static func schema(_ snapshot: CreditSnapshotRecord, purchases: [UpstreamPurchaseRecord])
        -> Components.Schemas.CreditSnapshot
    {
        .init(
            id: snapshot.id.apiString, connectionId: snapshot.connectionID.apiString, runId: snapshot.runID.apiString,
            askedAt: snapshot.askedAt, answeredAt: snapshot.answeredAt, takenAt: snapshot.takenAt,
            upstreamAnswer: snapshot.upstreamAnswer, upstreamCredits: money(snapshot.upstreamCredits),
            ledgerBalance: money(snapshot.ledgerBalance), inFlightMessages: snapshot.inFlightMessages,
            inFlightCost: money(snapshot.inFlightCost), recordedDuring: money(snapshot.recordedDuring),
            exact: snapshot.exact, difference: money(snapshot.difference), uncertainty: money(snapshot.uncertainty),
            baselineSnapshotId: snapshot.baselineSnapshotID.apiString, drift: money(snapshot.drift),
            previousSnapshotId: snapshot.previousSnapshotID?.apiString,
            purchasesSincePrevious: money(snapshot.purchasesSincePrevious), purchases: purchases.map(Self.schema))
    }

    static func schema(_ day: ReconciliationDayRecord, withDifferences: Bool) throws
        -> Components.Schemas.ReconciliationDay
    {
        .init(
            connectionId: day.connectionID.apiString, day: day.day, runId: day.runID.apiString,
            checkedAt: day.checkedAt, coveredFrom: day.coveredFrom, coveredUntil: day.coveredUntil,
            complete: day.complete, rowsListed: day.rowsListed, messagesCompared: day.messagesCompared,
            matched: day.matched, unknownUpstream: day.unknownUpstream, listedTwice: day.listedTwice,
            missingUpstream: day.missingUpstream, otherUpstreamId: day.otherUpstreamID, inFlight: day.inFlight,
            differenceCount: day.differenceCount,
            differences: withDifferences ? try day.differences().map(Self.schema) : nil)
    }

    static func schema(_ difference: ReconciliationDifference) -> Components.Schemas.ReconciliationDifference {
        .init(
            kind: .init(rawValue: difference.kind.rawValue)!, messageId: difference.messageId?.apiString,
            upstreamId: difference.upstreamId, listedUpstreamIds: difference.listedUpstreamIds,
            reference: difference.reference, status: difference.status, acceptedAt: difference.acceptedAt,
            submittedAt: difference.submittedAt, listedStatus: difference.listedStatus,
            upstreamCost: difference.upstreamCost.map(money), detail: difference.detail)
    }
}
