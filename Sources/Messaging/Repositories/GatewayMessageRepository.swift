import Foundation
import PostgresLibpq

/// A message as the 1601-compatible endpoint reports it (`action=rapport`, `gatewayrapport.php`).
package struct GatewayMessageState: Decodable, Sendable {
    package var gatewayID: Int64
    package var recipient: String
    package var status: MessageStatus
    /// When the status was reached: the upstream's report time when a report set it, else ours.
    package var statusAt: Date
    package var reference: String?
    /// The latest delivery report recorded for the message (`report:buffered`, …), and when it arrived.
    package var lastReport: String?
    package var lastReportAt: Date?

    package enum CodingKeys: String, CodingKey {
        case recipient, status, reference
        case gatewayID = "gateway_id"
        case statusAt = "status_at"
        case lastReport = "last_report"
        case lastReportAt = "last_report_at"
    }
}

/// The reads of the 1601-compatible endpoint, always within one sub-account.
package struct GatewayMessageRepository: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    private static let columns = """
        m.gateway_id, m.recipient, m.status, COALESCE(m.reported_at, m.status_at) AS status_at, b.reference,
        r.status AS last_report, r.occurred_at AS last_report_at
        """
    /// The last report's lookup skips the months of `message_event` before the message's (as
    /// ``MessageRepository/events(messageID:subAccountID:)`` does).
    private static let sources = """
        message m
        JOIN message_batch b ON b.reseller_id = m.reseller_id AND b.id = m.batch_id
        LEFT JOIN LATERAL (
            SELECT e.status, e.occurred_at FROM message_event e
            WHERE e.message_id = m.id AND e.status LIKE 'report:%'
              AND e.occurred_at >= m.accepted_at - interval '1 day'
            ORDER BY e.seq DESC LIMIT 1
        ) r ON true
        """

    /// The newest `limit` messages sent with logging on, newest first (within a send, the last recipient first, as the
    /// numbers go); scheduled and cancelled ones were never sent.
    package func recent(subAccountID: UUID, limit: Int) async throws -> [GatewayMessageState] {
        try await pool.query(
            """
            SELECT \(unescaped: Self.columns) FROM \(unescaped: Self.sources)
            WHERE m.sub_account_id = \(subAccountID) AND b.logging AND m.status NOT IN ('scheduled', 'cancelled')
            ORDER BY m.accepted_at DESC, m.gateway_id DESC
            LIMIT \(limit)
            """
        ).decodeRecords(GatewayMessageState.self)
    }

    /// The sub-account's message with this number, if it has one.
    package func find(subAccountID: UUID, gatewayID: Int64) async throws -> GatewayMessageState? {
        try await pool.query(
            """
            SELECT \(unescaped: Self.columns) FROM \(unescaped: Self.sources)
            WHERE m.gateway_id = \(gatewayID) AND m.sub_account_id = \(subAccountID)
            """
        ).decodeRecords(GatewayMessageState.self).first
    }
}
