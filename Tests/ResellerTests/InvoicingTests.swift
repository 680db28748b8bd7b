import Foundation
import HTTPTypes
import Invoicing
import Ledger
import PostgresLibpq
import PostgresTestSupport
import ResellerAPI
import ResellerApp
import ResellerCore
import SMSCore
import Testing

/// The arithmetic of documents: half-even rounding, money from credits, gross to net, formatting.
@Suite struct InvoiceMathTests {
    @Test func roundingIsHalfEvenOnBothSides() {
        let cases: [(Int128, Int128, Int128)] = [
            (5, 10, 0), (15, 10, 2), (25, 10, 2), (35, 10, 4), (-5, 10, 0), (-15, 10, -2), (-25, 10, -2),
            (14, 10, 1), (16, 10, 2), (-14, 10, -1), (-16, 10, -2), (0, 7, 0), (1, 3, 0), (2, 3, 1),
        ]
        for (numerator, denominator, expected) in cases {
            #expect(InvoiceMath.roundHalfEven(numerator, denominator) == expected, "\(numerator)/\(denominator)")
        }
    }

    @Test func moneyFromCreditsRoundsOnceToTheMinorUnit() {
        // 0.2175 credits at 2 EUR = 0.435 EUR, a tie: half-even gives 0.44 (0.43 is odd).
        #expect(InvoiceMath.money(credits: 2_175, creditPrice: 200_000_000, digits: 2) == 44)
        // 0.1450 credits at 0.3 = 0.0435: rounds to 0.04.
        #expect(InvoiceMath.money(credits: 1_450, creditPrice: 30_000_000, digits: 2) == 4)
        // The same tie in yen (no minor unit) and in dinar (three).
        #expect(InvoiceMath.money(credits: 25_000, creditPrice: 100_000_000, digits: 0) == 2)
        #expect(InvoiceMath.money(credits: 2_175, creditPrice: 200_000_000, digits: 3) == 435)
        // A thousand million credits at 1 000 000 per credit does not overflow on the way.
        #expect(
            InvoiceMath.money(credits: Money.maximum.minorUnits, creditPrice: 100_000_000_000_000, digits: 2)
                == 100_000_000_000_000_000)
    }

    @Test func theNetOfAGrossAmountAddsBackToIt() {
        // 12.10 at 21 %: 10.00 + 2.10.
        #expect(InvoiceMath.net(ofGross: 1_210, rateBasisPoints: 2_100) == 1_000)
        for gross in Int64(0)...5_000 {
            for rate in [0, 600, 900, 1_900, 2_000, 2_100, 2_500, 2_700] {
                let net = InvoiceMath.net(ofGross: gross, rateBasisPoints: rate)
                let back = net + InvoiceMath.vat(base: net, rateBasisPoints: rate)
                // Some gross amounts no net reaches (the net's VAT jumps a cent); those miss by one minor unit.
                #expect(abs(back - gross) <= 1, "gross \(gross) at \(rate)")
            }
        }
    }

    @Test func formattingAndParsing() {
        #expect(InvoiceMath.format(-5, digits: 2) == "-0.05")
        #expect(InvoiceMath.format(12_345, digits: 0) == "12345")
        #expect(InvoiceMath.format(7, digits: 3) == "0.007")
        #expect(InvoiceMath.formatExact(14_500_000_000, scale: 12, minimumDigits: 2) == "0.0145")
        #expect(InvoiceMath.formatExact(100_000_000, scale: 8, minimumDigits: 2) == "1.00")
        #expect(InvoiceMath.parse("21", digits: 2, maximum: 10_000) == 2_100)
        #expect(InvoiceMath.parse("8.5", digits: 2, maximum: 10_000) == 850)
        for bad in ["", ".5", "1.", "1.234", "-1", "1e3", "100.01", "١"] {
            #expect(InvoiceMath.parse(bad, digits: 2, maximum: 10_000) == nil, "\(bad)")
        }
        #expect(InvoiceCSV.field("=HYPERLINK(1)") == "'=HYPERLINK(1)")
        #expect(InvoiceCSV.field("-0.44") == "-0.44")
        #expect(InvoiceCSV.field("a, \"b\"") == "\"a, \"\"b\"\"\"")
    }
}

/// Profiles, the monthly run, documents and credit notes over HTTP, against the ledger.
@Suite(.serialized, .timeLimit(.minutes(5))) struct InvoicingTests {
    static let idempotency = HTTPField.Name("Idempotency-Key")!

    /// `YYYY-MM` of the month `offset` months from now, in UTC (the issuers of these tests cut months in UTC).
    static func month(_ offset: Int) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents(
            [.year, .month], from: calendar.date(byAdding: .month, value: offset, to: Date())!)
        return String(format: "%04d-%02d", parts.year!, parts.month!)
    }

    static var lastMonth: String { month(-1) }
    static var thisMonth: String { month(0) }
    /// The year of today's issue dates (UTC).
    static var thisYear: Int { Int(month(0).prefix(4))! }

    /// Moves every transfer and message into the middle of last month (UTC), keeping their order, then seals the
    /// usage rollup past the month's end, as the rollup service would over time.
    static func moveIntoLastMonth(_ api: TenancyHarness) async throws {
        try await api.pool.withTransaction { connection in
            try await connection.query("SET LOCAL session_replication_role = replica")
            try await connection.query(
                """
                UPDATE ledger_transfer SET created_at = (date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
                    - interval '15 days' + seq * interval '1 second'
                """)
            try await connection.query(
                """
                UPDATE message SET accepted_at = (date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
                    - interval '16 days'
                """)
        }
        // Sealing waits for every write transaction of the cluster that was running at a candidate time (other
        // suites run beside this one), so keep calling for a while, as the rollup service would.
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            _ = try await api.pool.query("SELECT usage_seal()")
            let sealed = try await api.pool.query(
                """
                SELECT coalesce(sealed_until >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', false)
                FROM usage_rollup_state
                """
            ).first(as: Bool.self)
            if sealed == true { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the rollup did not seal last month")
    }

    /// The text of a PDF as `pdftotext -layout` reads it (poppler-utils, which scripts/test.sh installs).
    static func pdfText(_ bytes: Data) throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("invoice-\(UUID().uuidString).pdf")
        try bytes.write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/pdftotext")
        process.arguments = ["-layout", "-enc", "UTF-8", file.path, "-"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "pdftotext failed (poppler-utils installed?)")
        return String(decoding: data, as: UTF8.self)
    }

    static func issuerProfile(_ name: String, prefix: String, creditNotePrefix: String) -> [String: Any] {
        [
            "legalName": name, "address": ["Keizersgracht 1", "1015 CJ Amsterdam"], "countryCode": "NL",
            "vatNumber": "NL000099998B57", "invoicePrefix": prefix, "creditNotePrefix": creditNotePrefix,
            "paymentTermsDays": 14, "currency": "EUR", "timeZone": "UTC",
        ]
    }

    @Test func aResellerInvoicesItsCustomersMonthlyAndCorrectsWithCreditNotes() async throws {
        try await TenancyHarness.run(configure: {
            DeliveryReportTests.dispatching(&$0)
            $0.ledgerMaintenance = false
        }) { api in
            // A (postpaid) sends four messages: three delivered, one not (refunded).
            let sent = try await DeliveryReportTests.sent(
                api, "Invoicer", recipients: (0..<4).map { "3161000000\($0)" })
            for (index, message) in sent.messages.enumerated() {
                let reply = try await DeliveryReportTests.report(
                    api, sent.callbackPath, smsID: message.upstreamID,
                    status: index == 3 ? "NOT DELIVERED" : "DELIVERED", reference: message.id)
                #expect(reply.status == .ok)
            }
            let tenant = sent.tenant
            let reseller = tenant.resellerKey
            // B (prepaid) buys 100 credits for 12.10 EUR, VAT included.
            let b = try await api.call(
                .post, "/sub-accounts", key: reseller,
                body: [
                    "name": "Bäckerei Ωmega", "username": "bakery-\(UUID().uuidString.prefix(6))",
                    "password": "sup3r secret",
                ])
            try #require(b.status == .created, "\(b.json)")
            let bID = try #require(b.string("id"))
            let transfer = try await api.call(
                .post, "/sub-accounts/\(bID)/credit-transfers", key: reseller,
                body: ["amount": "100", "direction": "to_sub_account", "amountPaid": "12.10", "currency": "EUR"],
                headers: [Self.idempotency: "b-1"])
            try #require(transfer.status == .created, "\(transfer.json)")
            let oneSided = try await api.call(
                .post, "/sub-accounts/\(bID)/credit-transfers", key: reseller,
                body: ["amount": "1", "direction": "to_sub_account", "amountPaid": "1.00"],
                headers: [Self.idempotency: "b-2"])
            #expect(oneSided.status == .unprocessableContent && oneSided.string("code") == "validation_failed")

            // Profiles.
            #expect(try await api.call(.get, "/invoicing/issuer-profile", key: reseller).status == .notFound)
            let noProfile = try await api.call(
                .post, "/invoice-runs", key: reseller, body: ["month": Self.lastMonth])
            #expect(noProfile.status == .conflict && noProfile.string("code") == "issuer_profile_missing")
            let issuer = try await api.call(
                .put, "/invoicing/issuer-profile", key: reseller,
                body: Self.issuerProfile("Acme Messaging B.V.", prefix: "ACME", creditNotePrefix: "ACMECN"))
            #expect(issuer.status == .ok, "\(issuer.json)")
            let badIssuer = try await api.call(
                .put, "/invoicing/issuer-profile", key: reseller,
                body: Self.issuerProfile("X", prefix: "AC-ME", creditNotePrefix: "AC-ME").merging(
                    ["timeZone": "Mars/Olympus"], uniquingKeysWith: { $1 }))
            #expect(badIssuer.status == .unprocessableContent)
            let fields = (badIssuer["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }
            #expect(Set(fields).isSuperset(of: ["/invoicePrefix", "/creditNotePrefix", "/timeZone"]), "\(fields)")
            #expect(
                try await api.call(
                    .put, "/invoicing/issuer-profile", key: tenant.subAccountKey,
                    body: Self.issuerProfile("Sub", prefix: "S", creditNotePrefix: "SC")
                ).status
                    == .forbidden)
            let a = try await api.call(
                .put, "/sub-accounts/\(tenant.subAccountID)/billing-profile", key: reseller,
                body: [
                    "legalName": "Ærøskøbing Müller & Søn ApS", "address": ["Vestergade 1", "5970 Ærøskøbing"],
                    "countryCode": "DK", "vatRegime": "standard", "vatRate": "21", "billingMode": "postpaid",
                    "creditPrice": "2",
                ])
            #expect(a.status == .ok && a.string("creditPrice") == "2.00000000" && a.string("vatRate") == "21.00")
            let reverseWithoutVAT = try await api.call(
                .put, "/sub-accounts/\(bID)/billing-profile", key: reseller,
                body: [
                    "legalName": "Bäckerei Ωmega GmbH", "address": ["Hauptstraße 5"], "countryCode": "DE",
                    "vatRegime": "reverse_charge", "billingMode": "prepaid", "creditPrice": "0.1",
                ])
            #expect(reverseWithoutVAT.status == .unprocessableContent)
            let bProfile = try await api.call(
                .put, "/sub-accounts/\(bID)/billing-profile", key: reseller,
                body: [
                    "legalName": "Bäckerei Ωmega GmbH", "address": ["Hauptstraße 5", "10115 Berlin"],
                    "countryCode": "DE", "vatRegime": "standard", "vatRate": "21", "billingMode": "prepaid",
                    "creditPrice": "0.1",
                ])
            #expect(bProfile.status == .ok, "\(bProfile.json)")
            // The sub-account reads its own profile; it cannot change it.
            #expect(
                try await api.call(
                    .get, "/sub-accounts/\(tenant.subAccountID)/billing-profile", key: tenant.subAccountKey
                )
                .string("legalName") == "Ærøskøbing Müller & Søn ApS")
            #expect(
                try await api.call(
                    .put, "/sub-accounts/\(tenant.subAccountID)/billing-profile", key: tenant.subAccountKey,
                    body: [
                        "legalName": "x", "address": ["y"], "countryCode": "NL", "vatRegime": "exempt",
                        "billingMode": "prepaid", "creditPrice": "1",
                    ]
                ).status == .forbidden)

            // Before the month is over and sealed, usage is not invoiced.
            try await Self.moveIntoLastMonth(api)

            // Preview writes nothing.
            let preview = try await api.call(
                .post, "/invoice-runs", key: reseller, body: ["month": Self.lastMonth, "mode": "preview"])
            try #require(preview.status == .ok, "\(preview.json)")
            let previewed = try preview.decode(Components.Schemas.InvoiceRunResult.self)
            #expect(previewed.documents.count == 2 && previewed.documents.allSatisfy { $0.number == nil })
            #expect(try await api.pool.query("SELECT count(*) FROM invoice").first(as: Int.self) == 0)

            // The run issues A's usage invoice and B's purchase invoice, numbered in that order.
            let run = try await api.call(.post, "/invoice-runs", key: reseller, body: ["month": Self.lastMonth])
            try #require(run.status == .ok, "\(run.json)")
            let result = try run.decode(Components.Schemas.InvoiceRunResult.self)
            try #require(result.documents.count == 2, "\(run.json)")
            let usage = result.documents[0]
            let purchase = result.documents[1]
            #expect(usage.number == "ACME-\(Self.thisYear)-000001" && purchase.number == "ACME-\(Self.thisYear)-000002")
            #expect(usage.source == .usage && purchase.source == .purchase)

            // Usage: 3 parts at 0.0725 credit, 2 EUR per credit: 0.2175 credits → 0.435 EUR → 0.44 (half-even).
            #expect(usage.lines.count == 1)
            let line = try #require(usage.lines.first)
            #expect(line.quantity == "3" && line.unit == .part && line.unitPrice == "0.145" && line.net == "0.44")
            #expect(line.description.contains("Netherlands (+31)") && line.description.contains("GSM 7-bit"))
            #expect(usage.vatSummary.map(\.vat) == ["0.09"] && usage.netTotal == "0.44" && usage.total == "0.53")
            #expect(usage.covers.credits == "0.2175" && usage.covers.leg == .retail)
            #expect(
                usage.customer.legalName == "Ærøskøbing Müller & Søn ApS"
                    && usage.issuer.legalName == "Acme Messaging B.V.")
            #expect(usage.paymentTerms == "Payment within 14 days" && usage.dueDate != nil)
            // The covered credits are exactly the retail charges the ledger posted to A in the month.
            let charged = try await FinanceTests.sum(
                api,
                """
                SELECT sum(amount) FROM usage_money_fact WHERE sub_account_id = \(UUID(uuidString: tenant.subAccountID)!)
                  AND leg = 'retail' AND class = 'charged'
                """)
            #expect(charged == 2_175)
            // …and the invoice lists exactly those transfers.
            let covered = try await api.call(.get, "/invoices/\(usage.id)/transfers", key: tenant.subAccountKey)
            #expect(covered.items.count == 3)
            #expect(covered.items.map { FinanceTests.credits($0["amount"] as? String) }.reduce(0, +) == 2_175)
            let purchaseTransfer = try await api.call(.get, "/invoices/\(purchase.id)/transfers", key: reseller)
            #expect(purchaseTransfer.items.map { $0["amount"] as? String } == ["100.0000"])
            #expect(purchaseTransfer.items.first?["code"] as? String == "credit_transfer")

            // Purchase: 12.10 paid, VAT included: 10.00 + 2.10.
            #expect(purchase.lines.first?.quantity == "100.0000" && purchase.netTotal == "10.00")
            #expect(purchase.vatTotal == "2.10" && purchase.total == "12.10")
            #expect(purchase.customerSubAccountId == bID)

            // Running again issues nothing new.
            let again = try await api.call(.post, "/invoice-runs", key: reseller, body: ["month": Self.lastMonth])
            let second = try again.decode(Components.Schemas.InvoiceRunResult.self)
            #expect(second.documents.isEmpty)
            #expect(second.skipped.filter { $0.reason == .alreadyInvoiced }.count == 1)
            #expect(try await api.pool.query("SELECT count(*) FROM invoice").first(as: Int.self) == 2)

            // An issued invoice never changes, not even by SQL.
            for statement: PostgresQuery in [
                "UPDATE invoice SET total = 0, net_total = 0, vat_total = 0 WHERE number IS NOT NULL",
                "DELETE FROM invoice_line", "UPDATE invoice_vat SET vat = 0", "DELETE FROM invoice",
                "TRUNCATE invoice CASCADE",
            ] {
                await #expect(throws: PostgresError.self) { try await api.pool.query(statement) }
            }

            // Scopes: A sees its invoice, not B's; another reseller sees nothing; a sub-account cannot correct.
            let aList = try await api.call(.get, "/invoices", key: tenant.subAccountKey)
            #expect(aList.items.compactMap { $0["id"] as? String } == [usage.id])
            let other = try await api.onboard("Stranger")
            #expect(try await api.call(.get, "/invoices", key: other.resellerKey).items.isEmpty)
            #expect(try await api.call(.get, "/invoices/\(usage.id)", key: other.resellerKey).status == .notFound)
            #expect(try await api.call(.get, "/invoices", key: api.adminKey).items.isEmpty)
            let byCustomer = try await api.call(
                .post, "/invoices/\(usage.id)/credit-notes", key: tenant.subAccountKey, body: ["reason": "mine"],
                headers: [Self.idempotency: "cn-x"])
            #expect(byCustomer.status == .forbidden)

            // Downloads: CSV by extension and by Accept.
            let csv = try await api.call(.get, "/invoices/\(usage.id).csv", key: tenant.subAccountKey)
            #expect(csv.status == .ok && csv.headers[.contentType]?.hasPrefix("text/csv") == true)
            #expect(csv.headers[.contentDisposition]?.contains("ACME-\(Self.thisYear)-000001.csv") == true)
            let rows = String(decoding: csv.body, as: UTF8.self).components(separatedBy: "\r\n")
            #expect(rows.first == InvoiceCSV.columns.joined(separator: ","))
            #expect(rows.contains { $0.hasPrefix("line,ACME-") && $0.hasSuffix(",0.44,,") })
            #expect(rows.contains { $0.hasPrefix("total,") && $0.hasSuffix(",0.44,0.09,0.53") })
            let byAccept = try await api.call(
                .get, "/invoices/\(usage.id)", key: reseller, headers: [.accept: "text/csv"])
            #expect(byAccept.status == .ok && byAccept.body == csv.body)
            let unacceptable = try await api.call(
                .get, "/invoices/\(usage.id)", key: reseller, headers: [.accept: "image/png"])
            #expect(unacceptable.status == .notAcceptable)

            // The PDF shows what the JSON shows: every figure and name, read back with pdftotext.
            for (document, key) in [(usage, tenant.subAccountKey), (purchase, reseller)] {
                let pdf = try await api.call(.get, "/invoices/\(document.id).pdf", key: key)
                #expect(pdf.status == .ok && pdf.headers[.contentType] == "application/pdf")
                #expect(pdf.headers[.contentDisposition]?.contains("\(document.number ?? "?").pdf") == true)
                let text = try Self.pdfText(pdf.body)
                var figures = [
                    document.number ?? "?", document.issueDate ?? "?", document.dueDate ?? "?", document.periodStart,
                    document.currency, document.netTotal, document.vatTotal, document.total, document.issuer.legalName,
                    document.customer.legalName,
                ]
                figures += document.lines.flatMap { [$0.quantity, $0.unitPrice, $0.net, $0.vatRate] }
                figures += document.vatSummary.flatMap { [$0.base, $0.vat] }
                for figure in figures {
                    #expect(text.contains(figure), "\(figure) is not in the PDF of \(document.id)")
                }
            }
            let byAcceptPDF = try await api.call(
                .get, "/invoices/\(usage.id)", key: reseller, headers: [.accept: "application/pdf"])
            #expect(byAcceptPDF.status == .ok && byAcceptPDF.body.starts(with: Data("%PDF-".utf8)))

            // Credit notes: one part first, then the rest; a third finds nothing left.
            let partial = try await api.call(
                .post, "/invoices/\(usage.id)/credit-notes", key: reseller,
                body: ["reason": "One message was a test", "lines": [["position": 1, "quantity": "1"]]],
                headers: [Self.idempotency: "cn-1"])
            try #require(partial.status == .created, "\(partial.json)")
            let note1 = try partial.decode(Components.Schemas.Invoice.self)
            #expect(note1.kind == .creditNote && note1.number == "ACMECN-\(Self.thisYear)-000001")
            // A third of 0.44 is 0.1466…: -0.15; its VAT -0.0315 → -0.03.
            #expect(note1.lines.first?.quantity == "-1" && note1.netTotal == "-0.15" && note1.vatTotal == "-0.03")
            #expect(note1.corrects?.number == usage.number && note1.corrects?.reason == "One message was a test")
            let replay = try await api.call(
                .post, "/invoices/\(usage.id)/credit-notes", key: reseller,
                body: ["reason": "One message was a test", "lines": [["position": 1, "quantity": "1"]]],
                headers: [Self.idempotency: "cn-1"])
            #expect(replay.status == .created && replay.string("id") == note1.id)
            let tooMuch = try await api.call(
                .post, "/invoices/\(usage.id)/credit-notes", key: reseller,
                body: ["reason": "more", "lines": [["position": 1, "quantity": "3"]]],
                headers: [Self.idempotency: "cn-2"])
            #expect(tooMuch.status == .conflict && tooMuch.string("code") == "credit_exceeds_invoice")
            let rest = try await api.call(
                .post, "/invoices/\(usage.id)/credit-notes", key: reseller, body: ["reason": "Goodwill"],
                headers: [Self.idempotency: "cn-3"])
            try #require(rest.status == .created, "\(rest.json)")
            let note2 = try rest.decode(Components.Schemas.Invoice.self)
            #expect(note2.number == "ACMECN-\(Self.thisYear)-000002" && note2.lines.first?.quantity == "-2")
            // Together the two notes give back exactly the invoice's net; nothing is left to credit.
            #expect(note2.netTotal == "-0.29" && note2.vatTotal == "-0.06")
            let nothingLeft = try await api.call(
                .post, "/invoices/\(usage.id)/credit-notes", key: reseller, body: ["reason": "again"],
                headers: [Self.idempotency: "cn-4"])
            #expect(nothingLeft.status == .conflict && nothingLeft.string("code") == "credit_exceeds_invoice")
            // The customer sees its credit notes.
            let aDocuments = try await api.call(.get, "/invoices?kind=credit_note", key: tenant.subAccountKey)
            #expect(aDocuments.items.count == 2)
        }
    }

    @Test func thePlatformInvoicesResellersWithReverseChargeAndDraftsCanBeVoided() async throws {
        try await TenancyHarness.run(configure: {
            DeliveryReportTests.dispatching(&$0)
            $0.ledgerMaintenance = false
        }) { api in
            let sent = try await DeliveryReportTests.sent(
                api, "Wholesaler", recipients: ["31610000001", "31610000002"])
            for message in sent.messages {
                _ = try await DeliveryReportTests.report(
                    api, sent.callbackPath, smsID: message.upstreamID, status: "DELIVERED", reference: message.id)
            }
            let tenant = sent.tenant
            // A top-up through the API, paid 50.00 EUR (reverse charge: no VAT, net = paid).
            let topUp = try await api.call(
                .post, "/resellers/\(tenant.resellerID)/top-ups", key: api.adminKey,
                body: ["amount": "500", "paymentReference": "bank 42", "amountPaid": "50", "currency": "EUR"],
                headers: [Self.idempotency: "t-1"])
            try #require(topUp.status == .created, "\(topUp.json)")
            // The payments export carries what was paid.
            let payments = try await api.call(
                .get, "/exports/payments?from=2020-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&format=jsonl",
                key: api.adminKey)
            let paid = String(decoding: payments.body, as: UTF8.self).split(separator: "\n").filter {
                $0.contains("\"bank 42\"")
            }
            #expect(paid.count == 1 && paid[0].contains("\"amount_paid\":\"50.0000\",\"currency\":\"EUR\""), "\(paid)")
            #expect(
                try await api.call(
                    .put, "/invoicing/issuer-profile", key: api.adminKey,
                    body: Self.issuerProfile("SMS Platform Ltd", prefix: "PLT", creditNotePrefix: "PLTCN")
                ).status == .ok)
            let profile = try await api.call(
                .put, "/resellers/\(tenant.resellerID)/billing-profile", key: api.adminKey,
                body: [
                    "legalName": "Wholesaler SARL", "address": ["1 rue de la Paix", "75002 Paris"], "countryCode": "FR",
                    "vatNumber": "FR40303265045", "vatRegime": "reverse_charge", "billingMode": "postpaid",
                    "creditPrice": "1",
                ])
            #expect(profile.status == .ok, "\(profile.json)")
            #expect(
                try await api.call(
                    .put, "/resellers/\(tenant.resellerID)/billing-profile", key: tenant.resellerKey,
                    body: [
                        "legalName": "x", "address": ["y"], "countryCode": "NL", "vatRegime": "exempt",
                        "billingMode": "prepaid", "creditPrice": "1",
                    ]
                ).status == .forbidden)
            try await Self.moveIntoLastMonth(api)

            // Drafts first: no number; voided, it never gets one, and the next run writes it again.
            let drafts = try await api.call(
                .post, "/invoice-runs", key: api.adminKey, body: ["month": Self.lastMonth, "mode": "draft"])
            let draft = try #require(try drafts.decode(Components.Schemas.InvoiceRunResult.self).documents.first)
            #expect(draft.status == .draft && draft.number == nil)
            // The reseller does not see the platform's drafts.
            #expect(try await api.call(.get, "/invoices/\(draft.id)", key: tenant.resellerKey).status == .notFound)
            let voided = try await api.call(.post, "/invoices/\(draft.id)/void", key: api.adminKey)
            #expect(voided.status == .ok && voided.string("status") == "voided")
            #expect(try await api.call(.post, "/invoices/\(draft.id)/issue", key: api.adminKey).status == .conflict)
            // Two runs at once write one draft between them; the other reports it as already invoiced.
            async let runA = api.call(
                .post, "/invoice-runs", key: api.adminKey, body: ["month": Self.lastMonth, "mode": "draft"])
            async let runB = api.call(
                .post, "/invoice-runs", key: api.adminKey, body: ["month": Self.lastMonth, "mode": "draft"])
            let concurrent = try await [runA, runB].map { try $0.decode(Components.Schemas.InvoiceRunResult.self) }
            #expect(concurrent.map(\.documents.count).sorted() == [0, 1], "\(concurrent)")
            #expect(concurrent.flatMap(\.skipped).filter { $0.reason == .alreadyInvoiced }.count == 1)
            #expect(
                try await api.pool.query("SELECT count(*) FROM invoice WHERE status = 'draft'").first(as: Int.self) == 1
            )
            let draft2 = try #require(concurrent.flatMap(\.documents).first)
            let issued = try await api.call(.post, "/invoices/\(draft2.id)/issue", key: api.adminKey)
            try #require(issued.status == .ok, "\(issued.json)")
            let invoice = try issued.decode(Components.Schemas.Invoice.self)
            // The first number: the voided draft took none.
            #expect(invoice.number == "PLT-\(Self.thisYear)-000001")
            // Wholesale: 2 × 0.0500 credits at 1 EUR = 0.10, reverse charged.
            #expect(invoice.netTotal == "0.10" && invoice.vatTotal == "0.00" && invoice.total == "0.10")
            #expect(invoice.vatSummary.first?.vatCategory == .reverseCharge)
            #expect(invoice.notes.contains { $0.contains("Reverse charge") })
            #expect(invoice.covers.leg == .wholesale && invoice.customer.vatNumber == "FR40303265045")
            // The reseller receives it, and the platform's run issues nothing more.
            let received = try await api.call(.get, "/invoices?direction=received", key: tenant.resellerKey)
            #expect(received.items.compactMap { $0["id"] as? String } == [invoice.id])
            let rerun = try await api.call(.post, "/invoice-runs", key: api.adminKey, body: ["month": Self.lastMonth])
            #expect(try rerun.decode(Components.Schemas.InvoiceRunResult.self).documents.isEmpty)
            // The currency cannot change once documents exist in it.
            let euroToDollar = try await api.call(
                .put, "/invoicing/issuer-profile", key: api.adminKey,
                body: Self.issuerProfile("SMS Platform Ltd", prefix: "PLT", creditNotePrefix: "PLTCN").merging(
                    ["currency": "USD"], uniquingKeysWith: { $1 }))
            #expect(euroToDollar.status == .conflict && euroToDollar.string("code") == "currency_in_use")
        }
    }

    /// Numbers are taken in the issuing transaction: concurrent issuers whose transactions sometimes roll back after
    /// taking a number leave no gap and no duplicate.
    @Test func numbersHaveNoGapsUnderConcurrencyAndRollbacks() async throws {
        try await TestDatabase.withFreshDatabase { database in
            try await TestDatabase.withPool(database, maximumConnections: 8) { pool in
                try await Migrator(
                    pool: pool, migrations: try BundledMigrations.load(), logger: LedgerInvariantTests.quiet
                )
                .migrate()
                let resellerID = try #require(
                    try await pool.query("INSERT INTO reseller (name) VALUES ('Numbers') RETURNING id").first(
                        as: UUID.self))
                let subAccountID = try #require(
                    try await pool.query(
                        """
                        INSERT INTO sub_account (reseller_id, name, username, password_salt, password_iterations, password_hash)
                        VALUES (\(resellerID), 'N', \("numbers-\(UUID().uuidString.prefix(6))"), '\\x00', 1, '\\x00') RETURNING id
                        """
                    ).first(as: UUID.self))
                let party = InvoiceDocument.Party(legalName: "N", address: ["x"], countryCode: "NL")
                let issuer = IssuerProfile(
                    resellerID: resellerID, party: party, invoicePrefix: "N", creditNotePrefix: "NC",
                    paymentTermsDays: 0,
                    currency: "EUR", timeZone: "UTC")
                let actor = AuditActor.cli
                _ = try await pool.withTransaction { try await BillingProfiles.putIssuer(issuer, by: actor, on: $0) }
                let count = 40
                var ids: [UUID] = []
                for index in 0..<count {
                    let draft = InvoiceDraft(
                        kind: .invoice, source: .usage, issuer: issuer, customerResellerID: resellerID,
                        customerSubAccountID: subAccountID, customer: party,
                        periodStart: "2020-01-\(String(format: "%02d", index % 28 + 1))", periodEnd: "2020-01-28",
                        coveredFrom: Date(timeIntervalSince1970: Double(index)), coveredTo: Date(), leg: "retail",
                        purchaseTransferID: nil, credits: 0, currencyDigits: 2, lines: [], vat: [], netTotal: 0,
                        vatTotal: 0, notes: [], correctsInvoiceID: nil, correctionReason: nil)
                    var unique = draft
                    unique.periodStart = "\(2000 + index)-01-01"
                    unique.periodEnd = "\(2000 + index)-01-31"
                    ids.append(
                        try await pool.withTransaction {
                            try await InvoiceRepository.writeDraft(unique, by: actor, on: $0)
                        })
                }
                struct RolledBack: Error {}
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<6 {
                        let mine = ids.enumerated().filter { $0.offset % 6 == worker }.map(\.element)
                        group.addTask {
                            var random = SystemRandomNumberGenerator()
                            for id in mine {
                                var done = false
                                while !done {
                                    do {
                                        try await pool.withTransaction { connection in
                                            try await InvoiceRepository.issue(id: id, by: actor, on: connection)
                                            if Int.random(in: 0..<3, using: &random) == 0 { throw RolledBack() }
                                        }
                                        done = true
                                    } catch is RolledBack {}
                                }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                let numbers = try await pool.query(
                    "SELECT number FROM invoice WHERE status = 'issued' ORDER BY number"
                ).decode(String.self)
                let year = Self.thisYear
                #expect(numbers == (1...count).map { String(format: "N-\(year)-%06d", $0) })
            }
        }
    }
}
