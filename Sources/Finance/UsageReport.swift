import Foundation
import PostgresLibpq
import ResellerCore

/// Which time a usage figure belongs to.
package enum UsageView: String, Sendable, CaseIterable {
    /// Money by the time its transfer was posted: a reservation when it was opened, a charge or refund when the message
    /// settled, an upstream cost when the upstream took the message. A closed period never changes.
    case posted
    /// Everything about a message by the time it was accepted: counts, and its money as the ledger holds it now (a
    /// message accepted in a period but settled later moves between classes until it settles).
    case accepted
}

/// What usage rows are grouped by.
package enum UsageDimension: String, Sendable, CaseIterable {
    case day, month, reseller
    case subAccount = "sub_account"
    case country
    case statusClass = "status_class"
}

/// A message's money in one of three states: reserved, charged (posted), refunded (voided or expired).
package enum StatusClass: String, Sendable, Decodable, CaseIterable {
    case pending, charged, refunded
}

package struct UsageReportRequest: Sendable {
    package var scope: FinanceScope
    /// `[from, to)`.
    package var from: Date
    package var to: Date
    /// An IANA time zone name; days and months are cut in it.
    package var timeZone: String
    package var groupBy: [UsageDimension]
    package var view: UsageView
    /// Only this country (calling code digits).
    package var country: String?

    package init(
        scope: FinanceScope, from: Date, to: Date, timeZone: String, groupBy: [UsageDimension], view: UsageView,
        country: String? = nil
    ) {
        self.scope = scope
        self.from = from
        self.to = to
        self.timeZone = timeZone
        self.groupBy = groupBy
        self.view = view
        self.country = country
    }
}

/// The figures of one usage row (minor units; counts). Wholesale and upstream cost are nil where the scope may not see
/// them.
package struct UsageFigures: Sendable, Equatable {
    package var messages: Int64 = 0
    package var parts: Int64 = 0
    package var retailCharged: Int64 = 0
    package var retailRefunded: Int64 = 0
    package var retailPending: Int64 = 0
    package var wholesaleCharged: Int64? = 0
    package var wholesaleRefunded: Int64? = 0
    package var wholesalePending: Int64? = 0
    package var upstreamCost: Int64? = 0

    package init() {}

    /// Retail charged less wholesale charged: what the reseller earned.
    package var resellerMargin: Int64? { wholesaleCharged.map { retailCharged - $0 } }
    /// Wholesale charged less upstream cost: what the platform earned.
    package var platformMargin: Int64? {
        guard let wholesaleCharged, let upstreamCost else { return nil }
        return wholesaleCharged - upstreamCost
    }

    package static func += (lhs: inout UsageFigures, rhs: UsageFigures) {
        lhs.messages += rhs.messages
        lhs.parts += rhs.parts
        lhs.retailCharged += rhs.retailCharged
        lhs.retailRefunded += rhs.retailRefunded
        lhs.retailPending += rhs.retailPending
        lhs.wholesaleCharged = lhs.wholesaleCharged.flatMap { a in rhs.wholesaleCharged.map { a + $0 } }
        lhs.wholesaleRefunded = lhs.wholesaleRefunded.flatMap { a in rhs.wholesaleRefunded.map { a + $0 } }
        lhs.wholesalePending = lhs.wholesalePending.flatMap { a in rhs.wholesalePending.map { a + $0 } }
        lhs.upstreamCost = lhs.upstreamCost.flatMap { a in rhs.upstreamCost.map { a + $0 } }
    }
}

package struct UsageRow: Sendable, Equatable {
    /// The start of the row's day or month (in the report's zone), when grouped by one.
    package var period: Date?
    package var resellerID: UUID?
    package var subAccountID: UUID?
    package var country: String?
    package var statusClass: StatusClass?
    package var figures: UsageFigures
}

package struct UsageReport: Sendable {
    package var rows: [UsageRow]
    package var totals: UsageFigures
    /// Whether figures may still change: the period ends after the newest sealed hour (posted view), or it is the
    /// accepted view (messages still settle).
    package var provisional: Bool
}

/// Usage reports over the ledger's message facts (see docs/finance.md for the figures and the two views).
///
/// The posted view reads sealed hours from `usage_money_hour` and everything else from the `usage_money_fact` view:
/// an hour is read from the rollup when it lies wholly inside `[from, to)`, is sealed, and falls wholly into one day or
/// month of the report's zone; the rest of the period (its edges, unsealed hours, hours a zone boundary cuts) is read
/// from the facts. Both sides are sums of the same facts, so the result is exact whichever side a fact comes from.
package struct UsageReports: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    package func report(_ request: UsageReportRequest) async throws -> UsageReport {
        try await pool.withTransaction(isolation: .repeatableRead, readOnly: true) { connection in
            let plan = try await Self.prepare(request, on: connection)
            let rows = try await connection.query(PostgresQuery(unescaped: Self.sql(request, plan: plan)))
                .decodeRecords(RawRow.self).map { $0.row(scope: request.scope) }
            var totals = UsageFigures()
            if !request.scope.seesWholesale {
                totals.wholesaleCharged = nil
                totals.wholesaleRefunded = nil
                totals.wholesalePending = nil
            }
            if !request.scope.seesUpstreamCost { totals.upstreamCost = nil }
            for row in rows { totals += row.figures }
            let sealed = try await connection.query("SELECT sealed_until FROM usage_rollup_state").first(as: Date?.self)
            let provisional = request.view == .accepted || (sealed.flatMap { $0 }.map { request.to > $0 } ?? true)
            return UsageReport(rows: rows, totals: totals, provisional: provisional)
        }
    }

    /// Where a posted-view report reads each part of its period: whole UTC hours from the rollup, the rest from the
    /// facts. Worked out before the report's statement, in the same snapshot, so that the statement names both as
    /// literal time ranges (index range scans, no misestimated join).
    struct Plan: Sendable, Equatable {
        var rolled: [Range<Date>] = []
        var raw: [Range<Date>] = []
    }

    /// Readies `connection`'s transaction for the report's statement and returns its plan (empty for the accepted view).
    /// Just-in-time compilation is turned off (it cost more than the statement itself on these plans), and the
    /// aggregation gets the memory to hash a month of rollup rows.
    static func prepare(_ request: UsageReportRequest, on connection: PostgresConnection) async throws -> Plan {
        try await connection.query("SET LOCAL jit = off")
        try await connection.query("SET LOCAL work_mem = '64MB'")
        guard request.view == .posted else { return Plan() }
        let runs = try await connection.query(
            PostgresQuery(
                unescaped: """
                    WITH \(hours(request))
                    SELECT rolled, greatest(min(h), \(SQLLiteral.timestamp(request.from))),
                           least(max(h) + interval '1 hour', \(SQLLiteral.timestamp(request.to)))
                    FROM (SELECT h, rolled, h - row_number() OVER (PARTITION BY rolled ORDER BY h) * interval '1 hour' AS run
                          FROM hours) x
                    GROUP BY rolled, run ORDER BY 2
                    """)
        ).decode((Bool, Date, Date).self)
        var plan = Plan()
        for (rolled, lower, upper) in runs {
            if rolled { plan.rolled.append(lower..<upper) } else { plan.raw.append(lower..<upper) }
        }
        // Only the hours the rollup holds were listed: what lies before or after them is read raw.
        let covered = runs.map { $0.1..<$0.2 }
        if let first = covered.first?.lowerBound, let last = covered.last?.upperBound {
            if request.from < first { plan.raw.insert(request.from..<first, at: 0) }
            if last < request.to { plan.raw.append(last..<request.to) }
        } else {
            plan.raw = [request.from..<request.to]
        }
        return plan
    }

    /// The start of a row's day or month in the report's zone, of the time `time` (SQL).
    private static func bucket(_ request: UsageReportRequest, _ time: String) -> String {
        let zone = SQLLiteral.text(request.timeZone)
        if request.groupBy.contains(.month) { return "date_trunc('month', \(time), \(zone))" }
        if request.groupBy.contains(.day) { return "date_trunc('day', \(time), \(zone))" }
        return "NULL::timestamptz"
    }

    /// The UTC hours of the period that the rollup may hold (`hours`: from its first hour to the sealed end, so a
    /// period of centuries lists no more than the rollup's life), each `rolled` when the rollup holds it for this
    /// report: wholly inside `[from, to)`, sealed, and wholly inside one day or month of the report's zone.
    private static func hours(_ request: UsageReportRequest) -> String {
        let from = SQLLiteral.timestamp(request.from)
        let to = SQLLiteral.timestamp(request.to)
        return """
            sealed AS (
                SELECT coalesce(sealed_until, '-infinity') AS until,
                       coalesce((SELECT min(hour) FROM usage_money_hour), 'infinity') AS first
                FROM usage_rollup_state
            ), hours AS (
                SELECT h, h >= \(from) AND h + interval '1 hour' <= \(to) AND h + interval '1 hour' <= sealed.until
                          AND \(bucket(request, "h")) IS NOT DISTINCT FROM \(bucket(request, "h + interval '1 hour' - interval '1 microsecond'")) AS rolled
                FROM sealed, generate_series(greatest(date_trunc('hour', \(from), 'UTC'), sealed.first),
                                             least(\(to), sealed.until), interval '1 hour') AS h
                WHERE h < \(to)
            )
            """
    }

    /// The report's SQL, with every value inlined as a literal (exports run it under `COPY`); `plan` from
    /// ``prepare(_:on:)`` in the same snapshot. Columns: period, reseller_id, sub_account_id, country, class, then the
    /// nine figures.
    static func sql(_ request: UsageReportRequest, plan: Plan) -> String {
        let from = SQLLiteral.timestamp(request.from)
        let to = SQLLiteral.timestamp(request.to)
        let groups = Set(request.groupBy)
        func bucket(_ time: String) -> String { Self.bucket(request, time) }
        let country = request.country.map { "AND %.country = \(SQLLiteral.text($0))" } ?? ""
        let facts: String
        switch request.view {
        case .posted:
            // Both sides are read by literal time ranges: PostgreSQL pushes those on the facts down to the transfers'
            // time index in every branch of the view.
            func within(_ column: String, _ ranges: [Range<Date>]) -> String {
                ranges.map {
                    "(\(column) >= \(SQLLiteral.timestamp($0.lowerBound)) AND \(column) < \(SQLLiteral.timestamp($0.upperBound)))"
                }.joined(separator: " OR ")
            }
            var parts: [String] = []
            if !plan.rolled.isEmpty {
                parts.append(
                    """
                    SELECT \(bucket("u.hour")) AS period, u.reseller_id, u.sub_account_id, u.country, u.class,
                           u.messages, u.parts, u.retail, u.wholesale, u.upstream_cost
                    FROM usage_money_hour u
                    WHERE (\(within("u.hour", plan.rolled))) AND \(request.scope.tenantFilter("u"))
                      \(country.replacing("%", with: "u"))
                    """)
            }
            if !plan.raw.isEmpty {
                parts.append(
                    """
                    SELECT \(bucket("f.at")) AS period, f.reseller_id, f.sub_account_id, f.country, f.class,
                           f.messages, f.messages * f.parts AS parts,
                           CASE WHEN f.leg = 'retail' THEN f.amount ELSE 0 END AS retail,
                           CASE WHEN f.leg = 'wholesale' THEN f.amount ELSE 0 END AS wholesale,
                           CASE WHEN f.leg = 'cost' THEN f.amount ELSE 0 END AS upstream_cost
                    FROM usage_money_fact f
                    WHERE (\(within("f.at", plan.raw))) AND \(request.scope.tenantFilter("f"))
                      \(country.replacing("%", with: "f"))
                    """)
            }
            if parts.isEmpty {
                parts.append(
                    """
                    SELECT NULL::timestamptz AS period, u.reseller_id, u.sub_account_id, u.country, u.class, u.messages,
                           u.parts, u.retail, u.wholesale, u.upstream_cost
                    FROM usage_money_hour u WHERE false
                    """)
            }
            facts = "WITH facts AS (\n\(parts.joined(separator: "\nUNION ALL\n"))\n)"
        case .accepted:
            // One row per message for its count (in the class of its first priced leg), one per leg for its money in
            // the state the leg is in now, one for late-delivery charges and the upstream cost.
            let legClass = { (reservation: String, resolution: String) in
                "CASE WHEN \(resolution).kind = 'post_pending' THEN 'charged' WHEN \(resolution).kind = 'void_pending' THEN 'refunded' ELSE 'pending' END"
            }
            let legAmount = { (reservation: String, resolution: String) in
                "coalesce(CASE WHEN \(resolution).kind = 'post_pending' THEN \(resolution).amount ELSE \(reservation).amount END, 0)"
            }
            facts = """
                WITH facts AS (
                    SELECT \(bucket("m.accepted_at")) AS period, m.reseller_id, m.sub_account_id, m.country, x.class,
                           x.messages, x.parts, x.retail, x.wholesale, x.upstream_cost
                    FROM message m
                    JOIN message_batch b ON b.reseller_id = m.reseller_id AND b.id = m.batch_id
                    LEFT JOIN ledger_transfer r ON r.id = m.retail_reservation_id
                    LEFT JOIN ledger_transfer rr ON rr.pending_id = m.retail_reservation_id
                    LEFT JOIN ledger_transfer w ON w.id = m.wholesale_reservation_id
                    LEFT JOIN ledger_transfer wr ON wr.pending_id = m.wholesale_reservation_id
                    LEFT JOIN ledger_transfer c ON c.id = m.upstream_cost_transfer_id
                    LEFT JOIN LATERAL (
                        SELECT coalesce(sum(l.amount) FILTER (WHERE l.debit_account_id = r.debit_account_id), 0) AS retail,
                               coalesce(sum(l.amount) FILTER (WHERE l.debit_account_id = w.debit_account_id), 0) AS wholesale
                        FROM ledger_transfer l WHERE l.code = 'late_delivery' AND l.reference = m.id::text
                    ) late ON true
                    CROSS JOIN LATERAL (VALUES
                        (CASE
                             WHEN r.id IS NOT NULL THEN CASE WHEN rr.kind = 'void_pending' AND late.retail > 0 THEN 'charged' ELSE \(legClass("r", "rr")) END
                             WHEN w.id IS NOT NULL THEN CASE WHEN wr.kind = 'void_pending' AND late.wholesale > 0 THEN 'charged' ELSE \(legClass("w", "wr")) END
                             WHEN m.status IN ('scheduled', 'queued', 'submitted') THEN 'pending'
                             ELSE 'charged'
                         END, 1, b.parts::bigint, 0::bigint, 0::bigint, 0::bigint),
                        (\(legClass("r", "rr")), 0, 0, \(legAmount("r", "rr")), 0, 0),
                        (\(legClass("w", "wr")), 0, 0, 0, \(legAmount("w", "wr")), 0),
                        ('charged', 0, 0, late.retail, late.wholesale, coalesce(c.amount, 0))
                    ) AS x (class, messages, parts, retail, wholesale, upstream_cost)
                    WHERE m.accepted_at >= \(from) AND m.accepted_at < \(to) AND \(request.scope.tenantFilter("m"))
                      \(country.replacing("%", with: "m"))
                      AND (x.messages > 0 OR x.retail > 0 OR x.wholesale > 0 OR x.upstream_cost > 0)
                )
                """
        }
        // Without grouping by class, messages count settlements in the posted view (the pending class holds the change
        // in messages in flight) and acceptances in the accepted view.
        let counted = groups.contains(.statusClass) || request.view == .accepted ? "true" : "class <> 'pending'"
        let dimensions: [(UsageDimension, String)] = [
            (.reseller, "reseller_id"), (.subAccount, "sub_account_id"), (.country, "country"), (.statusClass, "class"),
        ]
        var select = [groups.contains(.day) || groups.contains(.month) ? "period" : "NULL::timestamptz AS period"]
        var groupBy = groups.contains(.day) || groups.contains(.month) ? ["period"] : []
        for (dimension, column) in dimensions {
            let grouped = groups.contains(dimension) || (dimension == .reseller && groups.contains(.subAccount))
            select.append(grouped ? column : "NULL AS \(column)")
            if grouped { groupBy.append(column) }
        }
        return """
            \(facts)
            SELECT \(select.joined(separator: ", ")),
                   coalesce(sum(messages) FILTER (WHERE \(counted)), 0)::bigint AS messages,
                   coalesce(sum(parts) FILTER (WHERE \(counted)), 0)::bigint AS parts,
                   coalesce(sum(retail) FILTER (WHERE class = 'charged'), 0)::bigint AS retail_charged,
                   coalesce(sum(retail) FILTER (WHERE class = 'refunded'), 0)::bigint AS retail_refunded,
                   coalesce(sum(retail) FILTER (WHERE class = 'pending'), 0)::bigint AS retail_pending,
                   coalesce(sum(wholesale) FILTER (WHERE class = 'charged'), 0)::bigint AS wholesale_charged,
                   coalesce(sum(wholesale) FILTER (WHERE class = 'refunded'), 0)::bigint AS wholesale_refunded,
                   coalesce(sum(wholesale) FILTER (WHERE class = 'pending'), 0)::bigint AS wholesale_pending,
                   coalesce(sum(upstream_cost), 0)::bigint AS upstream_cost
            FROM facts
            \(groupBy.isEmpty ? "" : "GROUP BY \(groupBy.joined(separator: ", "))")
            \(groupBy.isEmpty ? "" : "ORDER BY \(groupBy.joined(separator: ", "))")
            """
    }

    private struct RawRow: Decodable {
        var period: Date?
        var resellerID: UUID?
        var subAccountID: UUID?
        var country: String?
        var statusClass: StatusClass?
        var messages: Int64
        var parts: Int64
        var retailCharged: Int64
        var retailRefunded: Int64
        var retailPending: Int64
        var wholesaleCharged: Int64
        var wholesaleRefunded: Int64
        var wholesalePending: Int64
        var upstreamCost: Int64

        enum CodingKeys: String, CodingKey {
            case period, country, messages, parts
            case resellerID = "reseller_id"
            case subAccountID = "sub_account_id"
            case statusClass = "class"
            case retailCharged = "retail_charged"
            case retailRefunded = "retail_refunded"
            case retailPending = "retail_pending"
            case wholesaleCharged = "wholesale_charged"
            case wholesaleRefunded = "wholesale_refunded"
            case wholesalePending = "wholesale_pending"
            case upstreamCost = "upstream_cost"
        }

        func row(scope: FinanceScope) -> UsageRow {
            var figures = UsageFigures()
            figures.messages = messages
            figures.parts = parts
            figures.retailCharged = retailCharged
            figures.retailRefunded = retailRefunded
            figures.retailPending = retailPending
            figures.wholesaleCharged = scope.seesWholesale ? wholesaleCharged : nil
            figures.wholesaleRefunded = scope.seesWholesale ? wholesaleRefunded : nil
            figures.wholesalePending = scope.seesWholesale ? wholesalePending : nil
            figures.upstreamCost = scope.seesUpstreamCost ? upstreamCost : nil
            return UsageRow(
                period: period, resellerID: resellerID, subAccountID: subAccountID, country: country,
                statusClass: statusClass, figures: figures)
        }
    }
}
