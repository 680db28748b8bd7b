import CompatibleGateway
import Foundation
import HTTPTypes
import Ledger
import Messaging
import PostgresLibpq
import ResellerAPI
import ResellerApp
import SMSCore
import Testing

@Suite(.timeLimit(.minutes(3))) struct SendPreviewTests {
    static let upstream = [TestEntry("31", "0.0100"), TestEntry("44", "0.0100")]
    static let wholesale = [TestEntry("31", "0.0500"), TestEntry("44", "0.0200"), TestEntry("4479", "0.0300")]
    static let retail = [TestEntry("31", "0.0725"), TestEntry("44", "0.0400"), TestEntry("4479", "0.0550")]

    static func preview(
        _ api: TenancyHarness, _ tenant: TenancyHarness.Tenant, key: String? = nil, _ body: [String: Any]
    ) async throws -> Reply {
        try await api.call(
            .post, "/sub-accounts/\(tenant.subAccountID)/send-preview", key: key ?? tenant.subAccountKey, body: body)
    }

    static func codes(_ reply: Reply) -> [Int] {
        (reply["errors"] as? [[String: Any]] ?? []).compactMap { $0["gatewayCode"] as? Int }
    }

    @Test func pricesEveryRecipientAndTotalsWithoutSideEffects() async throws {
        try await TenancyHarness.run { api in
            let priced = try await api.pricedTenant(
                "Preview", upstream: Self.upstream, wholesale: Self.wholesale, retail: Self.retail)
            let tenant = priced.tenant
            try await api.approvedSender("Jansen", for: tenant)
            try await api.fundWallet(tenant.subAccountID, credits: "1")
            let audit = try await api.auditCount()
            let ledger = try await api.pool.query("SELECT count(*) FROM ledger_transfer").first(as: Int.self)
            let wallet = WalletBalance(
                try await LedgerRepository(pool: api.pool).wallet(subAccountID: UUID(uuidString: tenant.subAccountID)!))

            let text = String(repeating: "A", count: 200)  // GSM-7, 2 parts of at most 153
            let reply = try await Self.preview(
                api, tenant,
                [
                    "sender": "Jansen", "text": text, "long": true,
                    "recipients": ["+31 6 1234 5678", "447911123456", "0044 20 7123 4567", "abc", "", "2812345678"],
                ])
            #expect(reply.status == .ok, "\(reply.json)")
            let preview = try reply.decode(Components.Schemas.SendPreview.self)
            #expect(preview.accepted && preview.gatewayCode == nil && preview.errors.isEmpty)
            #expect(
                preview.sender == "Jansen" && preview.encoding == .gsm7 && preview.parts == 2 && preview.length == 200)
            let recipients = preview.recipients
            #expect(
                recipients.map(\.number) == ["31612345678", "447911123456", "442071234567", nil, nil, "2812345678"])
            #expect(recipients.map(\.pricePerPart) == ["0.0725", "0.0550", "0.0400", nil, nil, nil])
            #expect(recipients.map(\.price) == ["0.1450", "0.1100", "0.0800", nil, nil, nil])
            #expect(recipients.map(\.gatewayCode) == [nil, nil, nil, 106, 103, 112])
            #expect(recipients.map(\.index) == [0, 1, 2, 3, 4, 5])
            #expect(recipients[3].input == "abc" && recipients[3].error == GatewayErrorCode.invalidMobileNumber.meaning)
            #expect(recipients.allSatisfy { $0.parts == 2 && $0.encoding == .gsm7 })
            let netherlands = try #require(recipients[0].country)
            #expect(
                netherlands.callingCode == "31" && netherlands.regions == ["NL"] && netherlands.name == "Netherlands")
            let totals = preview.totals
            #expect(totals.recipients == 6 && totals.messages == 3 && totals.refused == 3)
            #expect(totals.parts == 6 && totals.retailTotal == "0.3350")
            let balance = preview.balance
            #expect(balance.available == "1.0000" && balance.availableAfter == "0.6650")
            #expect(balance.creditLimit == "0.0000" && balance.spendable == "1.0000")
            #expect(balance.sufficient && balance.gatewayCode == nil)
            #expect(
                preview.pricing.retailPriceListId == priced.retailListID
                    && preview.pricing.retailVersionId == priced.retailVersionID)
            // The sub-account never sees what its reseller pays.
            #expect(
                !String(describing: reply.json).contains("0.0500")
                    && !String(describing: reply.json).contains(priced.wholesaleListID))

            // Nothing was written, reserved or moved.
            #expect(try await api.auditCount() == audit)
            #expect(try await api.pool.query("SELECT count(*) FROM ledger_transfer").first(as: Int.self) == ledger)
            let after = WalletBalance(
                try await LedgerRepository(pool: api.pool).wallet(subAccountID: UUID(uuidString: tenant.subAccountID)!))
            #expect(after == wallet)

            // UCS-2: 70 per single part, 67 per part when concatenated.
            let cyrillic = try await Self.preview(
                api, tenant,
                [
                    "sender": "Jansen", "text": String(repeating: "Я", count: 71), "long": true,
                    "recipients": ["31612345678"],
                ])
            #expect(cyrillic.string("encoding") == "ucs2" && cyrillic["parts"] as? Int == 2)
            #expect((cyrillic["totals"] as? [String: Any])?["retailTotal"] as? String == "0.1450")
        }
    }

    @Test func flags108WhenTheRetailTotalExceedsWhatTheSubAccountCanSpend() async throws {
        try await TenancyHarness.run { api in
            let priced = try await api.pricedTenant(
                "Credit", upstream: Self.upstream, wholesale: Self.wholesale, retail: Self.retail)
            let tenant = priced.tenant
            try await api.approvedSender("Jansen", for: tenant)
            let body: [String: Any] = ["sender": "Jansen", "text": "Hi", "recipients": ["31612345678", "31612345679"]]
            let empty = try await Self.preview(api, tenant, body)
            #expect(
                empty["accepted"] as? Bool == false && empty["gatewayCode"] as? Int == 108 && Self.codes(empty) == [108]
            )
            var balance = try #require(empty["balance"] as? [String: Any])
            #expect(balance["sufficient"] as? Bool == false && balance["gatewayCode"] as? Int == 108)
            #expect(balance["available"] as? String == "0.0000" && balance["availableAfter"] as? String == "-0.1450")

            try await api.fundWallet(tenant.subAccountID, credits: "0.1449")
            #expect(try await Self.preview(api, tenant, body)["gatewayCode"] as? Int == 108)
            try await api.fundWallet(tenant.subAccountID, credits: "0.0001")
            let exact = try await Self.preview(api, tenant, body)
            #expect(exact["accepted"] as? Bool == true)
            #expect((exact["balance"] as? [String: Any])?["availableAfter"] as? String == "0.0000")

            // A postpaid wallet may go below zero down to its credit limit.
            let three: [String: Any] = [
                "sender": "Jansen", "text": "Hi", "recipients": ["31612345678", "31612345679", "31612345670"],
            ]
            #expect(try await Self.preview(api, tenant, three)["gatewayCode"] as? Int == 108)
            try await api.fundWallet(tenant.subAccountID, credits: "0", creditLimit: "0.1000")
            let postpaid = try await Self.preview(api, tenant, three)
            #expect(postpaid["accepted"] as? Bool == true, "\(postpaid.json)")
            balance = try #require(postpaid["balance"] as? [String: Any])
            #expect(balance["spendable"] as? String == "0.2450" && balance["availableAfter"] as? String == "-0.0725")
            #expect(balance["creditLimit"] as? String == "0.1000" && balance["sufficient"] as? Bool == true)
        }
    }

    @Test func flags108WhenTheResellersWalletCannotCoverTheWholesaleLeg() async throws {
        try await TenancyHarness.run { api in
            let priced = try await api.pricedTenant(
                "Upstream", upstream: Self.upstream, wholesale: Self.wholesale, retail: Self.retail)
            let tenant = priced.tenant
            try await api.approvedSender("Jansen", for: tenant)
            try await api.fundWallet(tenant.subAccountID, credits: "10", fundReseller: false)
            let body: [String: Any] = ["sender": "Jansen", "text": "Hi", "recipients": ["31612345678"]]
            let refused = try await Self.preview(api, tenant, body)
            #expect(refused["accepted"] as? Bool == false && refused["gatewayCode"] as? Int == 108, "\(refused.json)")
            #expect(
                (refused["balance"] as? [String: Any])?["sufficient"] as? Bool == true,
                "the sub-account's own wallet is fine")
            let top = try await api.call(
                .post, "/resellers/\(tenant.resellerID)/top-ups", key: api.adminKey,
                body: ["amount": "1", "paymentReference": "p"],
                headers: LedgerAPITests.key())
            #expect(top.status == .created)
            #expect(try await Self.preview(api, tenant, body)["accepted"] as? Bool == true)
        }
    }

    @Test func lengthChecksFollowTheResellersUpstreamConnection() async throws {
        try await TenancyHarness.run { api in
            let priced = try await api.pricedTenant(
                "Narrow", upstream: Self.upstream, wholesale: Self.wholesale, retail: Self.retail)
            let tenant = priced.tenant
            try await api.approvedSender("Jansen", for: tenant)
            try await api.fundWallet(tenant.subAccountID, credits: "100")
            let threeParts: [String: Any] = [
                "sender": "Jansen", "text": String(repeating: "a", count: 400), "recipients": ["31612345678"],
                "long": true,
            ]
            #expect(
                Self.codes(try await Self.preview(api, tenant, threeParts)) == [], "3 parts pass the default connection"
            )
            // The reseller's own connection allows at most 2 parts.
            let created = try await api.call(
                .post, "/upstream-connections", key: api.adminKey,
                body: [
                    "name": "Narrow", "baseUrl": "http://127.0.0.1:9", "username": "u", "password": "p",
                    "segmentation": ["maximumParts": 2],
                ])
            try #require(created.status == .created, "\(created.json)")
            let connectionID = try #require(created.string("id"))
            let assigned = try await api.call(
                .put, "/resellers/\(tenant.resellerID)/upstream-connection", key: api.adminKey,
                body: ["connectionId": connectionID])
            try #require(assigned.status == .ok, "\(assigned.json)")
            let refused = try await Self.preview(api, tenant, threeParts)
            #expect(Self.codes(refused) == [118], "\(refused["errors"] ?? [])")
        }
    }

    @Test func requestLevelChecksComeInTheOrderARealSendMakesThem() async throws {
        try await TenancyHarness.run { api in
            let priced = try await api.pricedTenant(
                "Checks", upstream: Self.upstream, wholesale: Self.wholesale, retail: Self.retail)
            let tenant = priced.tenant
            try await api.approvedSender("Jansen", for: tenant)
            try await api.fundWallet(tenant.subAccountID, credits: "100")
            let ok: [String: Any] = ["sender": "Jansen", "text": "Hi", "recipients": ["31612345678"]]
            func check(_ changes: [String: Any?], _ expected: [Int], _ line: Int = #line) async throws {
                var body = ok
                for (key, value) in changes { body[key] = value }
                let reply = try await Self.preview(api, tenant, body.compactMapValues { $0 })
                #expect(reply.status == .ok, "line \(line): \(reply.json)")
                #expect(Self.codes(reply) == expected, "line \(line): \(reply["errors"] ?? [])")
                #expect(reply["gatewayCode"] as? Int == expected.first, "line \(line)")
                #expect(reply["accepted"] as? Bool == expected.isEmpty, "line \(line)")
            }
            try await check([:], [])
            try await check(["sender": nil], [109])  // no sender and no default sender
            try await check(["sender": ""], [109])
            try await check(["sender": "31612345678"], [110])
            try await check(["sender": "ThisNameIsTooLong"], [111])
            try await check(["sender": "Jan{sen}"], [113])
            try await check(["sender": "Bakery"], [117])  // valid but not approved for this account
            try await check(["text": ""], [102])
            try await check(["text": String(repeating: "a", count: 161)], [105])
            try await check(["text": String(repeating: "a", count: 161), "long": true], [])
            try await check(["text": String(repeating: "a", count: 460), "long": true], [118])
            try await check(["text": String(repeating: "€", count: 80)], [])  // 160 septets: one part
            try await check(["text": String(repeating: "€", count: 81)], [105])
            try await check(["recipients": []], [103])
            try await check(["scheduleAt": Date().addingTimeInterval(-60).formatted(.iso8601)], [121])
            try await check(["scheduleAt": Date().addingTimeInterval(3_600).formatted(.iso8601)], [])
            try await check(["sender": "Bakery", "text": ""], [117, 102])
            // Every recipient refused: no request-level error, but a real send answers with the first one's error.
            let refused = try await Self.preview(
                api, tenant, ["sender": "Jansen", "text": "Hi", "recipients": ["2812345678", "abc"]])
            #expect(
                refused["accepted"] as? Bool == false && refused["gatewayCode"] as? Int == 112
                    && Self.codes(refused).isEmpty)

            // The sub-account's default sender is used when none is given.
            let updated = try await api.call(
                .patch, "/sub-accounts/\(tenant.subAccountID)", key: tenant.resellerKey,
                body: ["defaultSender": "Jansen"])
            #expect(updated.status == .ok)
            try await check(["sender": nil], [])

            // The account comes first: blocked by its reseller (116), for payment (115), or through its reseller.
            let block = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/block", key: tenant.resellerKey,
                body: ["status": "blocked", "reason": "test"])
            #expect(block.status == .ok)
            try await check(["text": ""], [116, 102])
            _ = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/block", key: tenant.resellerKey,
                body: ["status": "blocked_payment", "reason": "unpaid"])
            try await check([:], [115])
            _ = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/unblock", key: tenant.resellerKey, body: [:])
            _ = try await api.call(
                .post, "/resellers/\(tenant.resellerID)/block", key: api.adminKey,
                body: ["status": "blocked", "reason": "test"])
            try await check([:], [116])
            _ = try await api.call(.post, "/resellers/\(tenant.resellerID)/unblock", key: api.adminKey, body: [:])
            try await check([:], [])

            // More than 10 000 recipients is not a send the API takes at all.
            let tooMany = try await Self.preview(
                api, tenant,
                ["sender": "Jansen", "text": "Hi", "recipients": Array(repeating: "31612345678", count: 10_001)])
            #expect(tooMany.status == .unprocessableContent && tooMany.fieldError("/recipients") != nil)
            let unknownField = try await Self.preview(
                api, tenant, ["sender": "Jansen", "text": "Hi", "recipients": ["31612345678"], "colour": "red"])
            #expect(unknownField.status == .badRequest)
            // A group is expanded as a send would: unknown is 125.
            let noGroup = try await Self.preview(api, tenant, ["sender": "Jansen", "text": "Hi", "group": "staff"])
            #expect(Self.codes(noGroup) == [125], "\(noGroup.json)")
        }
    }

    @Test func theSubAccountItsResellerAndTheAdminMayPreviewOthersGet404() async throws {
        try await TenancyHarness.run { api in
            let priced = try await api.pricedTenant(
                "Who", upstream: Self.upstream, wholesale: Self.wholesale, retail: Self.retail)
            let tenant = priced.tenant
            let body: [String: Any] = ["text": "Hi", "recipients": ["31612345678"]]
            for key in [tenant.subAccountKey, tenant.resellerKey, api.adminKey] {
                #expect(try await Self.preview(api, tenant, key: key, body).status == .ok)
            }
            let sibling = try await api.call(
                .post, "/sub-accounts", key: tenant.resellerKey,
                body: [
                    "name": "Sibling", "username": "sibling-\(UUID().uuidString.prefix(6))", "password": "password1",
                ])
            let siblingID = try #require(sibling.string("id"))
            let siblingKey = try #require(
                try await api.call(
                    .post, "/sub-accounts/\(siblingID)/api-keys", key: tenant.resellerKey, body: ["name": "k"]
                ).string("secret"))
            let denied = try await Self.preview(api, tenant, key: siblingKey, body)
            #expect(denied.status == .notFound && denied["recipients"] == nil)
            let other = try await api.onboard("Other")
            #expect(try await Self.preview(api, tenant, key: other.resellerKey, body).status == .notFound)
            #expect(
                try await api.call(
                    .post, "/sub-accounts/\(UUID().uuidString)/send-preview", key: api.adminKey, body: body
                ).status == .notFound)
            let anonymous = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/send-preview", key: nil, body: body)
            #expect(anonymous.status == .unauthorized)
        }
    }

    @Test func tenThousandRecipientsArePricedInOneRequest() async throws {
        try await TenancyHarness.run { api in
            let priced = try await api.pricedTenant(
                "Bulk", upstream: Self.upstream, wholesale: Self.wholesale, retail: Self.retail)
            let tenant = priced.tenant
            try await api.approvedSender("Jansen", for: tenant)
            try await api.fundWallet(tenant.subAccountID, credits: "1000")
            // 9 998 distinct Dutch and British numbers, one duplicate (two messages), one invalid.
            var recipients =
                (0..<4_999).map { "316\(String(format: "%08d", $0 * 7))" }
                + (0..<4_999).map { "4479\(String(format: "%08d", $0 * 3))" }
            recipients += [recipients[0], "12"]
            let started = ContinuousClock.now
            let reply = try await Self.preview(
                api, tenant, ["sender": "Jansen", "text": "Hi", "recipients": recipients])
            let elapsed = ContinuousClock.now - started
            #expect(reply.status == .ok)
            let totals = try #require(reply["totals"] as? [String: Any])
            #expect(
                totals["recipients"] as? Int == 10_000 && totals["messages"] as? Int == 9_999
                    && totals["refused"] as? Int == 1)
            // 5 000 × 0.0725 + 4 999 × 0.0550
            #expect(totals["retailTotal"] as? String == "637.4450")
            #expect(reply["accepted"] as? Bool == true)
            #expect(elapsed < .seconds(20), "10 000 recipients took \(elapsed)")
        }
    }
}
