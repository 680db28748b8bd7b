import Finance
import Foundation
import HTTPTypes
import Ledger
import Messaging
import PostgresLibpq
import ResellerAPI
import ResellerApp
import ResellerCore
import SMSCore
import Testing

/// Finance end to end: sends through the dispatcher and the simulator, delivery reports (delivered, not delivered,
/// late), an upstream purchase; then reports, exports and the ledger must agree to the unit, before and after the
/// hours are sealed into the rollup, in every role's scope.
@Suite(.serialized, .timeLimit(.minutes(3))) struct FinanceTests {
    typealias Report = Components.Schemas.UsageReport

    static func sum(_ api: TenancyHarness, _ sql: PostgresQuery) async throws -> Int64 {
        try await api.pool.query(sql).first(as: Int64?.self).flatMap { $0 } ?? 0
    }

    static func credits(_ text: String?) -> Int64 {
        guard let text else { return 0 }
        return (try? Money(parsing: text, allowNegative: true))?.minorUnits ?? Int64.min
    }

    static func usage(_ api: TenancyHarness, key: String, _ query: String) async throws -> Report {
        let reply = try await api.call(.get, "/reports/usage?\(query)", key: key)
        try #require(reply.status == .ok, "\(reply.json)")
        return try reply.decode(Report.self)
    }

    /// Moves every transfer and message back by `shift` plus a few hours depending on its position, so that the
    /// history spans several days and the rollup can seal it (the append-only guard is set aside for this test only).
    static func age(_ api: TenancyHarness, by shift: Duration) async throws {
        try await api.pool.withTransaction { connection in
            try await connection.query("SET LOCAL session_replication_role = replica")
            try await connection.query(
                """
                UPDATE ledger_transfer SET created_at = created_at - make_interval(secs => \(shift.inSeconds))
                                                      - make_interval(hours => (seq % 5)::int * 7)
                """)
            try await connection.query(
                "UPDATE message SET accepted_at = accepted_at - make_interval(secs => \(shift.inSeconds))")
        }
    }

    @Test func reportsExportsAndTheLedgerAgreeInEveryScopeBeforeAndAfterSealing() async throws {
        try await TenancyHarness.run(configure: {
            DeliveryReportTests.dispatching(&$0)
            $0.ledgerMaintenance = false
        }) { api in
            let numbers = (0..<6).map { "3161000000\($0)" }
            let a = try await DeliveryReportTests.sent(api, "FinanceA", recipients: numbers)
            let b = try await DeliveryReportTests.sent(api, "FinanceB", recipients: Array(numbers.prefix(2)))
            // A: two delivered, one not delivered then delivered after all (a late charge), one not delivered, two in
            // flight. B: both delivered.
            for (index, status) in ["DELIVERED", "DELIVERED", "NOT DELIVERED", "NOT DELIVERED"].enumerated() {
                let message = a.messages[index]
                let reply = try await DeliveryReportTests.report(
                    api, a.callbackPath, smsID: message.upstreamID, status: status, reference: message.id)
                #expect(reply.status == .ok)
            }
            _ = try await DeliveryReportTests.report(
                api, a.callbackPath, smsID: a.messages[2].upstreamID, status: "DELIVERED", reference: a.messages[2].id)
            for message in b.messages {
                _ = try await DeliveryReportTests.report(
                    api, b.callbackPath, smsID: message.upstreamID, status: "DELIVERED", reference: message.id)
            }

            // Every message the upstream took cost once; asking again costs nothing more.
            let costs = try await Self.sum(api, "SELECT count(*) FROM ledger_transfer WHERE code = 'upstream_cost'")
            #expect(costs == 8)
            let connectionID = try #require(
                try await api.pool.query("SELECT id FROM upstream_connection").first(as: UUID.self))
            let again = try await api.pool.withTransaction { connection in
                try await OutboxRepository.postUpstreamCosts(
                    messages: try await connection.query("SELECT id FROM message").decode(UUID.self),
                    connections: Array(repeating: connectionID, count: 8), on: connection)
            }
            #expect(again == 0)

            // An upstream purchase credits the connection's balance once per invoice.
            let purchase: [String: Any] = [
                "credits": "100.0000", "amountPaid": "7.5000", "currency": "EUR", "invoiceReference": "INV-1",
            ]
            let bought = try await api.call(
                .post, "/upstream-connections/\(connectionID.apiString)/purchases", key: api.adminKey, body: purchase,
                headers: [HTTPField.Name("Idempotency-Key")!: "p1"])
            #expect(bought.status == .created, "\(bought.json)")
            let twice = try await api.call(
                .post, "/upstream-connections/\(connectionID.apiString)/purchases", key: api.adminKey, body: purchase,
                headers: [HTTPField.Name("Idempotency-Key")!: "p2"])
            #expect(twice.status == .conflict && twice.string("code") == "invoice_already_recorded")
            let upstreamBalance = try await Self.sum(
                api,
                "SELECT credits_posted - debits_posted FROM ledger_account WHERE kind = 'upstream_balance' AND upstream_connection_id = \(connectionID)"
            )
            let costTotal = try await Self.sum(
                api, "SELECT sum(credits_posted) FROM ledger_account WHERE kind = 'upstream_cost'")
            #expect(upstreamBalance == 1_000_000 - costTotal && costTotal > 0)

            try await Self.age(api, by: .seconds(3 * 86_400))
            let from = APIDates.string(from: Date().addingTimeInterval(-10 * 86_400))
            let to = APIDates.string(from: Date().addingTimeInterval(3_600))
            let period = "from=\(from)&to=\(to)"
            let grouped = "\(period)&groupBy=day,sub_account,country,status_class&timeZone=Europe/Amsterdam"

            // The ledger's own sums.
            let retail = try await Self.sum(
                api, "SELECT sum(credits_posted) FROM ledger_account WHERE kind = 'reseller_revenue'")
            let wholesale = try await Self.sum(
                api, "SELECT sum(credits_posted) FROM ledger_account WHERE kind = 'platform_revenue'")
            let reserved = try await Self.sum(
                api, "SELECT sum(debits_pending) FROM ledger_account WHERE kind = 'sub_account_wallet'")

            let rawPosted = try await Self.usage(api, key: api.adminKey, grouped)
            let rawAccepted = try await Self.usage(api, key: api.adminKey, grouped + "&view=accepted")
            // Seal every hour before now. Transaction ids are cluster-wide, so other suites' transactions can hold the
            // horizon back for a while: call until it has passed the aged history.
            try await eventually("the aged hours are sealed") {
                try await UsageRollupService.seal(pool: api.pool, hours: 1_000)
                return try await api.pool.query(
                    "SELECT sealed_until >= now() - interval '2 hours' FROM usage_rollup_state"
                ).first(as: Bool?.self) == true
            }
            let rolledHours = try await Self.sum(api, "SELECT count(DISTINCT hour) FROM usage_money_hour")
            #expect(rolledHours > 1)
            let posted = try await Self.usage(api, key: api.adminKey, grouped)
            let accepted = try await Self.usage(api, key: api.adminKey, grouped + "&view=accepted")
            #expect(posted.rows == rawPosted.rows && posted.totals == rawPosted.totals, "rollup and facts agree")
            #expect(accepted.totals == rawAccepted.totals)

            for report in [posted, accepted] {
                #expect(Self.credits(report.totals.retailCharged) == retail)
                #expect(Self.credits(report.totals.wholesaleCharged) == wholesale)
                #expect(Self.credits(report.totals.upstreamCost) == costTotal)
                #expect(
                    Self.credits(report.totals.platformMargin)
                        == Self.credits(report.totals.wholesaleCharged) - costTotal)
            }
            // Pending: the change in what is reserved, which over all time is what is reserved now.
            #expect(Self.credits(accepted.totals.retailPending) == reserved)
            #expect(Self.credits(posted.totals.retailPending) == reserved)
            #expect(accepted.totals.messages == 8)
            // Charged + refunded settle six messages of A (two still pending) and both of B.
            let settled = posted.rows.filter { $0.statusClass != .pending }.reduce(0) { $0 + $1.figures.messages }
            #expect(settled == 6 && posted.rows.allSatisfy { $0.period != nil })

            // A reseller sees its own tenant, without the upstream cost; a sub-account its retail only.
            let resellerReport = try await Self.usage(api, key: a.tenant.resellerKey, period + "&groupBy=sub_account")
            #expect(resellerReport.totals.upstreamCost == nil && resellerReport.totals.platformMargin == nil)
            #expect(resellerReport.rows.allSatisfy { $0.subAccountId == a.tenant.subAccountID })
            let subReport = try await Self.usage(api, key: b.tenant.subAccountKey, period)
            #expect(subReport.totals.wholesaleCharged == nil && subReport.totals.messages == 2)
            let foreign = try await Self.usage(
                api, key: b.tenant.subAccountKey, period + "&subAccountId=\(a.tenant.subAccountID)")
            #expect(foreign.rows.allSatisfy { $0.figures.messages == 0 } && foreign.totals.retailCharged == "0.0000")

            // Exports: the usage rows sum to the report; the journal holds every transfer once; gzip when accepted.
            let usageCSV = try await api.call(.get, "/exports/usage?\(grouped)", key: api.adminKey)
            #expect(usageCSV.status == .ok && usageCSV.headers[.contentType] == "text/csv; charset=utf-8")
            let lines = String(decoding: usageCSV.body, as: UTF8.self).components(separatedBy: "\r\n").filter {
                !$0.isEmpty
            }
            let header = lines[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let retailColumn = try #require(header.firstIndex(of: "retail_charged"))
            let exported = lines.dropFirst().reduce(Int64(0)) {
                $0 + Self.credits(String($1.split(separator: ",", omittingEmptySubsequences: false)[retailColumn]))
            }
            #expect(exported == retail)

            let journal = try await api.call(
                .get, "/exports/journal?\(period)&format=jsonl", key: api.adminKey,
                headers: [.acceptEncoding: "br;q=1.0, gzip;q=0.5"])
            #expect(journal.status == .ok && journal.headers[.contentEncoding] == "gzip")
            #expect(journal.headers[.contentDisposition]?.contains(".jsonl.gz") == true)
            let unzipped = try Self.gunzip(journal.body)
            let documents = unzipped.split(separator: UInt8(ascii: "\n")).map {
                try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any]
            }
            let transfers = try await Self.sum(api, "SELECT count(*) FROM ledger_transfer")
            #expect(documents.count == Int(transfers) && documents.allSatisfy { $0 != nil })

            let resellerJournal = try await api.call(.get, "/exports/journal?\(period)", key: a.tenant.resellerKey)
            let resellerText = String(decoding: resellerJournal.body, as: UTF8.self)
            #expect(resellerJournal.status == .ok && !resellerText.contains("upstream_cost"))
            #expect(!resellerText.contains(b.tenant.subAccountID))

            // Double entry: refused until the chart has every code, then debits equal credits.
            let refused = try await api.call(.get, "/exports/double_entry?\(period)", key: api.adminKey)
            #expect(refused.status == .conflict && refused.string("code") == "account_codes_missing")
            let chart = LedgerAccountKind.allCases.enumerated().map { index, kind in
                ["accountKind": kind.rawValue, "code": "\(1000 + index)", "name": kind.rawValue]
            }
            let put = try await api.call(.put, "/account-codes", key: api.adminKey, body: ["items": chart])
            #expect(put.status == .ok, "\(put.json)")
            let entries = try await api.call(.get, "/exports/double_entry?\(period)", key: api.adminKey)
            #expect(entries.status == .ok)
            let entryLines = String(decoding: entries.body, as: UTF8.self).components(separatedBy: "\r\n").dropFirst()
                .filter { !$0.isEmpty }
            let debits = entryLines.reduce(Int64(0)) { $0 + Self.credits(Self.field($1, 8)) }
            let creditsSum = entryLines.reduce(Int64(0)) { $0 + Self.credits(Self.field($1, 9)) }
            #expect(debits == creditsSum && debits > 0)
            let subDoubleEntry = try await api.call(
                .get, "/exports/double_entry?\(period)", key: b.tenant.subAccountKey)
            #expect(subDoubleEntry.status == .forbidden)

            // Balances now agree with the accounts; a bad zone is refused.
            let balances = try await api.call(.get, "/reports/balances", key: api.adminKey)
            let report = try balances.decode(Components.Schemas.BalanceReport.self)
            let wallets = try await Self.sum(
                api,
                "SELECT sum(credits_posted - debits_posted) FROM ledger_account WHERE kind IN ('reseller_wallet', 'sub_account_wallet')"
            )
            #expect(Self.credits(report.totalBalance) == wallets)
            let badZone = try await api.call(
                .get, "/reports/usage?\(period)&timeZone=Mars/Olympus", key: api.adminKey)
            #expect(badZone.status == .unprocessableContent)
        }
    }

    /// The `index`th field of a CSV line without quoted commas.
    static func field(_ line: String, _ index: Int) -> String {
        String(line.split(separator: ",", omittingEmptySubsequences: false)[index])
    }

    static func gunzip(_ data: Data) throws -> [UInt8] {
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("export-\(UUID().uuidString).gz")
        try data.write(to: input)
        defer { try? FileManager.default.removeItem(at: input) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/gzip")
        process.arguments = ["-dc", input.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "gzip -dc failed")
        return Array(output)
    }
}
