import Foundation
import PostgresLibpq
import ResellerCore
import SMSCore

/// A run of reconciliation, as stored.
package struct ReconciliationRunRecord: Decodable, Sendable, Equatable {
    package var id: UUID
    package var connectionID: UUID
    package var trigger: ReconciliationTrigger
    package var startedAt: Date
    package var finishedAt: Date
    package var outcome: ReconciliationOutcome
    package var error: String?
    package var createdBy: String

    package enum CodingKeys: String, CodingKey {
        case id, trigger, outcome, error
        case connectionID = "connection_id"
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case createdBy = "created_by"
    }
}

/// A credit snapshot (docs/reconciliation.md, "Credit snapshots and drift"). Amounts are ledger minor units.
package struct CreditSnapshotRecord: Decodable, Sendable, Equatable {
    package var id: UUID
    package var connectionID: UUID
    package var runID: UUID
    package var askedAt: Date
    package var answeredAt: Date
    package var takenAt: Date
    package var upstreamAnswer: String
    package var upstreamCredits: Int64
    package var ledgerBalance: Int64
    package var inFlightMessages: Int
    package var inFlightCost: Int64
    package var recordedDuring: Int64
    package var exact: Bool
    package var difference: Int64
    package var uncertainty: Int64
    package var baselineSnapshotID: UUID
    package var drift: Int64
    package var previousSnapshotID: UUID?
    package var purchasesSincePrevious: Int64

    package enum CodingKeys: String, CodingKey {
        case id, exact, difference, uncertainty, drift
        case connectionID = "connection_id"
        case runID = "run_id"
        case askedAt = "asked_at"
        case answeredAt = "answered_at"
        case takenAt = "taken_at"
        case upstreamAnswer = "upstream_answer"
        case upstreamCredits = "upstream_credits"
        case ledgerBalance = "ledger_balance"
        case inFlightMessages = "in_flight_messages"
        case inFlightCost = "in_flight_cost"
        case recordedDuring = "recorded_during"
        case baselineSnapshotID = "baseline_snapshot_id"
        case previousSnapshotID = "previous_snapshot_id"
        case purchasesSincePrevious = "purchases_since_previous"
    }
}

/// A purchase a snapshot saw first on the ledger.
package struct SnapshotPurchaseRecord: Decodable, Sendable, Equatable {
    package var snapshotID: UUID
    package var purchase: UpstreamPurchaseRecord

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        snapshotID = try container.decode(UUID.self, forKey: .snapshotID)
        purchase = try UpstreamPurchaseRecord(from: decoder)
    }

    enum CodingKeys: String, CodingKey {
        case snapshotID = "snapshot_id"
    }
}

/// A day report, as stored.
package struct ReconciliationDayRecord: Decodable, Sendable {
    package var connectionID: UUID
    package var day: String
    package var runID: UUID
    package var checkedAt: Date
    package var coveredFrom: Date?
    package var coveredUntil: Date
    package var complete: Bool
    package var rowsListed: Int
    package var messagesCompared: Int
    package var matched: Int
    package var unknownUpstream: Int
    package var listedTwice: Int
    package var missingUpstream: Int
    package var otherUpstreamID: Int
    package var inFlight: Int
    private var differencesJSON: String

    package enum CodingKeys: String, CodingKey {
        case day, complete, matched
        case connectionID = "connection_id"
        case runID = "run_id"
        case checkedAt = "checked_at"
        case coveredFrom = "covered_from"
        case coveredUntil = "covered_until"
        case rowsListed = "rows_listed"
        case messagesCompared = "messages_compared"
        case unknownUpstream = "unknown_upstream"
        case listedTwice = "listed_twice"
        case missingUpstream = "missing_upstream"
        case otherUpstreamID = "other_upstream_id"
        case inFlight = "in_flight"
        case differencesJSON = "differences"
    }

    package var differenceCount: Int { unknownUpstream + listedTwice + missingUpstream + otherUpstreamID }

    package func differences() throws -> [ReconciliationDifference] {
        try ReconciliationRepository.decoder.decode(
            [ReconciliationDifference].self, from: Data(differencesJSON.utf8))
    }
}

/// The reconciliation state of a connection.
package struct ReconciliationStateRecord: Decodable, Sendable, Equatable {
    package var connectionID: UUID
    package var nextRunAt: Date
    package var baselineSnapshotID: UUID?
    package var driftAlerted: Bool

    package enum CodingKeys: String, CodingKey {
        case connectionID = "connection_id"
        case nextRunAt = "next_run_at"
        case baselineSnapshotID = "baseline_snapshot_id"
        case driftAlerted = "drift_alerted"
    }
}

/// The latest figures per connection, for `/metrics`.
package struct ReconciliationGaugeRecord: Decodable, Sendable, Equatable {
    package var connectionID: UUID
    package var name: String
    package var drift: Int64?
    package var snapshotAgeSeconds: Double?
    package var unknownUpstream: Int
    package var listedTwice: Int
    package var missingUpstream: Int
    package var otherUpstreamID: Int

    package enum CodingKeys: String, CodingKey {
        case name, drift
        case connectionID = "connection_id"
        case snapshotAgeSeconds = "snapshot_age_seconds"
        case unknownUpstream = "unknown_upstream"
        case listedTwice = "listed_twice"
        case missingUpstream = "missing_upstream"
        case otherUpstreamID = "other_upstream_id"
    }
}

/// What the ledger says about a connection at one instant.
package struct LedgerProbe: Decodable, Sendable, Equatable {
    package var balance: Int64
    package var debitsPosted: Int64
    package var inFlightMessages: Int
    package var inFlightCost: Int64

    package enum CodingKeys: String, CodingKey {
        case balance
        case debitsPosted = "debits_posted"
        case inFlightMessages = "in_flight_messages"
        case inFlightCost = "in_flight_cost"
    }
}

/// The SQL of reconciliation (docs/reconciliation.md).
package struct ReconciliationRepository: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    static let snapshotColumns = """
        id, connection_id, run_id, asked_at, answered_at, taken_at, upstream_answer, upstream_credits, ledger_balance,
        in_flight_messages, in_flight_cost, recorded_during, exact, difference, uncertainty, baseline_snapshot_id, drift,
        previous_snapshot_id, purchases_since_previous
        """
    static let dayColumns = """
        connection_id, to_char(day, 'YYYY-MM-DD') AS day, run_id, checked_at, covered_from, covered_until, complete,
        rows_listed, messages_compared, matched, unknown_upstream, listed_twice, missing_upstream, other_upstream_id,
        in_flight, differences::text AS differences
        """

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true)))
        }
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()
    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            if let date = try? Date(
                text, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true))
            {
                return date
            }
            return try Date(text, strategy: .iso8601)
        }
        return decoder
    }()

    // MARK: Claims

    /// Makes sure every connection has its state row.
    package func ensureStates() async throws {
        _ = try await pool.query(
            """
            INSERT INTO upstream_reconciliation_state (connection_id)
            SELECT id FROM upstream_connection ON CONFLICT (connection_id) DO NOTHING
            """)
    }

    /// Claims one connection whose run is due: its next run moves `interval` ahead (so no other instance runs it within
    /// the interval) and it is held for `lease`. Nil when none is due.
    package func claimDue(worker: String, interval: Duration, lease: Duration) async throws -> UUID? {
        try await pool.query(
            """
            WITH due AS (
                SELECT connection_id FROM upstream_reconciliation_state
                WHERE next_run_at <= now() AND (running_until IS NULL OR running_until < now())
                ORDER BY next_run_at LIMIT 1
                FOR UPDATE SKIP LOCKED
            )
            UPDATE upstream_reconciliation_state s
            SET next_run_at = now() + make_interval(secs => \(interval.inSeconds)), running_by = \(worker),
                running_until = now() + make_interval(secs => \(lease.inSeconds)), updated_at = now()
            FROM due WHERE s.connection_id = due.connection_id
            RETURNING s.connection_id
            """
        ).first(as: UUID.self)
    }

    /// Claims `connectionID` now (the admin's run), unless a run holds it. Nil for an unknown connection.
    package func claimNow(connectionID: UUID, worker: String, lease: Duration) async throws -> Bool? {
        try await pool.withTransaction { connection in
            _ = try await connection.query(
                """
                INSERT INTO upstream_reconciliation_state (connection_id)
                SELECT id FROM upstream_connection WHERE id = \(connectionID)
                ON CONFLICT (connection_id) DO NOTHING
                """)
            guard
                try await connection.query(
                    "SELECT 1 FROM upstream_reconciliation_state WHERE connection_id = \(connectionID)"
                ).first(as: Int.self) != nil
            else { return nil }
            return try await connection.query(
                """
                UPDATE upstream_reconciliation_state
                SET running_by = \(worker), running_until = now() + make_interval(secs => \(lease.inSeconds)),
                    updated_at = now()
                WHERE connection_id = \(connectionID) AND (running_until IS NULL OR running_until < now())
                RETURNING 1
                """
            ).first(as: Int.self) != nil
        }
    }

    /// Lets go of a claim.
    package func release(connectionID: UUID, worker: String) async throws {
        _ = try await pool.query(
            """
            UPDATE upstream_reconciliation_state SET running_by = NULL, running_until = NULL, updated_at = now()
            WHERE connection_id = \(connectionID) AND running_by = \(worker)
            """)
    }

    // MARK: Runs and snapshots

    /// Records a run that read nothing from the upstream.
    package func recordFailedRun(
        connectionID: UUID, trigger: ReconciliationTrigger, startedAt: Date, error: String, by actor: String
    ) async throws -> ReconciliationRunRecord {
        try await pool.query(
            """
            INSERT INTO upstream_reconciliation_run (id, connection_id, trigger, started_at, outcome, error, created_by)
            VALUES (\(UUID()), \(connectionID), \(trigger.rawValue), \(startedAt), 'failed', left(\(error), 1000), \(actor))
            RETURNING id, connection_id, trigger, started_at, finished_at, outcome, error, created_by
            """
        ).decodeRecords(ReconciliationRunRecord.self)[0]
    }

    /// The ledger's upstream balance of the connection, its posted debits (the upstream cost recorded so far), and its
    /// messages whose upstream charge may be in flight: claimed by a dispatcher, or in doubt.
    package static func probe(connectionID: UUID, on connection: PostgresConnection) async throws -> LedgerProbe? {
        try await connection.query(
            """
            SELECT a.credits_posted - a.debits_posted AS balance, a.debits_posted,
                   f.in_flight_messages, f.in_flight_cost
            FROM ledger_account a
            CROSS JOIN LATERAL (
                SELECT count(*)::integer AS in_flight_messages, coalesce(sum(m.upstream_cost), 0)::bigint AS in_flight_cost
                FROM message_outbox o JOIN message m ON m.id = o.message_id
                WHERE o.connection_id = \(connectionID) AND (o.leased_by IS NOT NULL OR o.possibly_sent)
            ) f
            WHERE a.kind = 'upstream_balance' AND a.upstream_connection_id = \(connectionID)
            """
        ).decodeRecords(LedgerProbe.self).first
    }

    package func probe(connectionID: UUID) async throws -> LedgerProbe? {
        try await pool.withConnection { try await Self.probe(connectionID: connectionID, on: $0) }
    }

    /// What a snapshot attempt saw of the upstream.
    package struct CreditsReading: Sendable {
        package var answer: String
        package var credits: Int64
        package var askedAt: Date
        package var answeredAt: Date
        package var before: LedgerProbe

        package init(answer: String, credits: Int64, askedAt: Date, answeredAt: Date, before: LedgerProbe) {
            self.answer = answer
            self.credits = credits
            self.askedAt = askedAt
            self.answeredAt = answeredAt
            self.before = before
        }
    }

    /// In one transaction: reads the ledger right after the upstream answered, and, when the instant was quiet or
    /// `force`, stores the run and the snapshot with its drift, links the purchases first seen, and raises or clears
    /// the drift alert (an event per crossing). Nil when the instant was not quiet and not forced.
    package func storeSnapshot(
        connectionID: UUID, connectionName: String, trigger: ReconciliationTrigger, startedAt: Date,
        reading: CreditsReading, threshold: Int64, force: Bool, by actor: String
    ) async throws -> (run: ReconciliationRunRecord, snapshot: CreditSnapshotRecord)? {
        try await pool.withTransaction(isolation: .repeatableRead) { connection in
            // The state row first: it serialises with a baseline reset, and fixes the transaction's snapshot.
            guard
                let state = try await connection.query(
                    """
                    SELECT connection_id, next_run_at, baseline_snapshot_id, drift_alerted
                    FROM upstream_reconciliation_state WHERE connection_id = \(connectionID) FOR UPDATE
                    """
                ).decodeRecords(ReconciliationStateRecord.self).first,
                let after = try await Self.probe(connectionID: connectionID, on: connection)
            else { throw DomainError.notFound("No upstream connection \(connectionID.apiString).") }
            let recordedDuring = max(0, after.debitsPosted - reading.before.debitsPosted)
            let exact = reading.before.inFlightMessages == 0 && after.inFlightMessages == 0 && recordedDuring == 0
            guard exact || force else { return nil }
            // Every in-flight call is taken as charged: the difference is what is left if they all were.
            let difference = reading.credits - (after.balance - after.inFlightCost)
            let uncertainty = exact ? 0 : after.inFlightCost + recordedDuring
            let runID = UUID()
            let snapshotID = UUID()
            let run = try await connection.query(
                """
                INSERT INTO upstream_reconciliation_run (id, connection_id, trigger, started_at, outcome, error, created_by)
                VALUES (\(runID), \(connectionID), \(trigger.rawValue), \(startedAt), 'partial',
                        'the report table was not compared yet', \(actor))
                RETURNING id, connection_id, trigger, started_at, finished_at, outcome, error, created_by
                """
            ).decodeRecords(ReconciliationRunRecord.self)[0]
            let previous = try await connection.query(
                """
                SELECT id FROM upstream_credit_snapshot WHERE connection_id = \(connectionID)
                ORDER BY taken_at DESC, id DESC LIMIT 1
                """
            ).first(as: UUID.self)
            let baselineID = state.baselineSnapshotID ?? snapshotID
            let baselineDifference =
                try await state.baselineSnapshotID.asyncMap { id in
                    try await connection.query("SELECT difference FROM upstream_credit_snapshot WHERE id = \(id)")
                        .first(as: Int64.self)
                } ?? nil
            let drift = difference - (baselineDifference ?? difference)
            _ = try await connection.query(
                """
                INSERT INTO upstream_credit_snapshot (
                    id, connection_id, run_id, asked_at, answered_at, taken_at, upstream_answer, upstream_credits,
                    ledger_balance, in_flight_messages, in_flight_cost, recorded_during, exact, difference, uncertainty,
                    baseline_snapshot_id, drift, previous_snapshot_id)
                VALUES (\(snapshotID), \(connectionID), \(runID), \(reading.askedAt), \(reading.answeredAt),
                        clock_timestamp(), \(reading.answer), \(reading.credits), \(after.balance),
                        \(after.inFlightMessages), \(after.inFlightCost), \(recordedDuring), \(exact), \(difference),
                        \(uncertainty), \(baselineID), \(drift), \(previous)::uuid)
                """)
            _ = try await connection.query(
                """
                WITH linked AS (
                    INSERT INTO upstream_credit_snapshot_purchase (purchase_id, snapshot_id)
                    SELECT p.id, \(snapshotID) FROM upstream_purchase p
                    WHERE p.connection_id = \(connectionID)
                      AND NOT EXISTS (SELECT 1 FROM upstream_credit_snapshot_purchase l WHERE l.purchase_id = p.id)
                    RETURNING purchase_id
                )
                UPDATE upstream_credit_snapshot
                SET purchases_since_previous = coalesce(
                    (SELECT sum(p.credits) FROM upstream_purchase p JOIN linked ON linked.purchase_id = p.id), 0)
                WHERE id = \(snapshotID)
                """)
            // The alert: raised once the drift is past the threshold whatever was in flight, cleared once it is within
            // it whatever was in flight; an inexact snapshot in between changes nothing.
            let magnitude = drift.magnitude
            let beyond = Int64(magnitude) - uncertainty > threshold
            let within = Int64(magnitude) + uncertainty <= threshold
            var alerted = state.driftAlerted
            var event: String?
            if !alerted && beyond {
                alerted = true
                event = "upstream.credit_drift"
            } else if alerted && within {
                alerted = false
                event = "upstream.credit_drift_recovered"
            }
            _ = try await connection.query(
                """
                UPDATE upstream_reconciliation_state
                SET baseline_snapshot_id = \(baselineID), drift_alerted = \(alerted), updated_at = now()
                WHERE connection_id = \(connectionID)
                """)
            if let event {
                _ = try await connection.query(
                    """
                    SELECT webhook_emit_platform(\(event), jsonb_build_object(
                        'connectionId', \(connectionID.apiString)::text, 'connectionName', \(connectionName)::text,
                        'snapshotId', \(snapshotID.apiString)::text, 'takenAt', to_char(s.taken_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                        'drift', webhook_money(s.drift), 'threshold', webhook_money(\(threshold)::bigint),
                        'difference', webhook_money(s.difference), 'uncertainty', webhook_money(s.uncertainty),
                        'upstreamCredits', webhook_money(s.upstream_credits), 'ledgerBalance', webhook_money(s.ledger_balance),
                        'baselineSnapshotId', s.baseline_snapshot_id::text))
                    FROM upstream_credit_snapshot s WHERE s.id = \(snapshotID)
                    """)
            }
            let snapshot = try await connection.query(
                "SELECT \(unescaped: Self.snapshotColumns) FROM upstream_credit_snapshot WHERE id = \(snapshotID)"
            ).decodeRecords(CreditSnapshotRecord.self)[0]
            return (run, snapshot)
        }
    }

    // MARK: Day reports

    /// Our messages that the report table names: by `referentie` (our id), or by upstream id through this connection.
    package func messages(ids: [UUID], upstreamIDs: [String], connectionID: UUID) async throws -> [ReconciledMessage] {
        try await pool.query(
            """
            SELECT id, upstream_id, upstream_connection_id AS connection_id, status, accepted_at, submitted_at, upstream_cost
            FROM message
            WHERE id = ANY(\(ids)) OR (upstream_connection_id = \(connectionID) AND upstream_id = ANY(\(upstreamIDs)))
            """
        ).decodeRecords(ReconciledMessage.self)
    }

    /// Our messages recorded as submitted through the connection after `start` (all with nil) up to `end`.
    package func submitted(connectionID: UUID, after start: Date?, upTo end: Date) async throws -> [ReconciledMessage] {
        try await pool.query(
            """
            SELECT id, upstream_id, upstream_connection_id AS connection_id, status, accepted_at, submitted_at, upstream_cost
            FROM message
            WHERE upstream_connection_id = \(connectionID) AND upstream_id IS NOT NULL
              AND (\(start)::timestamptz IS NULL OR submitted_at > \(start)::timestamptz) AND submitted_at <= \(end)
            ORDER BY submitted_at
            """
        ).decodeRecords(ReconciledMessage.self)
    }

    /// Writes the day reports of a run and finishes it: a day's earlier report is replaced when this run covers at least
    /// as much of the day (its coverage starts no later); otherwise the earlier one stays. A day report with
    /// differences other than its previous version's raises `upstream.reconciliation_mismatch`. Returns the reports
    /// written.
    package func storeDays(
        runID: UUID, connectionID: UUID, connectionName: String, days: [DayComparison], wholeAccount: Bool,
        outcome: ReconciliationOutcome, error: String?
    ) async throws -> [ReconciliationDayRecord] {
        try await pool.withTransaction { connection in
            var written: [ReconciliationDayRecord] = []
            for day in days {
                let json = String(decoding: try Self.encoder.encode(day.differences), as: UTF8.self)
                let dayText = day.day.formatted(
                    Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!).year().month().day())
                let previous = try await connection.query(
                    """
                    SELECT differences::text FROM upstream_reconciliation_day
                    WHERE connection_id = \(connectionID) AND day = \(dayText)::date FOR UPDATE
                    """
                ).first(as: String.self)
                let coveredFrom: Date? = wholeAccount ? nil : day.coveredFrom
                let messagesCompared = day.matched + day.differences.count { $0.messageId != nil }
                let rows = try await connection.query(
                    """
                    INSERT INTO upstream_reconciliation_day AS d (
                        connection_id, day, run_id, checked_at, covered_from, covered_until, complete, rows_listed,
                        messages_compared, matched, unknown_upstream, listed_twice, missing_upstream, other_upstream_id,
                        in_flight, differences)
                    VALUES (\(connectionID), \(dayText)::date, \(runID), now(), \(coveredFrom)::timestamptz, \(day.coveredUntil),
                            \(day.complete), \(day.rowsListed), \(messagesCompared), \(day.matched),
                            \(day.count(.unknownUpstream)), \(day.count(.listedTwice)), \(day.count(.missingUpstream)),
                            \(day.count(.otherUpstreamID)), \(day.inFlight), \(json)::jsonb)
                    ON CONFLICT (connection_id, day) DO UPDATE SET
                        run_id = excluded.run_id, checked_at = excluded.checked_at, covered_from = excluded.covered_from,
                        covered_until = excluded.covered_until, complete = excluded.complete,
                        rows_listed = excluded.rows_listed, messages_compared = excluded.messages_compared,
                        matched = excluded.matched, unknown_upstream = excluded.unknown_upstream,
                        listed_twice = excluded.listed_twice, missing_upstream = excluded.missing_upstream,
                        other_upstream_id = excluded.other_upstream_id, in_flight = excluded.in_flight,
                        differences = excluded.differences
                    WHERE d.covered_from IS NULL AND excluded.covered_from IS NULL
                       OR excluded.covered_from IS NULL
                       OR (d.covered_from IS NOT NULL AND excluded.covered_from <= d.covered_from)
                    RETURNING \(unescaped: Self.dayColumns)
                    """
                ).decodeRecords(ReconciliationDayRecord.self)
                guard let record = rows.first else { continue }
                written.append(record)
                let changed: Bool
                if let previous {
                    let before = try Self.decoder.decode([ReconciliationDifference].self, from: Data(previous.utf8))
                    changed = before.map(\.key) != day.differences.map(\.key)
                } else {
                    changed = true
                }
                if changed && !day.differences.isEmpty {
                    _ = try await connection.query(
                        """
                        SELECT webhook_emit_platform('upstream.reconciliation_mismatch', jsonb_build_object(
                            'connectionId', \(connectionID.apiString)::text, 'connectionName', \(connectionName)::text,
                            'day', \(dayText)::text, 'runId', \(runID.apiString)::text, 'complete', \(day.complete),
                            'unknownUpstream', \(day.count(.unknownUpstream)), 'listedTwice', \(day.count(.listedTwice)),
                            'missingUpstream', \(day.count(.missingUpstream)),
                            'otherUpstreamId', \(day.count(.otherUpstreamID))))
                        """)
                }
            }
            _ = try await connection.query(
                """
                UPDATE upstream_reconciliation_run SET outcome = \(outcome.rawValue), error = left(\(error), 1000),
                    finished_at = clock_timestamp()
                WHERE id = \(runID)
                """)
            return written
        }
    }

    package func run(id: UUID) async throws -> ReconciliationRunRecord? {
        try await pool.query(
            """
            SELECT id, connection_id, trigger, started_at, finished_at, outcome, error, created_by
            FROM upstream_reconciliation_run WHERE id = \(id)
            """
        ).decodeRecords(ReconciliationRunRecord.self).first
    }

    // MARK: Reading

    /// A connection's snapshots, newest first (keyset paging through the id).
    package func snapshots(connectionID: UUID, before cursor: UUID?, limit: Int) async throws -> [CreditSnapshotRecord]
    {
        try await pool.query(
            """
            SELECT \(unescaped: Self.snapshotColumns) FROM upstream_credit_snapshot
            WHERE connection_id = \(connectionID)
              AND (\(cursor)::uuid IS NULL OR (taken_at, id) < (SELECT taken_at, id FROM upstream_credit_snapshot WHERE id = \(cursor)::uuid))
            ORDER BY taken_at DESC, id DESC
            LIMIT \(limit)
            """
        ).decodeRecords(CreditSnapshotRecord.self)
    }

    package func snapshot(id: UUID, connectionID: UUID) async throws -> CreditSnapshotRecord? {
        try await pool.query(
            """
            SELECT \(unescaped: Self.snapshotColumns) FROM upstream_credit_snapshot
            WHERE id = \(id) AND connection_id = \(connectionID)
            """
        ).decodeRecords(CreditSnapshotRecord.self).first
    }

    /// The purchases each of `snapshotIDs` saw first.
    package func purchases(snapshotIDs: [UUID]) async throws -> [UUID: [UpstreamPurchaseRecord]] {
        guard !snapshotIDs.isEmpty else { return [:] }
        let rows = try await pool.query(
            """
            SELECT l.snapshot_id, \(unescaped: UpstreamPurchases.qualifiedColumns)
            FROM upstream_credit_snapshot_purchase l JOIN upstream_purchase p ON p.id = l.purchase_id
            WHERE l.snapshot_id = ANY(\(snapshotIDs))
            ORDER BY p.created_at, p.id
            """
        ).decodeRecords(SnapshotPurchaseRecord.self)
        return Dictionary(grouping: rows, by: \.snapshotID).mapValues { $0.map(\.purchase) }
    }

    /// A connection's day reports, newest day first, before the day `cursor` (`YYYY-MM-DD`).
    package func days(connectionID: UUID, before cursor: String?, limit: Int) async throws
        -> [ReconciliationDayRecord]
    {
        try await pool.query(
            """
            SELECT \(unescaped: Self.dayColumns) FROM upstream_reconciliation_day
            WHERE connection_id = \(connectionID) AND (\(cursor)::date IS NULL OR day < \(cursor)::date)
            ORDER BY day DESC LIMIT \(limit)
            """
        ).decodeRecords(ReconciliationDayRecord.self)
    }

    package func day(connectionID: UUID, day: String) async throws -> ReconciliationDayRecord? {
        try await pool.query(
            """
            SELECT \(unescaped: Self.dayColumns) FROM upstream_reconciliation_day
            WHERE connection_id = \(connectionID) AND day = \(day)::date
            """
        ).decodeRecords(ReconciliationDayRecord.self).first
    }

    /// Makes `snapshotID` (default: the latest) the drift baseline of the connection; audited. Nil when the
    /// connection has no such snapshot.
    package func resetBaseline(connectionID: UUID, snapshotID: UUID?, reason: String, by actor: AuditActor)
        async throws -> CreditSnapshotRecord?
    {
        try await pool.withTransaction { connection in
            guard
                let snapshot = try await connection.query(
                    """
                    SELECT \(unescaped: Self.snapshotColumns) FROM upstream_credit_snapshot
                    WHERE connection_id = \(connectionID) AND (\(snapshotID)::uuid IS NULL OR id = \(snapshotID)::uuid)
                    ORDER BY taken_at DESC, id DESC LIMIT 1
                    """
                ).decodeRecords(CreditSnapshotRecord.self).first
            else { return nil }
            let before = try await connection.query(
                """
                SELECT baseline_snapshot_id FROM upstream_reconciliation_state WHERE connection_id = \(connectionID)
                FOR UPDATE
                """
            ).first(as: UUID?.self)
            _ = try await connection.query(
                """
                UPDATE upstream_reconciliation_state SET baseline_snapshot_id = \(snapshot.id), updated_at = now()
                WHERE connection_id = \(connectionID)
                """)
            try await AuditRepository.record(
                on: connection, by: actor, action: "upstream.reconciliation_baseline",
                targetType: "upstream_connection", targetID: connectionID, resellerID: nil,
                before: BaselineAudit(baselineSnapshotId: (before ?? nil)?.apiString, reason: nil),
                after: BaselineAudit(baselineSnapshotId: snapshot.id.apiString, reason: reason))
            return snapshot
        }
    }

    private struct BaselineAudit: Encodable {
        var baselineSnapshotId: String?
        var reason: String?
    }

    /// Per connection: the latest snapshot's drift and age, and the differences of its day reports of the last 7 UTC
    /// days (today included).
    package func gauges() async throws -> [ReconciliationGaugeRecord] {
        try await pool.query(
            """
            SELECT c.id AS connection_id, c.name, s.drift,
                   extract(epoch FROM now() - s.taken_at)::float8 AS snapshot_age_seconds,
                   coalesce(d.unknown_upstream, 0)::integer AS unknown_upstream,
                   coalesce(d.listed_twice, 0)::integer AS listed_twice,
                   coalesce(d.missing_upstream, 0)::integer AS missing_upstream,
                   coalesce(d.other_upstream_id, 0)::integer AS other_upstream_id
            FROM upstream_connection c
            LEFT JOIN LATERAL (
                SELECT drift, taken_at FROM upstream_credit_snapshot
                WHERE connection_id = c.id ORDER BY taken_at DESC, id DESC LIMIT 1
            ) s ON true
            LEFT JOIN LATERAL (
                SELECT sum(unknown_upstream) AS unknown_upstream, sum(listed_twice) AS listed_twice,
                       sum(missing_upstream) AS missing_upstream, sum(other_upstream_id) AS other_upstream_id
                FROM upstream_reconciliation_day
                WHERE connection_id = c.id AND day > (now() AT TIME ZONE 'UTC')::date - 7
            ) d ON true
            ORDER BY c.name
            """
        ).decodeRecords(ReconciliationGaugeRecord.self)
    }
}

extension ReconciliationDifference {
    /// What identifies a difference when two versions of a day report are compared.
    var key: String {
        "\(kind.rawValue) \(messageId?.uuidString ?? "") \(listedUpstreamIds.joined(separator: ","))"
    }
}

extension Optional {
    fileprivate func asyncMap<Result>(_ transform: (Wrapped) async throws -> Result) async rethrows -> Result? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
