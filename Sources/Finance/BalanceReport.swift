import Foundation
import Ledger
import PostgresLibpq
import ResellerCore

/// A wallet at an instant.
package struct WalletBalance: Decodable, Sendable, Equatable {
    package var accountID: UUID
    package var kind: LedgerAccountKind
    package var resellerID: UUID?
    package var subAccountID: UUID?
    package var upstreamConnectionID: UUID?
    /// Posted credits less posted debits.
    package var balance: Int64
    /// Reserved (pending debits).
    package var pending: Int64
    /// The current credit limit (limits are settings, not history).
    package var creditLimit: Int64?

    package var available: Int64 { balance - pending }

    package enum CodingKeys: String, CodingKey {
        case kind, balance, pending
        case accountID = "account_id"
        case resellerID = "reseller_id"
        case subAccountID = "sub_account_id"
        case upstreamConnectionID = "upstream_connection_id"
        case creditLimit = "credit_limit"
    }
}

package struct BalanceReport: Sendable {
    package var at: Date
    /// `at` is so recent that a transfer appended before it may still commit.
    package var provisional: Bool
    package var wallets: [WalletBalance]
    package var totalBalance: Int64
    package var totalPending: Int64
    package var totalAvailable: Int64
}

/// Every wallet in scope at an instant: reseller and sub-account wallets, and for the admin the upstream balances.
///
/// A balance at `at` is the effect of the transfers appended before `at`: the account's running sums now, less what
/// the transfers appended since changed, read in one snapshot.
package struct BalanceReports: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    package func balances(scope: FinanceScope, at: Date?) async throws -> BalanceReport {
        try await pool.withTransaction(isolation: .repeatableRead, readOnly: true) { connection in
            let now = try await connection.query("SELECT now()").first(as: Date.self) ?? Date()
            let at = at.map { min($0, now) } ?? now
            let kinds =
                scope.role == .admin
                ? "'reseller_wallet', 'sub_account_wallet', 'upstream_balance'"
                : "'reseller_wallet', 'sub_account_wallet'"
            let wallets = try await connection.query(
                PostgresQuery(
                    unescaped: """
                        WITH accounts AS (
                            SELECT * FROM ledger_account a WHERE a.kind IN (\(kinds)) AND \(scope.accountFilter("a"))
                        ), later AS (
                            SELECT t.debit_account_id AS account,
                                   -CASE WHEN t.kind IN ('posted', 'post_pending') THEN t.amount ELSE 0 END AS balance,
                                   CASE t.kind WHEN 'pending' THEN t.amount WHEN 'post_pending' THEN -p.amount
                                               WHEN 'void_pending' THEN -p.amount ELSE 0 END AS pending
                            FROM ledger_transfer t LEFT JOIN ledger_transfer p ON p.id = t.pending_id
                            WHERE t.created_at >= \(SQLLiteral.timestamp(at)) AND t.debit_account_id IN (SELECT id FROM accounts)
                            UNION ALL
                            SELECT t.credit_account_id,
                                   CASE WHEN t.kind IN ('posted', 'post_pending') THEN t.amount ELSE 0 END, 0
                            FROM ledger_transfer t
                            WHERE t.created_at >= \(SQLLiteral.timestamp(at)) AND t.credit_account_id IN (SELECT id FROM accounts)
                        ), changes AS (
                            SELECT account, sum(balance) AS balance, sum(pending) AS pending FROM later GROUP BY account
                        )
                        SELECT a.id AS account_id, a.kind, a.reseller_id, a.sub_account_id, a.upstream_connection_id,
                               a.credits_posted - a.debits_posted - coalesce(c.balance, 0) AS balance,
                               a.debits_pending - coalesce(c.pending, 0) AS pending, a.credit_limit
                        FROM accounts a LEFT JOIN changes c ON c.account = a.id
                        ORDER BY a.kind, a.reseller_id NULLS FIRST, a.sub_account_id NULLS FIRST, a.upstream_connection_id, a.id
                        """)
            ).decodeRecords(WalletBalance.self)
            let provisional =
                try await connection.query(
                    "SELECT \(at)::timestamptz > now() - make_interval(secs => \(LedgerRepository.settlingTime))"
                ).first(as: Bool.self) ?? true
            // Totals are the tenants' money: the platform's prepaid upstream credit is listed but not added to it.
            let tenants = wallets.filter { $0.kind != .upstreamBalance }
            return BalanceReport(
                at: at, provisional: provisional, wallets: wallets,
                totalBalance: tenants.reduce(0) { $0 + $1.balance },
                totalPending: tenants.reduce(0) { $0 + $1.pending },
                totalAvailable: tenants.reduce(0) { $0 + $1.available })
        }
    }
}
