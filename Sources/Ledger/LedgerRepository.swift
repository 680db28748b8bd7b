import Foundation
import PostgresLibpq
import ResellerCore

/// The credit ledger's SQL. Every balance change goes through `ledger_apply_transfers`
/// (migration 0003), which locks, checks, updates the account sums and appends the transfers in
/// one statement; this type only builds its input and reads the results.
///
/// See docs/ledger.md.
package struct LedgerRepository: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    package static let accountColumns = """
        id, kind, reseller_id, sub_account_id, upstream_connection_id, debits_pending, debits_posted, credits_pending, credits_posted,
        credit_limit, debits_must_not_exceed_credits, low_balance_threshold, below_threshold, created_at, updated_at
        """
    package static let transferColumns = """
        id, seq, debit_account_id, credit_account_id, amount, kind, state, pending_id, linked_id, timeout_at, code,
        reseller_id, sub_account_id, reference, note, created_by, request_id, created_at
        """

    private static let encoder = JSONEncoder()

    // MARK: - Transfers

    /// Applies `transfers` all together or not at all, on the caller's connection (so the caller's
    /// transaction can write its own rows with them). Throws `LedgerFailure` for a refused list.
    package static func apply(_ transfers: [TransferRequest], linked: Bool = true, on connection: PostgresConnection)
        async throws -> [TransferRecord]
    {
        precondition(!transfers.isEmpty, "no transfers to apply")
        let json = String(decoding: try encoder.encode(transfers.map(TransferJSON.init)), as: UTF8.self)
        do {
            return try await connection.query(
                """
                SELECT \(unescaped: transferColumns) FROM ledger_apply_transfers(\(json)::jsonb, \(linked))
                """
            ).decodeRecords(TransferRecord.self)
        } catch let error as PostgresError {
            throw Self.refusal(error)
        }
    }

    /// The `LedgerFailure` a ledger function's error stands for (its `LE…` state, DETAIL the element's index; a
    /// transfer id used before); any other error as it is.
    private static func refusal(_ error: PostgresError) -> any Error {
        if let state = error.sqlState, let reason = LedgerFailure.sqlStates[state] {
            return LedgerFailure(reason: reason, index: Int(error.detail ?? "") ?? 0, message: error.message)
        }
        if error.isUniqueViolation, error.constraint == "ledger_transfer_pkey" {
            return LedgerFailure(reason: .exists, index: 0, message: error.detail ?? error.message)
        }
        return error
    }

    /// One reservation to resolve with `resolve(_:by:on:)`: posted whole (`post`) or voided.
    package struct Resolution: Sendable {
        package var pendingID: UUID
        package var post: Bool
        package var code: String

        package init(pendingID: UUID, post: Bool, code: String) {
            self.pendingID = pendingID
            self.post = post
            self.code = code
        }
    }

    /// Posts (the whole amount) or voids reservations set-based, in one statement whatever their number
    /// (`ledger_resolve`: each account updated once with its sums), on the caller's connection. Same rules and
    /// failures as `apply` with `.post` and `.void` requests, unlinked.
    package static func resolve(_ resolutions: [Resolution], by actor: String, on connection: PostgresConnection)
        async throws
    {
        guard !resolutions.isEmpty else { return }
        do {
            try await connection.query(
                """
                SELECT ledger_resolve(\(resolutions.map(\.pendingID)), \(resolutions.map { _ in UUID() }),
                                      \(resolutions.map(\.post)), \(resolutions.map(\.code)), \(resolutions.map { _ in actor }))
                """)
        } catch let error as PostgresError {
            throw Self.refusal(error)
        }
    }

    /// Applies `transfers` on a pooled connection: one statement, so atomic on its own.
    package func apply(_ transfers: [TransferRequest]) async throws -> [TransferRecord] {
        try await pool.withConnection { try await Self.apply(transfers, on: $0) }
    }

    /// Voids up to `limit` reservations whose timeout has passed, as `expired`. Reservations another
    /// worker is resolving right now are skipped. Returns how many expired.
    package func expireDue(limit: Int, by actor: String) async throws -> Int {
        try await pool.withTransaction { connection in
            let due = try await connection.query(
                """
                SELECT id FROM ledger_transfer
                WHERE state = 'pending' AND timeout_at IS NOT NULL AND timeout_at <= now()
                ORDER BY timeout_at LIMIT \(limit)
                FOR UPDATE SKIP LOCKED
                """
            ).decode(UUID.self)
            guard !due.isEmpty else { return 0 }
            _ = try await Self.apply(due.map { .expiry($0, by: actor) }, linked: false, on: connection)
            return due.count
        }
    }

    /// The transfer when one of its two accounts is visible in `scope`.
    package func transfer(id: UUID, scope: TenantScope) async throws -> TransferRecord? {
        try await pool.query(
            """
            SELECT \(unescaped: Self.transferColumns) FROM ledger_transfer t
            WHERE t.id = \(id) AND EXISTS (
                SELECT 1 FROM ledger_account
                WHERE ledger_account.id IN (t.debit_account_id, t.credit_account_id)
                  AND (\(scope.resellerID)::uuid IS NULL OR reseller_id = \(scope.resellerID)::uuid)
                  AND (\(scope.subAccountID)::uuid IS NULL OR sub_account_id = \(scope.subAccountID)::uuid)
                  AND (\(scope.resellerID)::uuid IS NULL OR kind <> 'platform_revenue'))
            """
        ).decodeRecords(TransferRecord.self).first
    }

    /// Low-balance events of an account, newest first, before the id `cursor`.
    package func events(accountID: UUID, before cursor: Int64?, limit: Int) async throws -> [BalanceEventRecord] {
        try await pool.query(
            """
            SELECT id, account_id, kind, available, threshold, transfer_id, created_at FROM ledger_event
            WHERE account_id = \(accountID) AND (\(cursor)::bigint IS NULL OR id < \(cursor)::bigint)
            ORDER BY id DESC
            LIMIT \(limit)
            """
        ).decodeRecords(BalanceEventRecord.self)
    }

    /// Transfers touching `accountID`, newest first, before the seq `cursor` (two index scans, merged).
    package func transfers(accountID: UUID, before cursor: Int64?, limit: Int) async throws -> [TransferRecord] {
        try await pool.query(
            """
            SELECT \(unescaped: Self.transferColumns) FROM (
                (SELECT * FROM ledger_transfer WHERE debit_account_id = \(accountID)
                   AND (\(cursor)::bigint IS NULL OR seq < \(cursor)::bigint) ORDER BY seq DESC LIMIT \(limit))
                UNION ALL
                (SELECT * FROM ledger_transfer WHERE credit_account_id = \(accountID)
                   AND (\(cursor)::bigint IS NULL OR seq < \(cursor)::bigint) ORDER BY seq DESC LIMIT \(limit))
            ) t
            ORDER BY seq DESC
            LIMIT \(limit)
            """
        ).decodeRecords(TransferRecord.self)
    }

    // MARK: - Accounts

    package func account(id: UUID, scope: TenantScope) async throws -> LedgerAccountRecord? {
        try await pool.query(
            """
            SELECT \(unescaped: Self.accountColumns) FROM ledger_account
            WHERE id = \(id)
              AND (\(scope.resellerID)::uuid IS NULL OR reseller_id = \(scope.resellerID)::uuid)
              AND (\(scope.subAccountID)::uuid IS NULL OR sub_account_id = \(scope.subAccountID)::uuid)
              AND (\(scope.resellerID)::uuid IS NULL OR kind <> 'platform_revenue')
            """
        ).decodeRecords(LedgerAccountRecord.self).first
    }

    /// The account of `kind` owned by the reseller and/or sub-account (nil ids for platform accounts).
    package static func account(
        kind: LedgerAccountKind, resellerID: UUID?, subAccountID: UUID?, on connection: PostgresConnection
    ) async throws
        -> LedgerAccountRecord?
    {
        try await connection.query(
            """
            SELECT \(unescaped: accountColumns) FROM ledger_account
            WHERE kind = \(kind.rawValue) AND reseller_id IS NOT DISTINCT FROM \(resellerID)::uuid
              AND sub_account_id IS NOT DISTINCT FROM \(subAccountID)::uuid AND upstream_connection_id IS NULL
            """
        ).decodeRecords(LedgerAccountRecord.self).first
    }

    /// One of an upstream connection's two accounts (`upstream_balance`, `upstream_cost`).
    package static func upstreamAccount(
        _ kind: LedgerAccountKind, connectionID: UUID, on connection: PostgresConnection
    ) async throws -> LedgerAccountRecord? {
        try await connection.query(
            """
            SELECT \(unescaped: accountColumns) FROM ledger_account
            WHERE kind = \(kind.rawValue) AND upstream_connection_id = \(connectionID)
            """
        ).decodeRecords(LedgerAccountRecord.self).first
    }

    package func account(kind: LedgerAccountKind, resellerID: UUID?, subAccountID: UUID?) async throws
        -> LedgerAccountRecord?
    {
        try await pool.withConnection {
            try await Self.account(kind: kind, resellerID: resellerID, subAccountID: subAccountID, on: $0)
        }
    }

    /// A sub-account's wallet and its reseller's wallet in one statement (what a send's balance checks need).
    package static func walletsRead(subAccountID: UUID, resellerID: UUID) -> PostgresRead<
        (wallet: LedgerAccountRecord?, resellerWallet: LedgerAccountRecord?)
    > {
        PostgresRead(
            """
            SELECT \(unescaped: accountColumns) FROM ledger_account
            WHERE (kind = 'sub_account_wallet' AND sub_account_id = \(subAccountID))
               OR (kind = 'reseller_wallet' AND reseller_id = \(resellerID) AND sub_account_id IS NULL
                   AND upstream_connection_id IS NULL)
            """
        ) { rows in
            let accounts = try rows.decodeRecords(LedgerAccountRecord.self)
            return (accounts.first { $0.kind == .subAccountWallet }, accounts.first { $0.kind == .resellerWallet })
        }
    }

    /// A sub-account's wallet.
    package func wallet(subAccountID: UUID) async throws -> LedgerAccountRecord? {
        try await pool.query(
            """
            SELECT \(unescaped: Self.accountColumns) FROM ledger_account
            WHERE kind = 'sub_account_wallet' AND sub_account_id = \(subAccountID)
            """
        ).decodeRecords(LedgerAccountRecord.self).first
    }

    package static func account(id: UUID, on connection: PostgresConnection) async throws -> LedgerAccountRecord? {
        try await connection.query("SELECT \(unescaped: accountColumns) FROM ledger_account WHERE id = \(id)")
            .decodeRecords(LedgerAccountRecord.self).first
    }

    /// Accounts visible in `scope`, by id after `cursor`.
    package func accounts(
        scope: TenantScope, kind: LedgerAccountKind?, resellerID: UUID?, subAccountID: UUID?, after cursor: UUID?,
        limit: Int
    ) async throws -> [LedgerAccountRecord] {
        try await pool.query(
            """
            SELECT \(unescaped: Self.accountColumns) FROM ledger_account
            WHERE (\(scope.resellerID)::uuid IS NULL OR reseller_id = \(scope.resellerID)::uuid)
              AND (\(scope.subAccountID)::uuid IS NULL OR sub_account_id = \(scope.subAccountID)::uuid)
              AND (\(scope.resellerID)::uuid IS NULL OR kind <> 'platform_revenue')
              AND (\(kind?.rawValue)::text IS NULL OR kind = \(kind?.rawValue)::text)
              AND (\(resellerID)::uuid IS NULL OR reseller_id = \(resellerID)::uuid)
              AND (\(subAccountID)::uuid IS NULL OR sub_account_id = \(subAccountID)::uuid)
              AND (\(cursor)::uuid IS NULL OR id > \(cursor)::uuid)
            ORDER BY id
            LIMIT \(limit)
            """
        ).decodeRecords(LedgerAccountRecord.self)
    }

    /// Locks the account row for a settings change.
    package static func lockAccount(id: UUID, on connection: PostgresConnection) async throws -> LedgerAccountRecord? {
        try await connection.query(
            "SELECT \(unescaped: accountColumns) FROM ledger_account WHERE id = \(id) FOR UPDATE"
        )
        .decodeRecords(LedgerAccountRecord.self).first
    }

    /// Sets the credit limit (0 = prepaid) of a wallet. Throws `LimitRefused` when what is already
    /// spent or reserved exceeds the balance plus the new limit (the statement failed: roll back).
    package static func setCreditLimit(accountID: UUID, limit: Int64, on connection: PostgresConnection) async throws
        -> LedgerAccountRecord
    {
        do {
            return try await connection.query(
                """
                UPDATE ledger_account SET credit_limit = \(limit) WHERE id = \(accountID) RETURNING \(unescaped: accountColumns)
                """
            ).decodeRecords(LedgerAccountRecord.self)[0]
        } catch let error as PostgresError where error.constraint == "ledger_account_not_overdrawn" {
            throw LimitRefused()
        }
    }

    package struct LimitRefused: Error {}

    /// Sets or removes the low-balance threshold. The crossing state starts from the current balance; an account
    /// that was not below and is below the new threshold gets its `low_balance` event at once (one that already was
    /// gets none: no second alert without a recovery in between).
    package static func setLowBalanceThreshold(
        accountID: UUID, threshold: Int64?, wasBelow: Bool, on connection: PostgresConnection
    ) async throws -> LedgerAccountRecord {
        let record = try await connection.query(
            """
            UPDATE ledger_account SET low_balance_threshold = \(threshold),
                below_threshold = coalesce(credits_posted - debits_posted - debits_pending < \(threshold)::bigint, false)
            WHERE id = \(accountID)
            RETURNING \(unescaped: accountColumns)
            """
        ).decodeRecords(LedgerAccountRecord.self)[0]
        if record.belowThreshold, !wasBelow, let threshold {
            try await connection.query(
                """
                INSERT INTO ledger_event (account_id, reseller_id, sub_account_id, kind, available, threshold)
                VALUES (\(record.id), \(record.resellerID), \(record.subAccountID), 'low_balance', \(record.available), \(threshold))
                """)
        }
        return record
    }

    // MARK: - Statements

    /// How long after a period's end its statement may still change: transfers are stamped while they hold their
    /// accounts' locks and become visible when their transaction commits, bounded by the statement timeout.
    package static let settlingTime = 60

    /// Posted movements of `accountID` with `from <= created_at < to`, in append order, after seq `cursor`,
    /// with the opening balance at `from` and each line's running balance. Read in one snapshot, the account too.
    package func statement(accountID id: UUID, from: Date, to: Date, after cursor: Int64?, limit: Int) async throws
        -> Statement?
    {
        try await pool.withTransaction(isolation: .repeatableRead, readOnly: true) { connection in
            guard let account = try await Self.account(id: id, on: connection) else { return nil }
            let provisional =
                try await connection.query(
                    "SELECT \(to)::timestamptz > now() - make_interval(secs => \(Self.settlingTime))"
                ).first(as: Bool.self) ?? true
            let aggregates = try await connection.query(
                """
                SELECT coalesce(sum(credit - debit) FILTER (WHERE created_at < \(from)), 0)::bigint,
                       coalesce(sum(debit) FILTER (WHERE created_at >= \(from) AND created_at < \(to)), 0)::bigint,
                       coalesce(sum(credit) FILTER (WHERE created_at >= \(from) AND created_at < \(to)), 0)::bigint,
                       coalesce(sum(credit - debit) FILTER (
                           WHERE created_at >= \(from) AND created_at < \(to) AND seq <= coalesce(\(cursor)::bigint, 0)), 0)::bigint
                FROM (
                    SELECT seq, created_at,
                           CASE WHEN credit_account_id = \(id) THEN amount ELSE 0 END AS credit,
                           CASE WHEN debit_account_id = \(id) THEN amount ELSE 0 END AS debit
                    FROM ledger_transfer
                    WHERE (debit_account_id = \(id) OR credit_account_id = \(id)) AND kind IN ('posted', 'post_pending')
                ) movements
                """
            ).first(as: (Int64, Int64, Int64, Int64).self)
            guard let totals = aggregates else {
                throw PostgresError(kind: .misuse, message: "an aggregate returned no row")
            }
            let rows = try await connection.query(
                """
                SELECT \(unescaped: Self.transferColumns) FROM ledger_transfer
                WHERE (debit_account_id = \(id) OR credit_account_id = \(id))
                  AND kind IN ('posted', 'post_pending')
                  AND created_at >= \(from) AND created_at < \(to)
                  AND (\(cursor)::bigint IS NULL OR seq > \(cursor)::bigint)
                ORDER BY seq
                LIMIT \(limit + 1)
                """
            ).decodeRecords(TransferRecord.self)
            var running = totals.0 + totals.3
            var lines: [StatementLine] = []
            for transfer in rows.prefix(limit) {
                let isDebit = transfer.debitAccountID == id
                running += isDebit ? -transfer.amount : transfer.amount
                lines.append(
                    StatementLine(
                        transfer: transfer,
                        counterpartyAccountID: isDebit ? transfer.creditAccountID : transfer.debitAccountID,
                        debit: isDebit ? transfer.amount : 0, credit: isDebit ? 0 : transfer.amount, balance: running))
            }
            return Statement(
                account: account, from: from, to: to, openingBalance: totals.0, totalDebits: totals.1,
                totalCredits: totals.2,
                lines: lines, provisional: provisional, nextCursor: rows.count > limit ? lines.last?.transfer.seq : nil)
        }
    }
}

/// The JSON element `ledger_apply_transfers` reads (snake_case keys, microsecond timestamps).
private struct TransferJSON: Encodable {
    var request: TransferRequest
    init(_ request: TransferRequest) { self.request = request }
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: TransferRequest.CodingKeys.self)
        try container.encode(request.id, forKey: .id)
        try container.encode(request.kind, forKey: .kind)
        try container.encodeIfPresent(request.debitAccountID, forKey: .debitAccountID)
        try container.encodeIfPresent(request.creditAccountID, forKey: .creditAccountID)
        try container.encodeIfPresent(request.amount, forKey: .amount)
        try container.encodeIfPresent(request.pendingID, forKey: .pendingID)
        if let timeout = request.timeoutAt {
            try container.encode(APIDates.string(from: timeout), forKey: .timeoutAt)
        }
        try container.encode(request.code, forKey: .code)
        try container.encodeIfPresent(request.resellerID, forKey: .resellerID)
        try container.encodeIfPresent(request.subAccountID, forKey: .subAccountID)
        try container.encodeIfPresent(request.reference, forKey: .reference)
        try container.encodeIfPresent(request.note, forKey: .note)
        try container.encode(request.createdBy, forKey: .createdBy)
        try container.encodeIfPresent(request.requestID, forKey: .requestID)
        try container.encode(request.ignoreCreditLimit, forKey: .ignoreCreditLimit)
        try container.encode(request.expire, forKey: .expire)
    }
}
