import Foundation
import Gateway1601
import Ledger
import PostgresLibpq
import ResellerCore

/// A delivery report as received from an upstream connection (a callback, later also a poll).
package struct IncomingReport: Sendable {
    package enum Source: String, Sendable {
        case callback
        case poll
    }

    package var connectionID: UUID
    package var smsID: String
    package var status: DeliveryStatus
    /// When the upstream says the status changed (its `datum`, gateway-local time converted).
    package var reportedAt: Date?
    /// The `referentie`: our message id.
    package var reference: String?
    package var source: Source

    package init(
        connectionID: UUID, smsID: String, status: DeliveryStatus, reportedAt: Date? = nil, reference: String? = nil,
        source: Source
    ) {
        self.connectionID = connectionID
        self.smsID = smsID
        self.status = status
        self.reportedAt = reportedAt
        self.reference = reference
        self.source = source
    }
}

/// What became of one report.
package enum ReportOutcome: String, Sendable, Equatable {
    /// The message moved to the reported state (and, for a final state, was settled).
    case applied
    /// The message already had this state, or a final state that this report may not change: kept in its history.
    case recorded
    /// No message of this connection matches (unknown reference, another upstream id): kept for the admins.
    case unmatched
}

/// Applies delivery reports to messages and settles their reservations: all reports of a call in one transaction.
///
/// Rules, per message (its row locked, reports in arrival order):
/// - a report must name the message (`referentie`) and match its upstream id; a message not yet recorded as submitted
///   but possibly sent takes the report's id, from the connection that claimed it only (its outbox row's);
/// - every report is kept in the message's history (`message_event`, status `report:<state>`);
/// - a non-final report (`BUFFERED`, `SUBMITTED`) never changes a message's state;
/// - the first final state (`DELIVERED`, `NOT DELIVERED`, `REJECTED`) sets the status and settles both reservations
///   once: posted when the tenant's policy charges that state, voided otherwise;
/// - a later `DELIVERED` for a message settled as not delivered, rejected or expired makes it `delivered`, and a leg
///   that was refunded but is charged when delivered is charged by a new transfer (`late_delivery`), never by editing
///   history; any other later final state is only recorded.
///
/// See docs/delivery.md.
package struct DeliveryReportRepository: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    package static let actor = "system:delivery-reports"

    private struct MessageState: Decodable {
        var id: UUID
        var resellerID: UUID
        var subAccountID: UUID
        var status: MessageStatus
        var upstreamID: String?
        var upstreamConnectionID: UUID?
        var retailReservationID: UUID?
        var wholesaleReservationID: UUID?
        var possiblySent: Bool?
        /// The connection of its outbox row: the one that claimed it, while it is claimed.
        var outboxConnectionID: UUID?

        enum CodingKeys: String, CodingKey {
            case id, status
            case resellerID = "reseller_id"
            case subAccountID = "sub_account_id"
            case upstreamID = "upstream_id"
            case upstreamConnectionID = "upstream_connection_id"
            case retailReservationID = "retail_reservation_id"
            case wholesaleReservationID = "wholesale_reservation_id"
            case possiblySent = "possibly_sent"
            case outboxConnectionID = "outbox_connection_id"
        }
    }

    private struct Reservation {
        var id: UUID
        var debit: UUID
        var credit: UUID
        var amount: Int64
        var state: ReservationState
    }

    /// The connection a callback token belongs to: its current token, or the one it replaced until its grace period
    /// ends.
    package func connection(token: String) async throws -> UUID? {
        try await pool.query(
            """
            SELECT id FROM upstream_connection
            WHERE callback_token = \(token) OR (previous_callback_token = \(token) AND previous_callback_token_until > now())
            """
        ).first(as: UUID.self)
    }

    /// Applies `reports` in one transaction; one outcome per report, in order.
    package func apply(_ reports: [IncomingReport]) async throws -> [ReportOutcome] {
        try await pool.withTransaction { connection in
            var outcomes = [ReportOutcome?](repeating: nil, count: reports.count)
            let ids = Array(Set(reports.compactMap { $0.reference.flatMap(UUID.init(uuidString:)) }))
            var messages: [UUID: MessageState] = [:]
            if !ids.isEmpty {
                for message in try await connection.query(
                    """
                    SELECT m.id, m.reseller_id, m.sub_account_id, m.status, m.upstream_id, m.upstream_connection_id,
                           m.retail_reservation_id, m.wholesale_reservation_id, o.possibly_sent,
                           o.connection_id AS outbox_connection_id
                    FROM message m LEFT JOIN message_outbox o ON o.message_id = m.id
                    WHERE m.id = ANY (\(ids)) ORDER BY m.id FOR UPDATE OF m
                    """
                ).decodeRecords(MessageState.self) {
                    messages[message.id] = message
                }
            }
            let policies = try await RefundPolicyRepository.policies(
                for: messages.values.map { ($0.resellerID, $0.subAccountID) }, on: connection)

            var events: [(UUID, UUID, String, String)] = []  // reseller, message, status, detail
            var unmatched: [(IncomingReport, String)] = []
            var pending: [PendingSettlement] = []
            for (index, report) in reports.enumerated() {
                let detail = Self.detail(report)
                guard let id = report.reference.flatMap(UUID.init(uuidString:)), var message = messages[id] else {
                    unmatched.append(
                        (report, report.reference == nil ? "no referentie" : "no message with this referentie"))
                    outcomes[index] = .unmatched
                    continue
                }
                if let connectionID = message.upstreamConnectionID, connectionID != report.connectionID {
                    unmatched.append((report, "the message was sent through another connection"))
                    outcomes[index] = .unmatched
                    continue
                }
                if let upstreamID = message.upstreamID {
                    guard upstreamID == report.smsID else {
                        unmatched.append((report, "the message has upstream id \(upstreamID)"))
                        outcomes[index] = .unmatched
                        continue
                    }
                } else if message.status == .queued, message.possiblySent == true {
                    // Claimed but not recorded: only the connection that claimed it can have sent it, so only its
                    // callback token may settle it.
                    guard message.outboxConnectionID == report.connectionID else {
                        unmatched.append((report, "the message was claimed by another connection"))
                        outcomes[index] = .unmatched
                        continue
                    }
                    // The upstream reported before its OK was recorded: the report's id is the message's.
                    message.upstreamID = report.smsID
                    messages[id] = message
                    try await connection.query("UPDATE message SET upstream_id = \(report.smsID) WHERE id = \(id)")
                } else {
                    unmatched.append((report, "the message was not sent (status \(message.status.rawValue))"))
                    outcomes[index] = .unmatched
                    continue
                }
                events.append(
                    (
                        message.resellerID, id,
                        "report:\(report.status.rawValue.lowercased().replacingOccurrences(of: " ", with: "_"))", detail
                    ))
                let current = message.status
                guard let reported = MessageStatus(report: report.status) else {
                    outcomes[index] = .recorded
                    continue
                }
                let policy = policies[message.subAccountID] ?? .default
                switch Settlement(current: current, reported: reported) {
                case .settle:
                    // Settled with the group's others, set-based, below; a message settled earlier in this group is
                    // final already and never settles twice.
                    pending.append(
                        PendingSettlement(
                            message: message, state: reported, policy: policy, reportedAt: report.reportedAt))
                case .chargeLateDelivery(let previous):
                    // Reads the reservations as the earlier settlements of this group left them.
                    try await Self.settle(&pending, on: connection)
                    try await Self.chargeLateDelivery(message, policy: policy, after: previous, on: connection)
                    try await Self.setStatus([(id, reported, report.reportedAt)], on: connection)
                case .recordOnly:
                    outcomes[index] = .recorded
                    continue
                }
                events.append((message.resellerID, id, reported.rawValue, "settled by \(report.source.rawValue)"))
                message.status = reported
                messages[id] = message
                outcomes[index] = .applied
            }
            try await Self.settle(&pending, on: connection)
            if !events.isEmpty {
                try await connection.query(
                    """
                    INSERT INTO message_event (reseller_id, message_id, status, detail)
                    SELECT * FROM unnest(\(events.map(\.0)), \(events.map(\.1)), \(events.map(\.2)), \(events.map(\.3)))
                    """)
            }
            if !unmatched.isEmpty {
                try await connection.query(
                    """
                    INSERT INTO unmatched_delivery_report (connection_id, sms_id, status, reported_at, reference, reason)
                    SELECT * FROM unnest(\(unmatched.map(\.0.connectionID)), \(unmatched.map { String($0.0.smsID.prefix(100)) }),
                                         \(unmatched.map(\.0.status.rawValue)), \(unmatched.map(\.0.reportedAt)),
                                         \(unmatched.map { $0.0.reference.map { String($0.prefix(200)) } }), \(unmatched.map(\.1)))
                    """)
            }
            return outcomes.map { $0 ?? .recorded }
        }
    }

    /// A submitted message to ask the upstream about.
    package struct PollCandidate: Sendable {
        package var messageID: UUID
        package var upstreamID: String
        package var connectionID: UUID
    }

    /// Claims up to `limit` submitted messages without a final report that are due for a poll (first `after` their
    /// submission, then after a doubling interval up to `cap`), moving their next poll forward in the same statement
    /// (`SKIP LOCKED`, so instances share the work).
    package func claimPolls(after: Duration, cap: Duration, limit: Int) async throws -> [PollCandidate] {
        try await pool.query(
            """
            WITH due AS (
                SELECT id FROM message
                WHERE status = 'submitted' AND upstream_id IS NOT NULL AND upstream_connection_id IS NOT NULL
                  AND coalesce(next_poll_at, submitted_at + make_interval(secs => \(after.inSeconds))) <= now()
                ORDER BY submitted_at LIMIT \(limit)
                FOR UPDATE SKIP LOCKED
            )
            UPDATE message m
            SET next_poll_at = now() + make_interval(secs => least(\(cap.inSeconds), \(after.inSeconds) * power(2, least(m.poll_attempts, 30)))),
                poll_attempts = m.poll_attempts + 1
            FROM due WHERE m.id = due.id
            RETURNING m.id, m.upstream_id, m.upstream_connection_id
            """
        ).decode((UUID, String, UUID).self).map { PollCandidate(messageID: $0.0, upstreamID: $0.1, connectionID: $0.2) }
    }

    /// Messages submitted more than `age` ago without a final report become `expired` and are settled by their
    /// policy for `expired` (by default refunded, as not delivered); at most `limit` per call. Returns how many.
    package func expire(olderThan age: Duration, limit: Int) async throws -> Int {
        try await pool.withTransaction { connection in
            let expiring = try await connection.query(
                """
                SELECT m.id, m.reseller_id, m.sub_account_id, m.status, m.upstream_id, m.upstream_connection_id,
                       m.retail_reservation_id, m.wholesale_reservation_id, NULL::boolean AS possibly_sent,
                       NULL::uuid AS outbox_connection_id
                FROM message m
                WHERE m.status = 'submitted' AND m.submitted_at <= now() - make_interval(secs => \(age.inSeconds))
                ORDER BY m.submitted_at LIMIT \(limit)
                FOR UPDATE SKIP LOCKED
                """
            ).decodeRecords(MessageState.self)
            guard !expiring.isEmpty else { return 0 }
            let policies = try await RefundPolicyRepository.policies(
                for: expiring.map { ($0.resellerID, $0.subAccountID) }, on: connection)
            try await Self.postOrVoid(
                expiring.map { (message: $0, state: .expired, policy: policies[$0.subAccountID] ?? .default) },
                on: connection)
            let ids = expiring.map(\.id)
            try await connection.query(
                """
                WITH expired AS (
                    UPDATE message SET status = 'expired', status_at = now(), settled_at = now() WHERE id = ANY (\(ids))
                    RETURNING reseller_id, id
                )
                INSERT INTO message_event (reseller_id, message_id, status, detail)
                SELECT reseller_id, id, 'expired', \("no final report within \(Int(age.inSeconds)) s of submission") FROM expired
                """)
            return expiring.count
        }
    }

    package static func detail(_ report: IncomingReport) -> String {
        let when = report.reportedAt.map { " at \($0.formatted(.iso8601))" } ?? ""
        return "\(report.source.rawValue): \(report.status.rawValue) for \(report.smsID)\(when)"
    }

    private static func reservations(_ message: MessageState, on connection: PostgresConnection) async throws -> [UUID:
        Reservation]
    {
        let ids = [message.retailReservationID, message.wholesaleReservationID].compactMap { $0 }
        guard !ids.isEmpty else { return [:] }
        var result: [UUID: Reservation] = [:]
        for row in try await connection.query(
            """
            SELECT id, debit_account_id, credit_account_id, amount, state FROM ledger_transfer WHERE id = ANY (\(ids)) ORDER BY id FOR UPDATE
            """
        ).decode((UUID, UUID, UUID, Int64, String).self) {
            guard let state = ReservationState(rawValue: row.4) else { continue }
            result[row.0] = Reservation(id: row.0, debit: row.1, credit: row.2, amount: row.3, state: state)
        }
        return result
    }

    /// A message in flight that a report of the group settles.
    private struct PendingSettlement {
        var message: MessageState
        var state: MessageStatus
        var policy: RefundPolicy
        var reportedAt: Date?
    }

    /// Settles `pending` set-based and empties it: the reservations posted or voided (`postOrVoid`), then one update of
    /// the messages' statuses.
    private static func settle(_ pending: inout [PendingSettlement], on connection: PostgresConnection) async throws {
        guard !pending.isEmpty else { return }
        defer { pending.removeAll() }
        try await postOrVoid(pending.map { ($0.message, $0.state, $0.policy) }, on: connection)
        try await setStatus(pending.map { ($0.message.id, $0.state, $0.reportedAt) }, on: connection)
    }

    /// Posts or voids each pending reservation of the messages by their policy for the state they settle as, set-based:
    /// one read of all their reservations (locked in id order) and one `ledger_resolve` call, which updates each account
    /// once with its sums (`ledger_apply_transfers` resolved them one by one: 0.52 ms each, three quarters of a report
    /// group's time).
    private static func postOrVoid(
        _ settlements: [(message: MessageState, state: MessageStatus, policy: RefundPolicy)],
        on connection: PostgresConnection
    ) async throws {
        let ids = settlements.flatMap { [$0.message.retailReservationID, $0.message.wholesaleReservationID] }
            .compactMap { $0 }
        guard !ids.isEmpty else { return }
        var states: [UUID: String] = [:]
        for (id, state) in try await connection.query(
            "SELECT id, state FROM ledger_transfer WHERE id = ANY (\(ids)) ORDER BY id FOR UPDATE"
        ).decode((UUID, String).self) {
            states[id] = state
        }
        var resolutions: [LedgerRepository.Resolution] = []
        for (message, state, policy) in settlements {
            for (id, charged) in [
                (message.retailReservationID, policy.charges(.retail, settledAs: state)),
                (message.wholesaleReservationID, policy.charges(.wholesale, settledAs: state)),
            ] {
                guard let id, states[id] == ReservationState.pending.rawValue else { continue }
                resolutions.append(.init(pendingID: id, post: charged, code: "message_\(state.rawValue)"))
            }
        }
        try await LedgerRepository.resolve(resolutions, by: actor, on: connection)
    }

    /// Sets the final status of settled messages (each at most once per call), in one statement.
    private static func setStatus(
        _ updates: [(id: UUID, state: MessageStatus, reportedAt: Date?)], on connection: PostgresConnection
    ) async throws {
        guard !updates.isEmpty else { return }
        try await connection.query(
            """
            UPDATE message m SET status = u.status, status_at = now(), reported_at = u.reported_at,
                                 settled_at = coalesce(m.settled_at, now())
            FROM unnest(\(updates.map(\.id)), \(updates.map(\.state.rawValue)), \(updates.map(\.reportedAt)))
                AS u (id, status, reported_at)
            WHERE m.id = u.id
            """)
    }

    /// A message settled as `previous` was delivered after all: each leg that was refunded then but is charged when
    /// delivered is charged now, by a new transfer between the same accounts. A wallet that cannot cover it is not
    /// overdrawn: the charge is skipped and the history says so.
    private static func chargeLateDelivery(
        _ message: MessageState, policy: RefundPolicy, after previous: MessageStatus, on connection: PostgresConnection
    ) async throws {
        let reservations = try await reservations(message, on: connection)
        for (id, leg) in [
            (message.retailReservationID, RefundPolicy.Leg.retail), (message.wholesaleReservationID, .wholesale),
        ] {
            guard let id, let reservation = reservations[id], policy.chargesLateDelivery(leg, after: previous),
                reservation.state == .voided || reservation.state == .expired
            else { continue }
            try await connection.query("SAVEPOINT late_delivery")
            do {
                _ = try await LedgerRepository.apply(
                    [
                        .posted(
                            from: reservation.debit, to: reservation.credit, amount: reservation.amount,
                            code: "late_delivery", by: actor,
                            resellerID: message.resellerID, subAccountID: message.subAccountID,
                            reference: message.id.apiString)
                    ], on: connection)
                try await connection.query("RELEASE SAVEPOINT late_delivery")
            } catch let failure as LedgerFailure where failure.reason == .insufficientFunds {
                try await connection.query("ROLLBACK TO SAVEPOINT late_delivery")
                try await connection.query(
                    """
                    INSERT INTO message_event (reseller_id, message_id, status, detail)
                    VALUES (\(message.resellerID), \(message.id), 'late_delivery_not_charged',
                            \("the account cannot cover \(Money(reservation.amount)) credits"))
                    """)
            }
        }
    }
}

extension MessageStatus {
    /// The final state a delivery status means; nil for states in flight.
    package init?(report: DeliveryStatus) {
        switch report {
        case .delivered: self = .delivered
        case .notDelivered: self = .notDelivered
        case .rejected: self = .rejected
        case .buffered, .submitted, .none: return nil
        }
    }
}
