import CompatibleGateway
import Foundation
import Ledger
import Messaging
import PostgresLibpq
import ResellerApp
import ResellerCore
import SMSCore
import Testing

/// Accepted messages written straight into the database the way the send path writes them — a batch, one message per
/// recipient with its two reservations (made by `ledger_reserve`), one outbox row each — so that dispatcher tests can
/// queue hundreds of messages without price lists, sender approvals or HTTP. The real send path is exercised end to end
/// by `SendEndToEndTests`.
enum MessageFixtures {
    /// A reseller with one sub-account, both funded through the ledger, and the accounts a send touches.
    struct Tenant: Sendable {
        var resellerID: UUID
        var subAccountID: UUID
        /// Pays the retail leg.
        var subAccountWallet: UUID
        /// Receives the retail leg.
        var resellerRevenue: UUID
        /// Pays the wholesale leg.
        var resellerWallet: UUID
        /// Receives the wholesale leg.
        var platformRevenue: UUID

        var accounts: [UUID] { [subAccountWallet, resellerRevenue, resellerWallet, platformRevenue] }
    }

    /// Makes the tenant with plain SQL (the triggers open its ledger accounts) and gives both wallets `credits`.
    static func tenant(pool: PostgresPool, name: String = "Dispatch", credits: Int64 = 100) async throws -> Tenant {
        let reseller = try #require(
            try await pool.query("INSERT INTO reseller (name) VALUES (\(name)) RETURNING id").first(as: UUID.self))
        let subAccount = try #require(
            try await pool.query(
                """
                INSERT INTO sub_account (reseller_id, name, username, password_salt, password_iterations, password_hash)
                VALUES (\(reseller), \("\(name) customer"), \("\(name.lowercased())-\(UUID().uuidString.prefix(8))"), \(Data([1])), 1, \(Data([1])))
                RETURNING id
                """
            ).first(as: UUID.self))
        let ledger = LedgerRepository(pool: pool)
        func account(_ kind: LedgerAccountKind, sub: UUID? = nil, reseller owner: UUID? = reseller) async throws -> UUID
        {
            try #require(try await ledger.account(kind: kind, resellerID: owner, subAccountID: sub)?.id)
        }
        let tenant = Tenant(
            resellerID: reseller, subAccountID: subAccount,
            subAccountWallet: try await account(.subAccountWallet, sub: subAccount),
            resellerRevenue: try await account(.resellerRevenue), resellerWallet: try await account(.resellerWallet),
            platformRevenue: try await account(.platformRevenue))
        let amount = Money(credits: credits).minorUnits
        _ = try await ledger.apply([
            .posted(
                from: try await account(.platformFunding, reseller: nil), to: tenant.resellerWallet, amount: amount,
                code: "top_up", by: "test"),
            .posted(
                from: try await account(.resellerIssuance), to: tenant.subAccountWallet, amount: amount,
                code: "credit_transfer", by: "test"),
        ])
        return tenant
    }

    /// Accepts one batch: a message per recipient (E.164 digits), each reserving `retail` on the sub-account wallet and
    /// `wholesale` on the reseller wallet (minor units; 0 reserves nothing for that leg), with an outbox row due now
    /// (or at `scheduleIn` from now, then `scheduled`) whose retry deadline is `deadlineIn` after that. The outbox row
    /// goes to the reseller's effective connection. Returns the message ids in recipient order.
    @discardableResult
    static func accept(
        pool: PostgresPool, tenant: Tenant, recipients: [String], text: String = "Hello from the dispatcher tests",
        sender: String = "Shop", long: Bool = false, retail: Int64 = 725, wholesale: Int64 = 500,
        scheduleIn: Duration? = nil, deadlineIn: Duration = .seconds(86_400)
    ) async throws -> [UUID] {
        let batch = UUID()
        let messages = recipients.map { _ in UUID() }
        let parts = long ? max(1, (text.count + 152) / 153) : 1
        return try await pool.withTransaction { connection in
            let scheduleAt =
                try await connection.query(
                    "SELECT now() + make_interval(secs => \(scheduleIn?.inSeconds))"
                ).first(as: Date?.self) ?? nil
            try await connection.query(
                """
                INSERT INTO message_batch (reseller_id, id, sub_account_id, sender, text, encoding, length, parts, long, schedule_at,
                                           recipient_count, message_count, retail_total, wholesale_total, created_by)
                VALUES (\(tenant.resellerID), \(batch), \(tenant.subAccountID), \(sender), \(text), 'gsm7', \(text.count), \(parts), \(long),
                        \(scheduleAt), \(recipients.count), \(recipients.count), \(retail * Int64(recipients.count)),
                        \(wholesale * Int64(recipients.count)), 'test')
                """)
            // The reservations: each message's legs are linked.
            var ids: [UUID] = []
            var debits: [UUID] = []
            var credits: [UUID] = []
            var amounts: [Int64] = []
            var links: [UUID] = []
            var codes: [String] = []
            var references: [String] = []
            var retailIDs: [UUID?] = []
            var wholesaleIDs: [UUID?] = []
            for message in messages {
                let link = UUID()
                func leg(_ amount: Int64, from: UUID, to: UUID, code: String) -> UUID? {
                    guard amount > 0 else { return nil }
                    let id = UUID()
                    ids.append(id)
                    debits.append(from)
                    credits.append(to)
                    amounts.append(amount)
                    links.append(link)
                    codes.append(code)
                    references.append(message.apiString)
                    return id
                }
                retailIDs.append(
                    leg(retail, from: tenant.subAccountWallet, to: tenant.resellerRevenue, code: "send_retail"))
                wholesaleIDs.append(
                    leg(wholesale, from: tenant.resellerWallet, to: tenant.platformRevenue, code: "send_wholesale"))
            }
            try await connection.query(
                """
                SELECT ledger_reserve(\(ids), \(debits), \(credits), \(amounts), \(links), \(codes),
                                      \(ids.map { _ in tenant.resellerID }), \(ids.map { _ in tenant.subAccountID }), \(references),
                                      \(ids.map { _ in "test" }), \(ids.map { _ -> String? in nil }))
                """)
            let status = scheduleAt == nil ? "queued" : "scheduled"
            try await connection.query(
                """
                INSERT INTO message (reseller_id, id, sub_account_id, batch_id, position, recipient, country, retail_price, wholesale_price,
                                     upstream_cost, retail_version_id, wholesale_version_id, upstream_cost_version_id,
                                     retail_reservation_id, wholesale_reservation_id, status, schedule_at, accepted_at, status_at)
                SELECT \(tenant.resellerID), u.id, \(tenant.subAccountID), \(batch), u.position - 1, u.recipient, left(u.recipient, 2),
                       \(retail), \(wholesale), 0, gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), u.retail, u.wholesale,
                       \(status), \(scheduleAt), now(), now()
                FROM unnest(\(messages), \(recipients), \(retailIDs), \(wholesaleIDs)) WITH ORDINALITY AS u (id, recipient, retail, wholesale, position)
                """)
            try await connection.query(
                """
                INSERT INTO message_outbox (message_id, reseller_id, connection_id, due_at, deadline_at)
                SELECT u.id, \(tenant.resellerID), effective_upstream_connection(\(tenant.resellerID)), coalesce(\(scheduleAt), now()),
                       coalesce(\(scheduleAt), now()) + make_interval(secs => \(deadlineIn.inSeconds))
                FROM unnest(\(messages)) AS u (id)
                """)
            return messages
        }
    }

    /// The four running sums of each account, to compare before and after.
    static func balances(pool: PostgresPool, _ accounts: [UUID]) async throws -> [UUID: [Int64]] {
        let rows = try await pool.query(
            """
            SELECT id, debits_pending, debits_posted, credits_pending, credits_posted FROM ledger_account WHERE id = ANY(\(accounts))
            """
        ).decode((UUID, Int64, Int64, Int64, Int64).self)
        return Dictionary(uniqueKeysWithValues: rows.map { ($0.0, [$0.1, $0.2, $0.3, $0.4]) })
    }
}
