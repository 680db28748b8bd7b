import Foundation
import PostgresLibpq

/// One invariant of the books, as a query for the rows that break it.
package struct LedgerCheck: Sendable {
    /// A stable name (`snake_case`), printed by `sms-reseller verify-ledger`.
    package var name: String
    /// What holds when the check passes.
    package var rule: String
    /// A query of one `text` column: one row per offender (an account, a transfer, a message), empty when the rule
    /// holds.
    package var offenders: String

    package init(name: String, rule: String, offenders: String) {
        self.name = name
        self.rule = rule
        self.offenders = offenders
    }
}

/// What one check found.
package struct LedgerCheckResult: Sendable, Equatable {
    package var name: String
    package var rule: String
    /// Offenders found (0: the rule holds).
    package var count: Int
    /// The first offenders in order, at most ``LedgerVerifier/sampleSize``.
    package var sample: [String]

    package var holds: Bool { count == 0 }
}

/// Checks the invariants of the books against the database as a whole, in one read-only snapshot: the ledger's own
/// (``LedgerVerifier/ledgerChecks``) and any the caller adds (the messages' money rules live with the messages). Run by
/// `sms-reseller verify-ledger`, the fault suite and the invariant tests.
package struct LedgerVerifier: Sendable {
    package let pool: PostgresPool
    package let checks: [LedgerCheck]
    package static let sampleSize = 5

    package init(pool: PostgresPool, checks: [LedgerCheck] = LedgerVerifier.ledgerChecks) {
        self.pool = pool
        self.checks = checks
    }

    /// Every check's result, in the order of ``checks``.
    package func verify() async throws -> [LedgerCheckResult] {
        try await pool.withTransaction(isolation: .repeatableRead, readOnly: true) { connection in
            var results: [LedgerCheckResult] = []
            for check in checks {
                let row = try await connection.query(
                    """
                    SELECT count(*)::bigint, coalesce((array_agg(o.offender ORDER BY o.offender))[1:\(Self.sampleSize)], '{}')
                    FROM (\(unescaped: check.offenders)) AS o (offender)
                    """
                ).first(as: (Int, [String]).self)
                results.append(
                    LedgerCheckResult(name: check.name, rule: check.rule, count: row?.0 ?? 0, sample: row?.1 ?? []))
            }
            return results
        }
    }

    /// How long a reservation may stay pending past its timeout before it counts as a violation: expiry is a
    /// periodic sweep (ledger maintenance), not instantaneous.
    package static let expiryGrace = "10 minutes"

    /// The ledger's invariants (docs/ledger.md, "Checked invariants").
    package static let ledgerChecks: [LedgerCheck] = [
        LedgerCheck(
            name: "ledger_sums_to_zero",
            rule: "every posting has a debit and a credit: all accounts' posted and pending balances sum to zero",
            offenders: """
                SELECT format('posted %s, pending %s', posted, pending) FROM (
                    SELECT coalesce(sum(credits_posted - debits_posted), 0) AS posted,
                           coalesce(sum(credits_pending - debits_pending), 0) AS pending
                    FROM ledger_account) s
                WHERE posted <> 0 OR pending <> 0
                """),
        LedgerCheck(
            name: "balances_equal_transfers",
            rule: "each account's four sums equal the sums of its transfers",
            offenders: """
                SELECT a.id::text FROM ledger_account a
                LEFT JOIN (
                    SELECT account, sum(dp) AS dp, sum(cp) AS cp, sum(dq) AS dq, sum(cq) AS cq FROM (
                        SELECT debit_account_id AS account,
                               CASE WHEN kind IN ('posted', 'post_pending') THEN amount ELSE 0 END AS dp, 0 AS cp,
                               CASE WHEN kind = 'pending' AND state = 'pending' THEN amount ELSE 0 END AS dq, 0 AS cq
                        FROM ledger_transfer
                        UNION ALL
                        SELECT credit_account_id, 0, CASE WHEN kind IN ('posted', 'post_pending') THEN amount ELSE 0 END,
                               0, CASE WHEN kind = 'pending' AND state = 'pending' THEN amount ELSE 0 END
                        FROM ledger_transfer) t
                    GROUP BY account) s ON s.account = a.id
                WHERE a.debits_posted <> coalesce(s.dp, 0) OR a.credits_posted <> coalesce(s.cp, 0)
                   OR a.debits_pending <> coalesce(s.dq, 0) OR a.credits_pending <> coalesce(s.cq, 0)
                """),
        LedgerCheck(
            name: "no_account_overdrawn",
            rule: "no account that must not go below zero is below minus its credit limit, pending debits included",
            offenders: """
                SELECT id::text FROM ledger_account
                WHERE debits_must_not_exceed_credits
                  AND credits_posted + coalesce(credit_limit, 0) - debits_posted - debits_pending < 0
                """),
        LedgerCheck(
            name: "reservations_resolved_once",
            rule: "each reservation is resolved at most once, and its state matches its resolution",
            offenders: """
                SELECT p.id::text FROM ledger_transfer p
                LEFT JOIN (
                    SELECT pending_id, count(*) AS n, bool_or(kind = 'post_pending') AS posted,
                           bool_or(code = 'expired') AS expired
                    FROM ledger_transfer WHERE pending_id IS NOT NULL GROUP BY pending_id) r ON r.pending_id = p.id
                WHERE p.kind = 'pending' AND (
                    coalesce(r.n, 0) > 1
                    OR (p.state = 'pending') <> (r.n IS NULL)
                    OR (p.state = 'posted') <> coalesce(r.posted, false)
                    OR (p.state = 'expired') <> coalesce(r.expired, false))
                """),
        LedgerCheck(
            name: "posted_within_reservation",
            rule: "no reservation posts more than it reserved",
            offenders: """
                SELECT r.id::text FROM ledger_transfer r JOIN ledger_transfer p ON p.id = r.pending_id
                WHERE r.kind = 'post_pending' AND r.amount > p.amount
                """),
        LedgerCheck(
            name: "reservations_expire",
            rule: "no reservation is still pending \(expiryGrace) after its timeout",
            offenders: """
                SELECT id::text FROM ledger_transfer
                WHERE state = 'pending' AND timeout_at <= now() - interval '\(expiryGrace)'
                """),
    ]
}
