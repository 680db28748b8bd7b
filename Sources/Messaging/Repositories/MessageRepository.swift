import Contacts
import Foundation
import Ledger
import PostgresLibpq
import ResellerCore
import SMSCore

/// A message with what its batch shares, as stored.
package struct MessageRecord: Decodable, Sendable {
    package var id: UUID
    /// The message's number for the 1601-compatible endpoint.
    package var gatewayID: Int64
    package var resellerID: UUID
    package var subAccountID: UUID
    package var batchID: UUID
    package var position: Int
    package var recipient: String
    package var country: String
    package var sender: String
    package var text: String
    package var encoding: MessageEncoding
    package var parts: Int
    package var long: Bool
    package var reference: String?
    package var callbackURL: String?
    package var groupName: String?
    package var retailPrice: Int64
    package var wholesalePrice: Int64
    package var upstreamCost: Int64
    package var retailVersionID: UUID
    package var wholesaleVersionID: UUID
    package var upstreamCostVersionID: UUID
    package var retailReservationID: UUID?
    package var wholesaleReservationID: UUID?
    package var status: MessageStatus
    package var statusCode: Int?
    package var statusDetail: String?
    package var scheduleAt: Date?
    package var upstreamConnectionID: UUID?
    package var upstreamID: String?
    package var acceptedAt: Date
    package var statusAt: Date
    package var submittedAt: Date?

    package enum CodingKeys: String, CodingKey {
        case id, position, recipient, country, sender, text, encoding, parts, long, reference, status
        case resellerID = "reseller_id"
        case subAccountID = "sub_account_id"
        case batchID = "batch_id"
        case callbackURL = "callback_url"
        case gatewayID = "gateway_id"
        case groupName = "group_name"
        case retailPrice = "retail_price"
        case wholesalePrice = "wholesale_price"
        case upstreamCost = "upstream_cost"
        case retailVersionID = "retail_version_id"
        case wholesaleVersionID = "wholesale_version_id"
        case upstreamCostVersionID = "upstream_cost_version_id"
        case retailReservationID = "retail_reservation_id"
        case wholesaleReservationID = "wholesale_reservation_id"
        case statusCode = "status_code"
        case statusDetail = "status_detail"
        case scheduleAt = "schedule_at"
        case upstreamConnectionID = "upstream_connection_id"
        case upstreamID = "upstream_id"
        case acceptedAt = "accepted_at"
        case statusAt = "status_at"
        case submittedAt = "submitted_at"
    }
}

/// One entry of a message's status history.
package struct MessageEventRecord: Decodable, Sendable {
    package var status: String
    package var code: Int?
    package var detail: String?
    package var occurredAt: Date

    package enum CodingKeys: String, CodingKey {
        case status, code, detail
        case occurredAt = "occurred_at"
    }
}

/// A batch and how its messages stand.
package struct BatchSummaryRecord: Sendable {
    package struct Batch: Decodable, Sendable {
        package var id: UUID
        package var subAccountID: UUID
        package var sender: String
        package var text: String
        package var encoding: MessageEncoding
        package var length: Int
        package var parts: Int
        package var long: Bool
        package var reference: String?
        package var groupName: String?
        package var scheduleAt: Date?
        package var recipientCount: Int
        package var messageCount: Int
        package var retailTotal: Int64
        package var wholesaleTotal: Int64
        package var createdBy: String
        package var acceptedAt: Date

        package enum CodingKeys: String, CodingKey {
            case id, sender, text, encoding, length, parts, long, reference
            case subAccountID = "sub_account_id"
            case groupName = "group_name"
            case scheduleAt = "schedule_at"
            case recipientCount = "recipient_count"
            case messageCount = "message_count"
            case retailTotal = "retail_total"
            case wholesaleTotal = "wholesale_total"
            case createdBy = "created_by"
            case acceptedAt = "accepted_at"
        }
    }

    package var batch: Batch
    /// Messages per status, and their retail prices summed.
    package var statuses: [(status: MessageStatus, count: Int, retail: Int64)]
}

/// Which messages a list shows: all filters optional, newest first.
package struct MessageFilter: Sendable {
    package var status: MessageStatus?
    package var acceptedFrom: Date?
    package var acceptedBefore: Date?
    package var recipient: String?
    package var reference: String?
    package var batchID: UUID?
    /// The last message of the previous page.
    package var after: (acceptedAt: Date, id: UUID)?
    package var limit: Int

    package init(
        status: MessageStatus? = nil, acceptedFrom: Date? = nil, acceptedBefore: Date? = nil, recipient: String? = nil,
        reference: String? = nil, batchID: UUID? = nil, after: (acceptedAt: Date, id: UUID)? = nil, limit: Int
    ) {
        self.status = status
        self.acceptedFrom = acceptedFrom
        self.acceptedBefore = acceptedBefore
        self.recipient = recipient
        self.reference = reference
        self.batchID = batchID
        self.after = after
        self.limit = limit
    }
}

/// Which messages to cancel.
package enum CancelSelection: Sendable {
    case message(UUID)
    case batch(UUID)
    /// Every scheduled message of the sub-account.
    case allScheduled
    /// The scheduled messages to one number (E.164 digits): the 1601 `verwijderbericht&naar=`.
    case scheduledTo(recipient: String)
    /// The scheduled messages of the batch with this outbox number: the 1601 `verwijderbericht&id=`.
    case scheduledInOutbox(Int64)
}

/// What a cancel did.
package struct CancelResult: Codable, Sendable {
    /// The messages cancelled now, their reservations voided.
    package var cancelled: [UUID]
    /// Retail credits given back to the sub-account.
    package var refunded: Money
    /// Messages selected that could not be cancelled, with their status (`submitted`, or `queued` once claimed by the
    /// dispatcher: it may already be upstream).
    package var notCancelled: [NotCancelled]

    package struct NotCancelled: Codable, Sendable {
        package var id: UUID
        package var status: MessageStatus
        package var reason: String
    }
}

/// Messages, their batches and history. Reads are scoped to one sub-account; writes of the send path are in
/// `SendService`, those of the dispatcher in `OutboxRepository`.
package struct MessageRepository: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Selected from `message m JOIN message_batch b`.
    package static let columns = """
        m.id, m.gateway_id, m.reseller_id, m.sub_account_id, m.batch_id, m.position, m.recipient, m.country, b.sender, b.text, b.encoding,
        b.parts, b.long, b.reference, b.callback_url, b.group_name, m.retail_price, m.wholesale_price, m.upstream_cost,
        m.retail_version_id, m.wholesale_version_id, m.upstream_cost_version_id, m.retail_reservation_id,
        m.wholesale_reservation_id, m.status, m.status_code, m.status_detail, m.schedule_at, m.upstream_connection_id,
        m.upstream_id, m.accepted_at, m.status_at, m.submitted_at
        """

    package func find(id: UUID, subAccountID: UUID) async throws -> MessageRecord? {
        try await pool.query(
            """
            SELECT \(unescaped: Self.columns) FROM message m JOIN message_batch b ON b.reseller_id = m.reseller_id AND b.id = m.batch_id
            WHERE m.id = \(id) AND m.sub_account_id = \(subAccountID)
            """
        ).decodeRecords(MessageRecord.self).first
    }

    /// The message's history in order. The lower bound on `occurred_at` lets PostgreSQL skip the months of
    /// `message_event` before the message's (docs/partitioning.md); the day of margin covers a service clock ahead of
    /// the database's, whose `now()` stamps the events.
    package func events(messageID: UUID, subAccountID: UUID) async throws -> [MessageEventRecord] {
        try await pool.query(
            """
            SELECT e.status, e.code, e.detail, e.occurred_at
            FROM message m
            JOIN message_event e ON e.message_id = m.id AND e.occurred_at >= m.accepted_at - interval '1 day'
            WHERE m.id = \(messageID) AND m.sub_account_id = \(subAccountID)
            ORDER BY e.seq
            """
        ).decodeRecords(MessageEventRecord.self)
    }

    package func list(subAccountID: UUID, filter: MessageFilter) async throws -> [MessageRecord] {
        try await pool.query(
            """
            SELECT \(unescaped: Self.columns) FROM message m JOIN message_batch b ON b.reseller_id = m.reseller_id AND b.id = m.batch_id
            WHERE m.sub_account_id = \(subAccountID)
              AND (\(filter.status?.rawValue)::text IS NULL OR m.status = \(filter.status?.rawValue)::text)
              AND (\(filter.acceptedFrom)::timestamptz IS NULL OR m.accepted_at >= \(filter.acceptedFrom)::timestamptz)
              AND (\(filter.acceptedBefore)::timestamptz IS NULL OR m.accepted_at < \(filter.acceptedBefore)::timestamptz)
              AND (\(filter.recipient)::text IS NULL OR m.recipient = \(filter.recipient)::text)
              AND (\(filter.reference)::text IS NULL OR b.reference = \(filter.reference)::text)
              AND (\(filter.batchID)::uuid IS NULL OR m.batch_id = \(filter.batchID)::uuid)
              AND (\(filter.after?.acceptedAt)::timestamptz IS NULL
                   OR (m.accepted_at, m.id) < (\(filter.after?.acceptedAt)::timestamptz, \(filter.after?.id)::uuid))
            ORDER BY m.accepted_at DESC, m.id DESC
            LIMIT \(filter.limit)
            """
        ).decodeRecords(MessageRecord.self)
    }

    package func batch(id: UUID, subAccountID: UUID) async throws -> BatchSummaryRecord? {
        guard
            let batch = try await pool.query(
                """
                SELECT id, sub_account_id, sender, text, encoding, length, parts, long, reference, group_name, schedule_at,
                       recipient_count, message_count, retail_total, wholesale_total, created_by, accepted_at
                FROM message_batch WHERE id = \(id) AND sub_account_id = \(subAccountID)
                """
            ).decodeRecords(BatchSummaryRecord.Batch.self).first
        else { return nil }
        let statuses = try await pool.query(
            """
            SELECT status, count(*)::bigint, sum(retail_price)::bigint FROM message
            WHERE reseller_id = (SELECT reseller_id FROM message_batch WHERE id = \(id)) AND batch_id = \(id)
              AND sub_account_id = \(subAccountID)
            GROUP BY status ORDER BY status
            """
        ).decode((String, Int, Int64).self).compactMap { row in
            MessageStatus(rawValue: row.0).map { (status: $0, count: row.1, retail: row.2) }
        }
        return BatchSummaryRecord(batch: batch, statuses: statuses)
    }

    /// Cancels the selected messages that have not been handed upstream: out of the outbox, status `cancelled`,
    /// reservations voided, one history entry each and one audit entry. A message the dispatcher has claimed may
    /// already be upstream and is left alone (in `notCancelled`).
    ///
    /// The outbox rows go first, with the same lock order as a dispatcher's claim (outbox, then message), and the
    /// delete's condition is re-checked on rows a claim has just changed, so a cancel and a claim never both win.
    package static func cancel(
        subAccountID: UUID, resellerID: UUID, selection: CancelSelection, by actor: AuditActor,
        on connection: PostgresConnection
    ) async throws -> CancelResult {
        var (messageID, batchID, onlyScheduled, recipient): (UUID?, UUID?, Bool, String?) =
            switch selection {
            case .message(let id): (id, nil, false, nil)
            case .batch(let id): (nil, id, false, nil)
            case .allScheduled, .scheduledInOutbox: (nil, nil, true, nil)
            case .scheduledTo(let number): (nil, nil, true, number)
            }
        if case .scheduledInOutbox(let number) = selection {
            batchID = try await connection.query(
                """
                SELECT id FROM message_batch WHERE outbox_id = \(number) AND sub_account_id = \(subAccountID) AND reseller_id = \(resellerID)
                """
            ).first(as: UUID.self)
            guard batchID != nil else { return CancelResult(cancelled: [], refunded: .zero, notCancelled: []) }
        }
        let deleted = try await connection.query(
            """
            DELETE FROM message_outbox o USING message m
            WHERE m.id = o.message_id AND m.reseller_id = \(resellerID) AND m.sub_account_id = \(subAccountID)
              AND (\(messageID)::uuid IS NULL OR m.id = \(messageID)::uuid)
              AND (\(batchID)::uuid IS NULL OR m.batch_id = \(batchID)::uuid)
              AND (NOT \(onlyScheduled) OR m.status = 'scheduled')
              AND (\(recipient)::text IS NULL OR m.recipient = \(recipient)::text)
              AND m.status IN ('scheduled', 'queued') AND NOT o.possibly_sent
            RETURNING o.message_id
            """
        ).decode(UUID.self)
        var voids: [TransferRequest] = []
        var refunded = Money.zero
        var cancelled: [UUID] = []
        if !deleted.isEmpty {
            let rows = try await connection.query(
                """
                WITH changed AS (
                    UPDATE message SET status = 'cancelled', status_at = now()
                    WHERE reseller_id = \(resellerID) AND id = ANY (\(deleted))
                    RETURNING reseller_id, id, retail_reservation_id, wholesale_reservation_id, retail_price
                ), history AS (
                    INSERT INTO message_event (reseller_id, message_id, status, detail)
                    SELECT reseller_id, id, 'cancelled', \("cancelled by \(actor.actor)") FROM changed
                )
                SELECT id, retail_reservation_id, wholesale_reservation_id, retail_price FROM changed ORDER BY id
                """
            ).decode((UUID, UUID?, UUID?, Int64).self)
            for row in rows {
                cancelled.append(row.0)
                refunded = refunded + Money(row.3)
                for reservation in [row.1, row.2].compactMap({ $0 }) {
                    voids.append(
                        .void(reservation, code: "message_cancelled", by: actor.actor, requestID: actor.requestID))
                }
            }
            if !voids.isEmpty { _ = try await LedgerRepository.apply(voids, linked: false, on: connection) }
        }
        let others = try await connection.query(
            """
            SELECT m.id, m.status, o.possibly_sent FROM message m LEFT JOIN message_outbox o ON o.message_id = m.id
            WHERE m.reseller_id = \(resellerID) AND m.sub_account_id = \(subAccountID)
              AND (\(messageID)::uuid IS NULL OR m.id = \(messageID)::uuid)
              AND (\(batchID)::uuid IS NULL OR m.batch_id = \(batchID)::uuid)
              AND (\(messageID)::uuid IS NOT NULL OR \(batchID)::uuid IS NOT NULL)
              AND (m.status <> 'cancelled' OR \(messageID)::uuid IS NOT NULL) AND m.id <> ALL (\(cancelled))
            ORDER BY m.id
            LIMIT 1000
            """
        ).decode((UUID, String, Bool?).self)
        let notCancelled = others.map { row in
            let status = MessageStatus(rawValue: row.1) ?? .failed
            let reason =
                row.2 == true
                ? "already handed to the upstream gateway (the dispatcher has claimed it)"
                : status.isFinal ? "already \(status.rawValue)" : "already handed to the upstream gateway"
            return CancelResult.NotCancelled(id: row.0, status: status, reason: reason)
        }
        let result = CancelResult(cancelled: cancelled, refunded: refunded, notCancelled: notCancelled)
        if !cancelled.isEmpty {
            let target: (type: String, id: String) =
                switch selection {
                case .message(let id): ("message", id.apiString)
                case .batch(let id): ("message_batch", id.apiString)
                case .allScheduled, .scheduledTo: ("sub_account", subAccountID.apiString)
                case .scheduledInOutbox: ("message_batch", batchID!.apiString)
                }
            try await AuditRepository.record(
                on: connection, by: actor, action: "message.cancel", targetType: target.type, targetID: target.id,
                resellerID: resellerID,
                before: nil, after: ["cancelled": cancelled.count.description, "refunded": refunded.description])
        }
        return result
    }
}
