import Finance
import Foundation
import HTTPTypes
import Ledger
import PostgresLibpq
import ResellerAPI
import ResellerApp
import ResellerCore
import SMSCore
import Testing

/// Reports, exports and balances agree with the ledger to the unit, for every role's scope, in several time zones and
/// both views, over a randomized history: concurrent sends (three countries, one and two parts), delivery reports
/// (delivered, not delivered, late delivered, none), cancels of scheduled messages, top-ups, credit transfers and an
/// upstream purchase, spread over several days and partly sealed into the hourly rollup.
///
/// The seed is printed; `FINANCE_SEED=<n>` repeats a run.
@Suite(.serialized, .timeLimit(.minutes(5))) struct FinanceExactnessTests {
    typealias Report = Components.Schemas.UsageReport
    typealias Figures = Components.Schemas.UsageFigures

    /// What a scope's figures must equal, read from the ledger's accounts and transfers.
    struct Expected: Equatable, CustomStringConvertible {
        var retailCharged: Int64
        var retailRefunded: Int64
        var retailPending: Int64
        var wholesaleCharged: Int64?
        var wholesaleRefunded: Int64?
        var wholesalePending: Int64?
        var upstreamCost: Int64?

        var description: String {
            "retail \(retailCharged)/\(retailRefunded)/\(retailPending) wholesale \(String(describing: wholesaleCharged))/"
                + "\(String(describing: wholesaleRefunded))/\(String(describing: wholesalePending)) cost \(String(describing: upstreamCost))"
        }

        init(_ figures: Figures) {
            retailCharged = FinanceTests.credits(figures.retailCharged)
            retailRefunded = FinanceTests.credits(figures.retailRefunded)
            retailPending = FinanceTests.credits(figures.retailPending)
            wholesaleCharged = figures.wholesaleCharged.map(FinanceTests.credits)
            wholesaleRefunded = figures.wholesaleRefunded.map(FinanceTests.credits)
            wholesalePending = figures.wholesalePending.map(FinanceTests.credits)
            upstreamCost = figures.upstreamCost.map(FinanceTests.credits)
        }

        init(
            retailCharged: Int64, retailRefunded: Int64, retailPending: Int64, wholesaleCharged: Int64?,
            wholesaleRefunded: Int64?, wholesalePending: Int64?, upstreamCost: Int64?
        ) {
            self.retailCharged = retailCharged
            self.retailRefunded = retailRefunded
            self.retailPending = retailPending
            self.wholesaleCharged = wholesaleCharged
            self.wholesaleRefunded = wholesaleRefunded
            self.wholesalePending = wholesalePending
            self.upstreamCost = upstreamCost
        }

        static func + (lhs: Expected, rhs: Expected) -> Expected {
            func add(_ a: Int64?, _ b: Int64?) -> Int64? { a.flatMap { a in b.map { a + $0 } } }
            return Expected(
                retailCharged: lhs.retailCharged + rhs.retailCharged,
                retailRefunded: lhs.retailRefunded + rhs.retailRefunded,
                retailPending: lhs.retailPending + rhs.retailPending,
                wholesaleCharged: add(lhs.wholesaleCharged, rhs.wholesaleCharged),
                wholesaleRefunded: add(lhs.wholesaleRefunded, rhs.wholesaleRefunded),
                wholesalePending: add(lhs.wholesalePending, rhs.wholesalePending),
                upstreamCost: add(lhs.upstreamCost, rhs.upstreamCost))
        }
    }

    /// One caller and the scope it sees, as SQL over ledger accounts `a` (its wallets and revenue accounts).
    struct Scope: Sendable {
        var name: String
        var key: String
        var role: Role
        var resellerID: UUID?
        var subAccountID: UUID?

        /// The money legs in this scope, as the ledger holds them: sums of transfers between the legs' accounts.
        func expected(_ api: TenancyHarness) async throws -> Expected {
            let reseller = resellerID
            let sub = subAccountID
            func sum(_ sql: PostgresQuery) async throws -> Int64 { try await FinanceTests.sum(api, sql) }
            // Retail: sub-account wallets → reseller revenue; wholesale: reseller wallet → platform revenue.
            let retailCharged = try await sum(
                """
                SELECT sum(t.amount) FROM ledger_transfer t
                JOIN ledger_account d ON d.id = t.debit_account_id JOIN ledger_account c ON c.id = t.credit_account_id
                WHERE t.kind IN ('posted', 'post_pending') AND d.kind = 'sub_account_wallet' AND c.kind = 'reseller_revenue'
                  AND (\(reseller)::uuid IS NULL OR d.reseller_id = \(reseller)::uuid)
                  AND (\(sub)::uuid IS NULL OR d.sub_account_id = \(sub)::uuid)
                """)
            let retailRefunded = try await sum(
                """
                SELECT sum(t.amount) FROM ledger_transfer t JOIN ledger_transfer p ON p.id = t.pending_id
                WHERE t.kind = 'void_pending' AND p.code = 'send_retail'
                  AND (\(reseller)::uuid IS NULL OR p.reseller_id = \(reseller)::uuid)
                  AND (\(sub)::uuid IS NULL OR p.sub_account_id = \(sub)::uuid)
                """)
            let retailPending = try await sum(
                """
                SELECT sum(debits_pending) FROM ledger_account WHERE kind = 'sub_account_wallet'
                  AND (\(reseller)::uuid IS NULL OR reseller_id = \(reseller)::uuid)
                  AND (\(sub)::uuid IS NULL OR sub_account_id = \(sub)::uuid)
                """)
            guard role != .subAccount else {
                return Expected(
                    retailCharged: retailCharged, retailRefunded: retailRefunded, retailPending: retailPending,
                    wholesaleCharged: nil, wholesaleRefunded: nil, wholesalePending: nil, upstreamCost: nil)
            }
            let wholesaleCharged = try await sum(
                """
                SELECT sum(credits_posted) FROM ledger_account WHERE kind = 'platform_revenue'
                  AND (\(reseller)::uuid IS NULL OR reseller_id = \(reseller)::uuid)
                """)
            let wholesaleRefunded = try await sum(
                """
                SELECT sum(t.amount) FROM ledger_transfer t JOIN ledger_transfer p ON p.id = t.pending_id
                WHERE t.kind = 'void_pending' AND p.code = 'send_wholesale'
                  AND (\(reseller)::uuid IS NULL OR p.reseller_id = \(reseller)::uuid)
                """)
            let wholesalePending = try await sum(
                """
                SELECT sum(debits_pending) FROM ledger_account WHERE kind = 'reseller_wallet'
                  AND (\(reseller)::uuid IS NULL OR reseller_id = \(reseller)::uuid)
                """)
            let upstreamCost: Int64? =
                role == .admin
                ? try await sum("SELECT sum(credits_posted) FROM ledger_account WHERE kind = 'upstream_cost'") : nil
            return Expected(
                retailCharged: retailCharged, retailRefunded: retailRefunded, retailPending: retailPending,
                wholesaleCharged: wholesaleCharged, wholesaleRefunded: wholesaleRefunded,
                wholesalePending: wholesalePending, upstreamCost: upstreamCost)
        }
    }

    @Test func randomizedHistoryAgreesWithTheLedgerInEveryScopeZoneAndView() async throws {
        let seed =
            ProcessInfo.processInfo.environment["FINANCE_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...1 << 40)
        print("FinanceExactnessTests seed \(seed) (FINANCE_SEED=\(seed) repeats it)")
        try await TenancyHarness.run(configure: {
            DeliveryReportTests.dispatching(&$0)
            $0.ledgerMaintenance = false
        }) { api in
            var random = SeededGenerator(seed: seed)
            var tenants: [TenancyHarness.Tenant] = []
            for name in ["North", "South", "East"] {
                tenants.append(try await api.sendingTenant("Exact\(name)", credits: "40").tenant)
            }
            let connection = try #require(
                try await api.call(.get, "/upstream-connections", key: api.adminKey).items.first)
            let callbackPath = try #require(connection["callbackPath"] as? String)
            let connectionID = try #require(connection["id"] as? String)

            // Four rounds of concurrent traffic and money movements, then reports on what the upstream took.
            for round in 0..<4 {
                let plans = tenants.map { tenant in
                    (
                        tenant,
                        (0..<Int.random(in: 1...3, using: &random)).map { _ in
                            let count = Int.random(in: 1...4, using: &random)
                            let recipients = (0..<count).map { _ in
                                ["3161", "4479", "7916"].randomElement(using: &random)!
                                    + String(format: "%07d", Int.random(in: 0..<10_000_000, using: &random))
                            }
                            let long = Bool.random(using: &random)
                            let scheduled = Int.random(in: 0..<5, using: &random) == 0
                            return (recipients, long, scheduled)
                        }, String(Int.random(in: 1...9, using: &random))
                    )
                }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (tenant, sends, credits) in plans {
                        group.addTask {
                            for (recipients, long, scheduled) in sends {
                                var body: [String: Any] = [
                                    "sender": "Jansen", "recipients": recipients,
                                    "text": long ? String(repeating: "Round \(round) ", count: 20) : "Round \(round)",
                                    "long": long,
                                ]
                                if scheduled {
                                    body["scheduleAt"] = APIDates.string(from: Date().addingTimeInterval(86_400))
                                }
                                let reply = try await api.send(tenant, body)
                                #expect(reply.status == .created, "\(reply.json)")
                            }
                        }
                        group.addTask {
                            let topUp = try await api.call(
                                .post, "/resellers/\(tenant.resellerID)/top-ups", key: api.adminKey,
                                body: ["amount": credits, "paymentReference": "PAY-\(UUID().uuidString.prefix(8))"],
                                headers: LedgerAPITests.key())
                            #expect(topUp.status == .created, "\(topUp.json)")
                            let give = try await api.call(
                                .post, "/sub-accounts/\(tenant.subAccountID)/credit-transfers", key: tenant.resellerKey,
                                body: ["amount": "1.5", "direction": "to_sub_account"], headers: LedgerAPITests.key())
                            #expect(give.status == .created, "\(give.json)")
                        }
                    }
                    try await group.waitForAll()
                }
                try await eventually("round \(round) is dispatched") {
                    try await api.pool.query("SELECT count(*) FROM message WHERE status = 'queued'").first(as: Int.self)
                        == 0
                }
                let submitted = try await api.pool.query(
                    "SELECT id, upstream_id FROM message WHERE status = 'submitted' ORDER BY id"
                ).decode((UUID, String).self)
                let fates = submitted.map { _ in Int.random(in: 0..<10, using: &random) }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (message, fate) in zip(submitted, fates) where fate < 8 {
                        group.addTask {
                            let status = fate < 5 ? "DELIVERED" : "NOT DELIVERED"
                            _ = try await DeliveryReportTests.report(
                                api, callbackPath, smsID: message.1, status: status, reference: message.0.apiString)
                            if fate == 7 {
                                // Not delivered, then delivered after all: a late charge.
                                _ = try await DeliveryReportTests.report(
                                    api, callbackPath, smsID: message.1, status: "DELIVERED",
                                    reference: message.0.apiString)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                // Cancel some scheduled messages (their reservations are voided: refunded).
                let scheduled = try await api.pool.query(
                    "SELECT m.id, m.sub_account_id FROM message m WHERE status = 'scheduled' ORDER BY id"
                ).decode((UUID, UUID).self)
                for (message, subAccount) in scheduled where Bool.random(using: &random) {
                    let tenant = try #require(tenants.first { $0.subAccountID == subAccount.apiString })
                    let reply = try await api.call(
                        .post, "/sub-accounts/\(subAccount.apiString)/messages/\(message.apiString)/cancel",
                        key: tenant.subAccountKey, headers: LedgerAPITests.key())
                    #expect(reply.status == .ok, "\(reply.json)")
                }
            }
            let purchase = try await api.call(
                .post, "/upstream-connections/\(connectionID)/purchases", key: api.adminKey,
                body: ["credits": "25", "amountPaid": "1.9500", "currency": "EUR", "invoiceReference": "INV-\(seed)"],
                headers: LedgerAPITests.key())
            #expect(purchase.status == .created, "\(purchase.json)")

            // Spread the history over four days (each transfer and message its own offset), then seal part of it.
            try await api.pool.withTransaction { connection in
                try await connection.query("SET LOCAL session_replication_role = replica")
                try await connection.query(
                    """
                    UPDATE ledger_transfer SET created_at = created_at - interval '1 day'
                        - make_interval(secs => (hashtext(id::text || \(String(seed))) & 2147483647) % 259200)
                    """)
                try await connection.query(
                    """
                    UPDATE message SET accepted_at = accepted_at - interval '1 day'
                        - make_interval(secs => (hashtext(id::text || \(String(seed))) & 2147483647) % 259200)
                    """)
            }
            try await eventually("part of the history is sealed") {
                let sealed = try await UsageRollupService.seal(pool: api.pool, hours: 20)
                return sealed.map { $0 > Date().addingTimeInterval(-3 * 86_400) } ?? false
            }
            let sealed = try #require(
                try await api.pool.query("SELECT sealed_until FROM usage_rollup_state").first(as: Date?.self) ?? nil)
            let oldest = try #require(
                try await api.pool.query("SELECT min(created_at) FROM ledger_transfer").first(as: Date.self))
            #expect(sealed < Date().addingTimeInterval(-3_600), "some history is left to the facts")
            #expect(try await FinanceTests.sum(api, "SELECT count(*) FROM usage_money_hour") > 0)

            var scopes = [Scope(name: "admin", key: api.adminKey, role: .admin)]
            for tenant in tenants {
                let reseller = UUID(uuidString: tenant.resellerID)!
                let sub = UUID(uuidString: tenant.subAccountID)!
                scopes.append(Scope(name: "reseller", key: tenant.resellerKey, role: .reseller, resellerID: reseller))
                scopes.append(
                    Scope(
                        name: "sub-account", key: tenant.subAccountKey, role: .subAccount, resellerID: reseller,
                        subAccountID: sub))
            }
            let from = oldest.addingTimeInterval(-86_400)
            let to = Date().addingTimeInterval(3_600)
            let cut = Date(
                timeIntervalSince1970: Double.random(
                    in: oldest.timeIntervalSince1970...Date().timeIntervalSince1970, using: &random))
            func period(_ a: Date, _ b: Date) -> String {
                "from=\(APIDates.string(from: a))&to=\(APIDates.string(from: b))"
            }

            for scope in scopes {
                let expected = try await scope.expected(api)
                for zone in ["UTC", "Europe/Amsterdam", "Asia/Kolkata", "America/St_Johns"] {
                    let grouped = "groupBy=day,sub_account,country,status_class&timeZone=\(zone)"
                    let posted = try await FinanceTests.usage(api, key: scope.key, "\(period(from, to))&\(grouped)")
                    #expect(Expected(posted.totals) == expected, "\(scope.name) posted \(zone)")
                    // Rows sum to the totals.
                    let rows = posted.rows.map { Expected($0.figures) }.reduce(Expected.zero(scope.role), +)
                    #expect(rows == expected, "\(scope.name) rows \(zone)")
                    // Periods add up, whatever the cut (an unaligned instant, inside or past the sealed hours).
                    let before = try await FinanceTests.usage(api, key: scope.key, "\(period(from, cut))&\(grouped)")
                    let after = try await FinanceTests.usage(api, key: scope.key, "\(period(cut, to))&\(grouped)")
                    #expect(Expected(before.totals) + Expected(after.totals) == expected, "\(scope.name) cut \(zone)")
                    let accepted = try await FinanceTests.usage(
                        api, key: scope.key, "\(period(from, to))&\(grouped)&view=accepted")
                    #expect(Expected(accepted.totals) == expected, "\(scope.name) accepted \(zone)")
                }
                // The usage export's rows sum to the same figures.
                let csv = try await api.call(
                    .get, "/exports/usage?\(period(from, to))&timeZone=Asia/Kolkata", key: scope.key)
                #expect(csv.status == .ok)
                let table = Self.table(csv.body)
                #expect(
                    Self.column(table, "retail_charged") == expected.retailCharged
                        && Self.column(table, "retail_pending") == expected.retailPending, "\(scope.name) export")
                if scope.role != .subAccount {
                    #expect(Self.column(table, "wholesale_charged") == expected.wholesaleCharged)
                } else {
                    #expect(table.header.firstIndex(of: "wholesale_charged") == nil)
                }
                if scope.role == .admin {
                    #expect(Self.column(table, "upstream_cost") == expected.upstreamCost)
                } else {
                    #expect(table.header.firstIndex(of: "upstream_cost") == nil)
                }
                // The journal holds each transfer touching the scope's accounts once.
                let journal = try await api.call(.get, "/exports/journal?\(period(from, to))", key: scope.key)
                let journalRows = Self.table(journal.body).rows.count
                let touching = try await FinanceTests.sum(
                    api,
                    """
                    SELECT count(*) FROM ledger_transfer t WHERE EXISTS (
                        SELECT 1 FROM ledger_account a WHERE a.id IN (t.debit_account_id, t.credit_account_id)
                          AND (\(scope.resellerID)::uuid IS NULL OR a.reseller_id = \(scope.resellerID)::uuid)
                          AND (\(scope.subAccountID)::uuid IS NULL OR a.sub_account_id = \(scope.subAccountID)::uuid)
                          AND (\(scope.role == .admin) OR a.kind <> 'platform_revenue'))
                    """)
                #expect(Int64(journalRows) == touching, "\(scope.name) journal")
                // Balances at the cut: the wallets as the transfers before it left them.
                let balances = try await api.call(
                    .get, "/reports/balances?at=\(APIDates.string(from: cut))", key: scope.key)
                let report = try balances.decode(Components.Schemas.BalanceReport.self)
                let replayed = try await FinanceTests.sum(
                    api,
                    """
                    SELECT sum(CASE WHEN t.credit_account_id = a.id THEN t.amount ELSE -t.amount END)
                    FROM ledger_account a JOIN ledger_transfer t ON a.id IN (t.debit_account_id, t.credit_account_id)
                    WHERE a.kind IN ('reseller_wallet', 'sub_account_wallet') AND t.kind IN ('posted', 'post_pending')
                      AND t.created_at < \(cut)
                      AND (\(scope.resellerID)::uuid IS NULL OR a.reseller_id = \(scope.resellerID)::uuid)
                      AND (\(scope.subAccountID)::uuid IS NULL OR a.sub_account_id = \(scope.subAccountID)::uuid)
                    """)
                #expect(FinanceTests.credits(report.totalBalance) == replayed, "\(scope.name) balances at the cut")
            }

            // A foreign tenant sees nothing of another's: filters outside the caller's scope find nothing.
            let foreign = try await FinanceTests.usage(
                api, key: tenants[0].resellerKey, "\(period(from, to))&resellerId=\(tenants[1].resellerID)")
            #expect(foreign.totals.messages == 0 && foreign.totals.retailCharged == "0.0000")
            let foreignExport = try await api.call(
                .get, "/exports/messages?\(period(from, to))&subAccountId=\(tenants[1].subAccountID)",
                key: tenants[0].resellerKey)
            #expect(foreignExport.status == .ok && Self.table(foreignExport.body).rows.isEmpty)
            let foreignBalances = try await api.call(
                .get, "/reports/balances?resellerId=\(tenants[1].resellerID)", key: tenants[0].subAccountKey)
            #expect(try foreignBalances.decode(Components.Schemas.BalanceReport.self).wallets.isEmpty)
        }
    }

    /// A CSV export as a header and rows (no field of these exports holds a comma or a line break).
    static func table(_ body: Data) -> (header: [String], rows: [[String]]) {
        let lines = String(decoding: body, as: UTF8.self).components(separatedBy: "\r\n").filter { !$0.isEmpty }
        guard let first = lines.first else { return ([], []) }
        let split = { (line: String) in line.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        return (split(first), lines.dropFirst().map(split))
    }

    /// The sum of a decimal column, nil when the column is absent.
    static func column(_ table: (header: [String], rows: [[String]]), _ name: String) -> Int64? {
        guard let index = table.header.firstIndex(of: name) else { return nil }
        return table.rows.reduce(0) { $0 + FinanceTests.credits($1[index]) }
    }
}

extension FinanceExactnessTests.Expected {
    /// Nothing, with the figures a role sees.
    static func zero(_ role: Role) -> Self {
        Self(
            retailCharged: 0, retailRefunded: 0, retailPending: 0, wholesaleCharged: role == .subAccount ? nil : 0,
            wholesaleRefunded: role == .subAccount ? nil : 0, wholesalePending: role == .subAccount ? nil : 0,
            upstreamCost: role == .admin ? 0 : nil)
    }
}
