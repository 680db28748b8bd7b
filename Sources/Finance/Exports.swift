import Foundation
import Ledger
import PostgresLibpq
import ResellerCore

/// What can be exported. Columns and their order are documented in docs/finance.md and never change order.
package enum ExportDataset: String, Sendable, CaseIterable {
    /// Every transfer touching an account in scope, reservations and their resolutions included.
    case journal
    /// Posted money as debit and credit lines with the chart of accounts' codes.
    case doubleEntry = "double_entry"
    /// Messages accepted in the period, with prices, parts, country, status and times.
    case messages
    /// Usage rows, as `GET /reports/usage` groups them.
    case usage
    /// One account's posted movements with a running balance.
    case statement
    /// Top-ups, adjustments, credit transfers and returns, upstream purchases.
    case payments
}

package enum ExportFormat: String, Sendable, CaseIterable {
    case csv, jsonl

    package var contentType: String {
        switch self {
        case .csv: "text/csv; charset=utf-8"
        case .jsonl: "application/x-ndjson"
        }
    }
}

package struct ExportRequest: Sendable {
    package var dataset: ExportDataset
    package var format: ExportFormat
    package var scope: FinanceScope
    /// `[from, to)`: by posting time (journal, double entry, statement, payments, usage in the posted view) or
    /// acceptance time (messages, usage in the accepted view).
    package var from: Date
    package var to: Date
    package var timeZone: String
    package var gzip: Bool
    /// The statement's account.
    package var accountID: UUID?
    /// Usage rows only.
    package var groupBy: [UsageDimension]
    package var view: UsageView

    package init(
        dataset: ExportDataset, format: ExportFormat, scope: FinanceScope, from: Date, to: Date, timeZone: String,
        gzip: Bool, accountID: UUID? = nil, groupBy: [UsageDimension] = [.day, .subAccount, .country],
        view: UsageView = .posted
    ) {
        self.dataset = dataset
        self.format = format
        self.scope = scope
        self.from = from
        self.to = to
        self.timeZone = timeZone
        self.gzip = gzip
        self.accountID = accountID
        self.groupBy = groupBy
        self.view = view
    }

    /// The usage report a `usage` export writes.
    var usage: UsageReportRequest {
        UsageReportRequest(
            scope: scope, from: from, to: to, timeZone: timeZone, groupBy: groupBy, view: view)
    }

    /// `sms-reseller_journal_reseller-1a2b3c4d_20261101-20261201.csv.gz`: dataset, whose, the period's local dates.
    package var fileName: String {
        let owner =
            if let subAccountID = scope.subAccountID {
                "sub-account-\(subAccountID.apiString.prefix(8))"
            } else if let resellerID = scope.resellerID {
                "reseller-\(resellerID.apiString.prefix(8))"
            } else {
                "platform"
            }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: timeZone) ?? TimeZone(identifier: "UTC")!
        func day(_ date: Date) -> String {
            let parts = calendar.dateComponents([.year, .month, .day], from: date)
            return String(format: "%04d%02d%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
        }
        let account = accountID.map { "_account-\($0.apiString.prefix(8))" } ?? ""
        return "sms-reseller_\(dataset.rawValue)_\(owner)\(account)_\(day(from))-\(day(to)).\(format.rawValue)"
            + (gzip ? ".gz" : "")
    }
}

/// What an export wrote.
package struct ExportSummary: Sendable, Equatable {
    /// Data rows (the CSV header not counted).
    package var rows: Int
    package var bytes: Int
}

/// Streams exports from PostgreSQL (`COPY (…) TO STDOUT`) to a writer, chunk by chunk: memory stays constant whatever
/// the size, the next chunk is read only when the writer has taken the last (back-pressure), and a writer that throws
/// (the client went away) cancels the query. See docs/finance.md.
package struct Exporter: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Checks what can be checked before the first byte: the account of a statement is visible, a double-entry export
    /// has a code for every account kind it can meet. Throws the `DomainError` to answer.
    package func prepare(_ request: ExportRequest) async throws {
        switch request.dataset {
        case .statement:
            guard let accountID = request.accountID else {
                throw DomainError.validation([.init(field: "accountId", message: "is required for a statement export")])
            }
            let visible = try await pool.query(
                PostgresQuery(
                    unescaped: """
                        SELECT 1 FROM ledger_account a WHERE a.id = \(SQLLiteral.uuid(accountID)) AND \(request.scope.accountFilter("a"))
                        """)
            ).first(as: Int.self)
            guard visible != nil else { throw DomainError.notFound("No account \(accountID.apiString).") }
        case .doubleEntry:
            guard request.scope.role != .subAccount else {
                throw DomainError.forbidden("The double-entry journal is kept by the admin and by resellers.")
            }
            let owner = request.scope.ownReseller
            let chart = try await pool.withConnection { try await AccountCodes.chart(resellerID: owner, on: $0) }
            let missing = AccountCodes.requiredKinds(for: request.scope.role).filter { kind in
                !chart.contains { $0.accountKind == kind }
            }
            guard missing.isEmpty else {
                throw DomainError(
                    .conflict, code: "account_codes_missing",
                    detail:
                        "The chart of accounts has no code for: \(missing.map(\.rawValue).joined(separator: ", ")). Set them with PUT /account-codes."
                )
            }
        case .journal, .messages, .usage, .payments:
            break
        }
    }

    /// Runs the export, handing each encoded chunk to `write`, and what is written so far to `progress` after each.
    package func run(
        _ request: ExportRequest, progress: (ExportSummary) -> Void = { _ in },
        write: ([UInt8]) async throws -> Void
    ) async throws -> ExportSummary {
        var encoder = try ExportEncoder(framing: request.format == .csv ? .csv : .jsonLines, gzip: request.gzip)
        try await pool.withConnection { connection in
            try await connection.withTransaction(isolation: .repeatableRead, readOnly: true) { connection in
                // Times are written in the requested zone; the zone name was validated against pg_timezone_names.
                try await connection.query(
                    PostgresQuery(unescaped: "SET LOCAL TIME ZONE \(SQLLiteral.text(request.timeZone))"))
                let plan =
                    request.dataset == .usage
                    ? try await UsageReports.prepare(request.usage, on: connection) : UsageReports.Plan()
                let select = Self.select(request, usagePlan: plan)
                let copy: String =
                    switch request.format {
                    case .csv: "COPY (\(select)) TO STDOUT WITH (FORMAT csv, HEADER)"
                    // Each row one JSON document. CSV framing with delimiter and quote bytes that JSON always escapes
                    // passes the document through untouched (text framing would double its backslashes).
                    case .jsonl:
                        "COPY (SELECT row_to_json(x)::text FROM (\(select)) x) TO STDOUT WITH (FORMAT csv, DELIMITER E'\\x1f', QUOTE E'\\x1e')"
                    }
                try await connection.copyOut(PostgresQuery(unescaped: copy)) { chunk in
                    let bytes = try encoder.encode(chunk)
                    if !bytes.isEmpty { try await write(bytes) }
                    progress(Self.summary(encoder, request))
                }
            }
        }
        let tail = try encoder.finish()
        if !tail.isEmpty { try await write(tail) }
        return Self.summary(encoder, request)
    }

    private static func summary(_ encoder: ExportEncoder, _ request: ExportRequest) -> ExportSummary {
        ExportSummary(rows: max(0, encoder.records - (request.format == .csv ? 1 : 0)), bytes: encoder.bytes)
    }

    // MARK: - The datasets' SQL

    /// An amount in minor units as a decimal with 4 places (`12.5000`).
    private static func amount(_ sql: String) -> String { "((\(sql))::numeric / 10000)::numeric(22, 4)::text" }
    /// A time in RFC 3339 with microseconds, in the session's (the requested) zone.
    private static func time(_ sql: String) -> String {
        "to_char(\(sql), 'YYYY-MM-DD\"T\"HH24:MI:SS.USTZH:TZM')"
    }

    static func select(_ request: ExportRequest, usagePlan: UsageReports.Plan) -> String {
        let scope = request.scope
        let from = SQLLiteral.timestamp(request.from)
        let to = SQLLiteral.timestamp(request.to)
        // Transfers touching an account in scope (every transfer for the un-narrowed admin).
        let touchesScope =
            scope.resellerID == nil && scope.subAccountID == nil && scope.role == .admin
            ? "true"
            : """
            (t.debit_account_id IN (SELECT a.id FROM ledger_account a WHERE \(scope.accountFilter("a")))
             OR t.credit_account_id IN (SELECT a.id FROM ledger_account a WHERE \(scope.accountFilter("a"))))
            """
        let messageID = """
            CASE WHEN coalesce(p.code, t.code) IN ('send_retail', 'send_wholesale', 'late_delivery', 'upstream_cost')
                 THEN coalesce(p.reference, t.reference) END
            """
        switch request.dataset {
        case .journal:
            return """
                SELECT t.seq, t.id AS transfer_id, \(time("t.created_at")) AS posted_at, t.kind, t.state, t.code,
                       \(amount("t.amount")) AS amount, t.debit_account_id, d.kind AS debit_account_kind,
                       t.credit_account_id, c.kind AS credit_account_kind, t.reseller_id, t.sub_account_id,
                       \(messageID) AS message_id, t.pending_id, t.reference, t.note, t.created_by
                FROM ledger_transfer t
                JOIN ledger_account d ON d.id = t.debit_account_id
                JOIN ledger_account c ON c.id = t.credit_account_id
                LEFT JOIN ledger_transfer p ON p.id = t.pending_id
                WHERE t.created_at >= \(from) AND t.created_at < \(to) AND \(touchesScope)
                ORDER BY t.seq
                """
        case .doubleEntry:
            let owner = scope.ownReseller
            return """
                SELECT to_char(t.created_at, 'YYYY-MM-DD') AS date, \(time("t.created_at")) AS posted_at,
                       t.id AS transfer_id, l.line, ac.code AS account_code, ac.name AS account_name,
                       a.kind AS account_kind, a.id AS account_id,
                       CASE WHEN l.line = 1 THEN \(amount("t.amount")) ELSE \(amount("0")) END AS debit,
                       CASE WHEN l.line = 2 THEN \(amount("t.amount")) ELSE \(amount("0")) END AS credit,
                       coalesce(\(messageID), t.reference, t.id::text) AS reference,
                       t.code || coalesce(': ' || t.note, '') AS description
                FROM ledger_transfer t
                LEFT JOIN ledger_transfer p ON p.id = t.pending_id
                CROSS JOIN LATERAL (VALUES (1, t.debit_account_id), (2, t.credit_account_id)) AS l (line, account_id)
                JOIN ledger_account a ON a.id = l.account_id
                LEFT JOIN account_code ac ON ac.account_kind = a.kind AND ac.reseller_id IS NOT DISTINCT FROM \(SQLLiteral.uuid(owner))
                WHERE t.kind IN ('posted', 'post_pending') AND t.created_at >= \(from) AND t.created_at < \(to)
                  AND \(touchesScope)
                ORDER BY t.seq, l.line
                """
        case .messages:
            var columns = [
                "m.id AS message_id", "m.batch_id", "\(time("m.accepted_at")) AS accepted_at", "m.reseller_id",
                "m.sub_account_id", "m.recipient", "m.country", "b.sender", "b.reference AS client_reference",
                "b.parts", "m.status", "m.status_code", "m.status_detail",
                "\(time("m.submitted_at")) AS submitted_at", "\(time("m.status_at")) AS status_at",
                "\(amount("m.retail_price")) AS retail_price",
            ]
            if scope.seesWholesale { columns.append("\(amount("m.wholesale_price")) AS wholesale_price") }
            if scope.seesUpstreamCost {
                columns.append(
                    "CASE WHEN m.upstream_cost_transfer_id IS NOT NULL THEN \(amount("m.upstream_cost")) END AS upstream_cost"
                )
                columns.append("m.upstream_id")
            }
            return """
                SELECT \(columns.joined(separator: ", "))
                FROM message m JOIN message_batch b ON b.reseller_id = m.reseller_id AND b.id = m.batch_id
                WHERE m.accepted_at >= \(from) AND m.accepted_at < \(to) AND \(scope.tenantFilter("m"))
                ORDER BY m.accepted_at, m.id
                """
        case .usage:
            let report = UsageReports.sql(request.usage, plan: usagePlan)
            let period =
                request.groupBy.contains(.month)
                ? "to_char(u.period, 'YYYY-MM')" : "to_char(u.period, 'YYYY-MM-DD')"
            var columns = [
                "\(period) AS period", "u.reseller_id", "u.sub_account_id", "u.country", "u.class AS status_class",
                "u.messages", "u.parts", "\(amount("u.retail_charged")) AS retail_charged",
                "\(amount("u.retail_refunded")) AS retail_refunded", "\(amount("u.retail_pending")) AS retail_pending",
            ]
            if scope.seesWholesale {
                columns += [
                    "\(amount("u.wholesale_charged")) AS wholesale_charged",
                    "\(amount("u.wholesale_refunded")) AS wholesale_refunded",
                    "\(amount("u.wholesale_pending")) AS wholesale_pending",
                    "\(amount("u.retail_charged - u.wholesale_charged")) AS reseller_margin",
                ]
            }
            if scope.seesUpstreamCost {
                columns += [
                    "\(amount("u.upstream_cost")) AS upstream_cost",
                    "\(amount("u.wholesale_charged - u.upstream_cost")) AS platform_margin",
                ]
            }
            return "SELECT \(columns.joined(separator: ", ")) FROM (\(report)) u"
        case .statement:
            let account = SQLLiteral.uuid(request.accountID)
            return """
                WITH moves AS (
                    SELECT t.seq, t.id, t.created_at, t.kind, t.code, t.reference, t.note,
                           CASE WHEN t.debit_account_id = \(account) THEN t.credit_account_id ELSE t.debit_account_id END AS counterparty,
                           CASE WHEN t.debit_account_id = \(account) THEN t.amount ELSE 0 END AS debit,
                           CASE WHEN t.credit_account_id = \(account) THEN t.amount ELSE 0 END AS credit
                    FROM ledger_transfer t
                    WHERE (t.debit_account_id = \(account) OR t.credit_account_id = \(account))
                      AND t.kind IN ('posted', 'post_pending') AND t.created_at < \(to)
                )
                SELECT seq, id AS transfer_id, \(time("created_at")) AS posted_at, kind, code, reference, note,
                       counterparty AS counterparty_account_id, \(amount("debit")) AS debit, \(amount("credit")) AS credit,
                       \(amount("balance")) AS balance
                FROM (SELECT *, sum(credit - debit) OVER (ORDER BY seq) AS balance FROM moves) x
                WHERE created_at >= \(from)
                ORDER BY seq
                """
        case .payments:
            return """
                SELECT \(time("t.created_at")) AS posted_at, t.id AS transfer_id, t.code AS type, \(amount("t.amount")) AS amount,
                       t.debit_account_id, d.kind AS debit_account_kind, t.credit_account_id, c.kind AS credit_account_kind,
                       coalesce(t.reseller_id, d.reseller_id, c.reseller_id) AS reseller_id,
                       coalesce(t.sub_account_id, d.sub_account_id, c.sub_account_id) AS sub_account_id,
                       coalesce(d.upstream_connection_id, c.upstream_connection_id) AS upstream_connection_id,
                       CASE WHEN t.code <> 'upstream_purchase' THEN t.reference END AS payment_reference, t.note,
                       u.invoice_reference, \(amount("coalesce(u.amount_paid, p.amount_paid)")) AS amount_paid,
                       coalesce(u.currency, p.currency) AS currency, t.created_by
                FROM ledger_transfer t
                JOIN ledger_account d ON d.id = t.debit_account_id
                JOIN ledger_account c ON c.id = t.credit_account_id
                LEFT JOIN upstream_purchase u ON u.transfer_id = t.id
                LEFT JOIN transfer_payment p ON p.transfer_id = t.id
                WHERE t.code IN ('top_up', 'adjustment', 'credit_transfer', 'credit_return', 'upstream_purchase')
                  AND t.kind = 'posted' AND t.created_at >= \(from) AND t.created_at < \(to) AND \(touchesScope)
                ORDER BY t.seq
                """
        }
    }
}

/// IANA time zone names as PostgreSQL knows them (reports and exports cut days in them).
package actor TimeZoneNames {
    private let pool: PostgresPool
    private var names: Set<String>?

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    package func contains(_ name: String) async throws -> Bool {
        if names == nil {
            names = Set(try await pool.query("SELECT name FROM pg_timezone_names").decode(String.self))
        }
        return names!.contains(name)
    }
}
