import AsyncHTTPClient
import Finance
import Foundation
import HTTPTypes
import Ledger
import Messaging
import NIOCore
import NIOHTTP1
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
            // A period of centuries (the contract fuzzer's year 431) reads the rollup's hours and the rest raw: the same
            // figures, and no hour of the centuries listed (that took past the statement timeout).
            let byCountry = "groupBy=sub_account,country"
            let centuries = try await Self.usage(
                api, key: api.adminKey, "from=0431-01-01T00:00:00Z&to=2400-01-01T00:00:00Z&\(byCountry)")
            let inPeriod = try await Self.usage(api, key: api.adminKey, "\(period)&\(byCountry)")
            #expect(centuries.rows == inPeriod.rows && centuries.totals == inPeriod.totals)
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

    /// Each message's transfers and acceptance moved to chosen instants (the append-only guard set aside for this test).
    static func place(
        _ api: TenancyHarness, _ messageID: String, accepted: Date, settled: Date, cost: Date
    ) async throws {
        let id = UUID(uuidString: messageID)!
        try await api.pool.withTransaction { connection in
            try await connection.query("SET LOCAL session_replication_role = replica")
            try await connection.query("UPDATE message SET accepted_at = \(accepted) WHERE id = \(id)")
            try await connection.query(
                """
                UPDATE ledger_transfer t SET created_at = \(accepted) FROM message m
                WHERE m.id = \(id) AND t.id IN (m.retail_reservation_id, m.wholesale_reservation_id)
                """)
            try await connection.query(
                """
                UPDATE ledger_transfer t SET created_at = \(settled) FROM message m
                WHERE m.id = \(id) AND t.pending_id IN (m.retail_reservation_id, m.wholesale_reservation_id)
                """)
            try await connection.query(
                """
                UPDATE ledger_transfer t SET created_at = \(cost) FROM message m
                WHERE m.id = \(id) AND t.id = m.upstream_cost_transfer_id
                """)
        }
    }

    @Test func periodBoundariesADaylightSavingDayAndASettlementAfterMonthEnd() async throws {
        try await TenancyHarness.run(configure: {
            DeliveryReportTests.dispatching(&$0)
            $0.ledgerMaintenance = false
        }) { api in
            let sent = try await DeliveryReportTests.sent(
                api, "Edges", recipients: (0..<5).map { "3162000000\($0)" })
            for message in sent.messages {
                _ = try await DeliveryReportTests.report(
                    api, sent.callbackPath, smsID: message.upstreamID, status: "DELIVERED", reference: message.id)
            }
            func at(_ text: String) throws -> Date { try APIDates.date(from: text) }
            let m = sent.messages.map(\.id)
            // Accepted at 23:00 on 31 October in Amsterdam, settled at 02:00 on 1 November.
            try await Self.place(
                api, m[0], accepted: try at("2026-10-31T22:00:00Z"), settled: try at("2026-11-01T01:00:00Z"),
                cost: try at("2026-10-31T22:00:05Z"))
            // 25 October 2026 is 25 hours long in Amsterdam (CEST ends at 03:00): 02:30 CEST and 23:30 CET are that
            // day, 00:30 CET the next.
            try await Self.place(
                api, m[1], accepted: try at("2026-10-25T00:30:00Z"), settled: try at("2026-10-25T22:30:00Z"),
                cost: try at("2026-10-25T00:30:00Z"))
            try await Self.place(
                api, m[2], accepted: try at("2026-10-25T23:30:00Z"), settled: try at("2026-10-25T23:30:00Z"),
                cost: try at("2026-10-25T23:30:00Z"))
            // One microsecond before the boundary, and on it.
            let boundary = try at("2026-11-15T00:00:00Z")
            let justBefore = try at("2026-11-14T23:59:59.999999Z")
            try await Self.place(api, m[3], accepted: justBefore, settled: justBefore, cost: justBefore)
            try await Self.place(api, m[4], accepted: boundary, settled: boundary, cost: boundary)

            let months = "from=2026-09-30T22:00:00Z&to=2026-11-30T23:00:00Z&groupBy=month&timeZone=Europe/Amsterdam"
            let days = "from=2026-10-24T22:00:00Z&to=2026-10-26T23:00:00Z&groupBy=day&timeZone=Europe/Amsterdam"
            func check(_ label: String) async throws -> Report {
                // Money by posting time: the October reservation of m0 is pending at October's end and charged in
                // November, where its reservation is given back.
                let posted = try await Self.usage(api, key: api.adminKey, months)
                try #require(posted.rows.count == 2, "\(label): \(posted.rows)")
                let (october, november) = (posted.rows[0].figures, posted.rows[1].figures)
                #expect(posted.rows[0].period == (try at("2026-09-30T22:00:00Z")), "\(label)")
                #expect(posted.rows[1].period == (try at("2026-10-31T23:00:00Z")), "\(label)")
                #expect(october.messages == 2 && october.retailCharged == "0.1450", "\(label): \(october)")
                #expect(october.retailPending == "0.0725" && october.upstreamCost == "0.0300", "\(label)")
                #expect(november.messages == 3 && november.retailCharged == "0.2175", "\(label): \(november)")
                #expect(november.retailPending == "-0.0725" && november.upstreamCost == "0.0200", "\(label)")
                #expect(october.platformMargin == "0.0700" && november.platformMargin == "0.1300", "\(label)")
                // By acceptance: m0 is October's.
                let accepted = try await Self.usage(api, key: api.adminKey, months + "&view=accepted")
                #expect(accepted.rows.map(\.figures.messages) == [3, 2], "\(label)")
                #expect(accepted.rows.map(\.figures.retailCharged) == ["0.2175", "0.1450"], "\(label)")
                // The 25-hour day holds m1 whole; m2 is the 26th's.
                let daily = try await Self.usage(api, key: api.adminKey, days)
                #expect(
                    daily.rows.map(\.period) == [try at("2026-10-24T22:00:00Z"), try at("2026-10-25T23:00:00Z")],
                    "\(label): \(daily.rows)")
                #expect(daily.rows.map(\.figures.retailCharged) == ["0.0725", "0.0725"], "\(label)")
                #expect(daily.rows.map(\.figures.messages) == [1, 1], "\(label)")
                // [to − 1 h, to) holds the transfer at to − 1 µs, not the one at to; the next period the other.
                for (from, to, expected) in [
                    ("2026-11-14T23:00:00Z", "2026-11-15T00:00:00Z", m[3]),
                    ("2026-11-15T00:00:00Z", "2026-11-15T01:00:00Z", m[4]),
                ] {
                    let edge = try await Self.usage(api, key: api.adminKey, "from=\(from)&to=\(to)")
                    #expect(edge.totals.messages == 1 && edge.totals.upstreamCost == "0.0100", "\(label) \(from)")
                    let journal = try await api.call(
                        .get, "/exports/journal?from=\(from)&to=\(to)&format=jsonl", key: api.adminKey)
                    let ids = String(decoding: journal.body, as: UTF8.self).split(separator: "\n").compactMap {
                        (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["message_id"]
                            as? String
                    }
                    #expect(Set(ids) == [expected], "\(label) journal \(from)")
                }
                return posted
            }
            let unsealed = try await check("from the facts")
            let december = try at("2026-12-01T00:00:00Z")
            try await eventually("October and November are sealed") {
                let sealed = try await UsageRollupService.seal(pool: api.pool, hours: 1_000)
                return sealed.map { $0 >= december } ?? false
            }
            let rolled = try await check("from the rollup")
            #expect(rolled.rows == unsealed.rows)
            // A closed month never changes: more traffic now leaves October and November as they were.
            let more = try await DeliveryReportTests.sent(api, "Later", recipients: ["31620000099"])
            _ = try await DeliveryReportTests.report(
                api, more.callbackPath, smsID: more.messages[0].upstreamID, status: "DELIVERED",
                reference: more.messages[0].id)
            let later = try await Self.usage(api, key: api.adminKey, months)
            #expect(later.rows == rolled.rows && !later.provisional)
        }
    }

    @Test func anExportStreamsAsTheClientReadsAndAClientThatLeavesCancelsTheQuery() async throws {
        try await TenancyHarness.run(configure: { $0.ledgerMaintenance = false }) { api in
            // 300 000 transfers (about 100 MB of CSV): far more than socket buffers hold.
            try await api.pool.query(
                """
                INSERT INTO ledger_transfer (id, debit_account_id, credit_account_id, amount, kind, code, created_by)
                SELECT gen_random_uuid(), f.id, b.id, n, 'posted', 'bench', 'test'
                FROM generate_series(1, 300000) AS n,
                     (SELECT id FROM ledger_account WHERE kind = 'platform_funding') f,
                     (SELECT id FROM ledger_account WHERE kind = 'upstream_balance' LIMIT 1) b
                """)
            let port = api.client.port
            var request = HTTPClientRequest(
                url: "http://127.0.0.1:\(port)/exports/journal?from=2020-01-01T00:00:00Z&to=2100-01-01T00:00:00Z")
            request.headers.add(name: "Authorization", value: "Bearer \(api.adminKey)")
            func copies() async throws -> Int {
                try await api.pool.query(
                    """
                    SELECT count(*) FROM pg_stat_activity
                    WHERE datname = current_database() AND query LIKE 'COPY (%' AND state = 'active'
                    """
                ).first(as: Int.self) ?? 0
            }
            let firstBytes = AsyncStream<Int>.makeStream()
            let reader = Task {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
                #expect(response.status == .ok)
                var received = 0
                for try await chunk in response.body {
                    received += chunk.readableBytes
                    if received >= 1 << 20 {
                        firstBytes.continuation.yield(received)
                        // Stop reading: the server must wait for us, not buffer the rest.
                        try await Task.sleep(for: .seconds(60))
                    }
                }
            }
            for await received in firstBytes.stream {
                #expect(received >= 1 << 20)
                break
            }
            try await Task.sleep(for: .milliseconds(500))
            #expect(try await copies() == 1, "the COPY waits for the client while it does not read")
            reader.cancel()
            try await eventually("the COPY is cancelled once the client has gone") { try await copies() == 0 }
            // The service goes on: another export answers in full.
            let small = try await api.call(
                .get, "/exports/payments?from=2020-01-01T00:00:00Z&to=2100-01-01T00:00:00Z", key: api.adminKey)
            #expect(small.status == .ok)
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
