import Foundation
import Ledger
import PostgresLibpq
import ResellerCore
import SMSCore

/// A purchase of credits at the upstream: what the platform bought, what it paid, and the transfer that credited the
/// connection's `upstream_balance` from `platform_funding`.
package struct UpstreamPurchaseRecord: Decodable, Sendable, Equatable {
    package var id: UUID
    package var connectionID: UUID
    package var credits: Int64
    /// In 1/10 000 of `currency`.
    package var amountPaid: Int64
    package var currency: String
    package var invoiceReference: String
    package var note: String?
    package var transferID: UUID
    package var createdBy: String
    package var createdAt: Date

    package enum CodingKeys: String, CodingKey {
        case id, credits, currency, note
        case connectionID = "connection_id"
        case amountPaid = "amount_paid"
        case invoiceReference = "invoice_reference"
        case transferID = "transfer_id"
        case createdBy = "created_by"
        case createdAt = "created_at"
    }
}

/// Upstream credit purchases (admin only). See docs/finance.md.
package enum UpstreamPurchases {
    static let columns =
        "id, connection_id, credits, amount_paid, currency, invoice_reference, note, transfer_id, created_by, created_at"
    /// The same, of `upstream_purchase p`.
    static let qualifiedColumns =
        "p.id, p.connection_id, p.credits, p.amount_paid, p.currency, p.invoice_reference, p.note, p.transfer_id, p.created_by, p.created_at"

    /// Records a purchase on the caller's transaction: the transfer, the purchase row and the audit entry. 404 for an
    /// unknown connection, 409 when the connection already has a purchase with this invoice reference.
    package static func record(
        connectionID: UUID, credits: Money, amountPaid: Money, currency: String, invoiceReference: String,
        note: String?, by actor: AuditActor, on connection: PostgresConnection
    ) async throws -> (purchase: UpstreamPurchaseRecord, balance: LedgerAccountRecord) {
        guard
            let balance = try await LedgerRepository.upstreamAccount(
                .upstreamBalance, connectionID: connectionID, on: connection)
        else { throw DomainError.notFound("No upstream connection \(connectionID.apiString).") }
        guard
            let funding = try await LedgerRepository.account(
                kind: .platformFunding, resellerID: nil, subAccountID: nil, on: connection)
        else { throw LedgerInconsistency(message: "no platform_funding account") }
        let exists = try await connection.query(
            """
            SELECT 1 FROM upstream_purchase WHERE connection_id = \(connectionID) AND invoice_reference = \(invoiceReference)
            """
        ).first(as: Int.self)
        guard exists == nil else {
            throw DomainError(
                .conflict, code: "invoice_already_recorded",
                detail: "A purchase with invoice reference \(invoiceReference) is already recorded for this connection."
            )
        }
        let transfer = try await LedgerRepository.apply(
            [
                .posted(
                    from: funding.id, to: balance.id, amount: credits.minorUnits, code: "upstream_purchase",
                    by: actor.actor, reference: invoiceReference, note: note, requestID: actor.requestID)
            ], on: connection)[0]
        let insert: PostgresQuery = """
            INSERT INTO upstream_purchase (id, connection_id, credits, amount_paid, currency, invoice_reference, note,
                                           transfer_id, created_by)
            VALUES (\(UUID()), \(connectionID), \(credits.minorUnits), \(amountPaid.minorUnits), \(currency),
                    \(invoiceReference), \(note), \(transfer.id), \(actor.actor))
            RETURNING \(unescaped: columns)
            """
        let purchase: UpstreamPurchaseRecord
        do {
            purchase = try await connection.query(insert).decodeRecords(UpstreamPurchaseRecord.self)[0]
        } catch let error as PostgresError where error.constraint == "upstream_purchase_invoice" {
            // A concurrent request recorded the same invoice between the check above and this insert.
            throw DomainError(
                .conflict, code: "invoice_already_recorded",
                detail: "A purchase with invoice reference \(invoiceReference) is already recorded for this connection."
            )
        }
        try await AuditRepository.record(
            on: connection, by: actor, action: "upstream.purchase", targetType: "upstream_purchase",
            targetID: purchase.id, resellerID: nil, before: nil, after: PurchaseAudit(purchase))
        guard let after = try await LedgerRepository.account(id: balance.id, on: connection) else {
            throw LedgerInconsistency(message: "account \(balance.id) vanished")
        }
        return (purchase, after)
    }

    /// A connection's purchases, newest first (keyset paging on `(created_at, id)` through the id).
    package static func list(connectionID: UUID, before cursor: UUID?, limit: Int, on connection: PostgresConnection)
        async throws -> [UpstreamPurchaseRecord]
    {
        try await connection.query(
            """
            SELECT \(unescaped: columns) FROM upstream_purchase p
            WHERE connection_id = \(connectionID)
              AND (\(cursor)::uuid IS NULL OR (created_at, id) < (SELECT created_at, id FROM upstream_purchase WHERE id = \(cursor)::uuid))
            ORDER BY created_at DESC, id DESC
            LIMIT \(limit)
            """
        ).decodeRecords(UpstreamPurchaseRecord.self)
    }

    private struct PurchaseAudit: Encodable {
        var connectionId: String
        var credits: String
        var amountPaid: String
        var currency: String
        var invoiceReference: String
        var transferId: String

        init(_ purchase: UpstreamPurchaseRecord) {
            connectionId = purchase.connectionID.apiString
            credits = Money(purchase.credits).description
            amountPaid = Money(purchase.amountPaid).description
            currency = purchase.currency
            invoiceReference = purchase.invoiceReference
            transferId = purchase.transferID.apiString
        }
    }
}
