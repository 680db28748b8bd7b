import CompatibleGateway
import Foundation
import HTTPTypes
import Ledger
import PostgresLibpq
import Pricing
import ResellerApp
import ResellerCore
import SMSCore
import Testing

/// `PriceResolver` through real lists: versions in force at an instant, the longest prefix, and the codes of numbers
/// that cannot be sent.
@Suite(.timeLimit(.minutes(3))) struct PriceResolutionTests {
    static let cheap = TariffTests.cheap

    @Test func aFutureVersionDoesNotChangeTodaysPriceAndAPriceKeepsItsVersions() async throws {
        try await TenancyHarness.run { api in
            let priced = try await api.pricedTenant(
                "Versions", upstream: [TestEntry("31", "0.0300")], wholesale: [TestEntry("31", "0.0500")],
                retail: [TestEntry("31", "0.0700")])
            let tenant = priced.tenant
            let resolver = PriceResolver(pool: api.pool)
            let subAccountID = try #require(UUID(uuidString: tenant.subAccountID))
            let number = try PhoneNumber(parsing: "31612345678")
            let acceptedAt = Date()
            let accepted = try #require(
                try await resolver.resolve(subAccountID: subAccountID, numbers: [number], at: acceptedAt))
            guard case .priced(let price) = accepted[number] else {
                throw Failure("not priced: \(String(describing: accepted[number]))")
            }
            #expect(
                price.retail.pricePerPart == Money(minorUnits: 700)
                    && price.retail.versionID.apiString == priced.retailVersionID)
            #expect(
                price.wholesale.pricePerPart == Money(minorUnits: 500)
                    && price.wholesale.versionID.apiString == priced.wholesaleVersionID)
            #expect(
                price.upstreamCost.pricePerPart == Money(minorUnits: 300)
                    && price.upstreamCost.versionID.apiString == priced.upstreamVersionID)
            #expect(price.retail.priceListID.apiString == priced.retailListID && price.retail.prefix == "31")
            #expect(accepted.retail?.versionID?.apiString == priced.retailVersionID)

            // Price rises next week in every layer.
            // A whole second, so the boundary sent, stored and queried is exactly the same instant.
            let nextWeek = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 7 * 86_400).rounded(.down))
            let retailV2 = try await api.version(
                priced.retailListID, key: tenant.resellerKey, [TestEntry("31", "0.0900")], effectiveFrom: nextWeek)
            let wholesaleV2 = try await api.version(
                priced.wholesaleListID, key: api.adminKey, [TestEntry("31", "0.0600")], effectiveFrom: nextWeek)

            // Today's price is unchanged, and the instant priced before still resolves to exactly what it did.
            let now = try #require(
                try await resolver.resolve(subAccountID: subAccountID, numbers: [number], at: Date()))
            #expect(now[number] == .priced(price))
            let replay = try #require(
                try await resolver.resolve(subAccountID: subAccountID, numbers: [number], at: acceptedAt))
            #expect(replay[number] == .priced(price))
            let later = try #require(
                try await resolver.resolve(
                    subAccountID: subAccountID, numbers: [number], at: nextWeek.addingTimeInterval(1)))
            guard case .priced(let laterPrice) = later[number] else { throw Failure("not priced later") }
            #expect(
                laterPrice.retail.pricePerPart == Money(minorUnits: 900)
                    && laterPrice.retail.versionID.apiString == retailV2)
            #expect(
                laterPrice.wholesale.versionID.apiString == wholesaleV2 && laterPrice.upstreamCost == price.upstreamCost
            )
            // Exactly at effectiveFrom the new version is in force.
            let atSwitch = try #require(
                try await resolver.resolve(subAccountID: subAccountID, numbers: [number], at: nextWeek))
            guard case .priced(let switchPrice) = atSwitch[number] else { throw Failure("not priced at the switch") }
            #expect(switchPrice.retail.versionID.apiString == retailV2)
            // A microsecond before it, the old one still is.
            let beforeSwitch = try #require(
                try await resolver.resolve(
                    subAccountID: subAccountID, numbers: [number], at: nextWeek.addingTimeInterval(-0.000_001)))
            #expect(beforeSwitch[number] == .priced(price))

            // The preview prices with today's version.
            let preview = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/send-preview", key: tenant.subAccountKey,
                body: ["text": "Hi", "recipients": ["+31 6 1234 5678"]])
            #expect((preview.json["recipients"] as? [[String: Any]])?.first?["pricePerPart"] as? String == "0.0700")
            #expect((preview["pricing"] as? [String: Any])?["retailVersionId"] as? String == priced.retailVersionID)

            // Versions list, latest first, with their state; the list shows what is in force and what is next.
            let versions = try await api.call(
                .get, "/price-lists/\(priced.retailListID)/versions", key: tenant.subAccountKey)
            #expect(versions.items.map { $0["id"] as? String } == [retailV2, priced.retailVersionID])
            #expect(versions.items.map { $0["state"] as? String } == ["scheduled", "in_force"])
            #expect(versions.items.first?["createdBy"] as? String == "key:\(tenant.resellerKeyID)")
            let list = try await api.call(.get, "/price-lists/\(priced.retailListID)", key: tenant.resellerKey)
            #expect(list.string("currentVersionId") == priced.retailVersionID && list["versionCount"] as? Int == 2)
            #expect(list.string("nextEffectiveFrom") != nil)
            let page = try await api.call(
                .get, "/price-lists/\(priced.retailListID)/versions?limit=1", key: tenant.resellerKey)
            let cursor = try #require(page.string("nextCursor"))
            let rest = try await api.call(
                .get, "/price-lists/\(priced.retailListID)/versions?limit=1&cursor=\(cursor)", key: tenant.resellerKey)
            #expect(rest.items.map { $0["id"] as? String } == [priced.retailVersionID] && rest["nextCursor"] == nil)
        }
    }

    @Test func theLongestPrefixPricesEachNumber() async throws {
        try await TenancyHarness.run { api in
            let priced = try await api.pricedTenant(
                "Prefixes", upstream: Self.cheap, wholesale: Self.cheap,
                retail: [
                    TestEntry("1", "0.0100"), TestEntry("1876", "0.0900"), TestEntry("7", "0.0200"),
                    TestEntry("76", "0.0300"),
                    TestEntry("77", "0.0400"), TestEntry("44", "0.0500"), TestEntry("4479", "0.0600"),
                ])
            let tenant = priced.tenant
            let cases: [(String, String, String, String, String)] = [
                // number, retail per part, calling code, matched retail prefix, matched wholesale prefix (1, 7, 31, 44 only)
                ("12025550123", "0.0100", "1", "1", "1"),
                ("18765550123", "0.0900", "1876", "1876", "1"),
                ("79161234567", "0.0200", "7", "7", "7"),
                ("76012345678", "0.0300", "76", "76", "7"),
                ("77012345678", "0.0400", "77", "77", "7"),
                ("442071234567", "0.0500", "44", "44", "44"),
                ("447911123456", "0.0600", "44", "4479", "44"),
            ]
            let preview = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/send-preview", key: tenant.subAccountKey,
                body: ["text": "Hi", "recipients": cases.map(\.0)])
            let recipients = try #require(preview.json["recipients"] as? [[String: Any]])
            for (recipient, expected) in zip(recipients, cases) {
                #expect(recipient["pricePerPart"] as? String == expected.1, "\(expected.0): \(recipient)")
                #expect(
                    (recipient["country"] as? [String: Any])?["callingCode"] as? String == expected.2, "\(expected.0)")
            }
            #expect(((recipients[1]["country"] as? [String: Any])?["regions"] as? [String]) == ["JM"])
            #expect(((recipients[3]["country"] as? [String: Any])?["name"] as? String) == "Kazakhstan")
            // The resolution names the entry that matched.
            let numbers = try cases.map { try PhoneNumber(parsing: $0.0) }
            let resolution = try #require(
                try await PriceResolver(pool: api.pool).resolve(
                    subAccountID: UUID(uuidString: tenant.subAccountID)!, numbers: numbers, at: Date()))
            for (number, expected) in zip(numbers, cases) {
                guard case .priced(let price) = resolution[number] else { throw Failure("\(number) not priced") }
                #expect(price.retail.prefix == expected.3, "\(number)")
                #expect(price.wholesale.prefix == expected.4 && price.upstreamCost.prefix == expected.4, "\(number)")
            }
        }
    }

    @Test func notOfferedForbiddenAndUnknownCountriesGive107_114_112InAnyLayer() async throws {
        try await TenancyHarness.run { api in
            let priced = try await api.pricedTenant(
                "Refusals",
                upstream: [
                    TestEntry("31", "0.0100"), TestEntry("44", "0.0100"), TestEntry("49", "0.0100"),
                    TestEntry("33", "0.0100"), TestEntry("32", "0.0100"),
                ],
                wholesale: [
                    TestEntry("31", "0.0200"), TestEntry("44", "0.0200"), TestEntry("4479", nil, "not_sellable"),
                    TestEntry("49", "0.0200", "forbidden"),
                    TestEntry("33", "0.0200"), TestEntry("34", "0.0200"), TestEntry("32", nil, "not_sellable"),
                ],
                retail: [
                    TestEntry("31", "0.0500"), TestEntry("44", "0.0500"), TestEntry("4479", "0.0500"),
                    TestEntry("49", "0.0500"),
                    TestEntry("33", nil, "forbidden"), TestEntry("34", "0.0500"), TestEntry("32", nil, "forbidden"),
                    TestEntry("39", "0.0500"),
                ])
            let tenant = priced.tenant
            let cases: [(String, Int?, String?)] = [
                ("31612345678", nil, nil),
                ("447911123456", 107, "wholesale"),  // not_sellable wholesale range inside a sellable country
                ("442071234567", nil, nil),
                ("4915112345678", 114, "wholesale"),  // forbidden by the platform
                ("33612345678", 114, "retail"),  // forbidden by the reseller
                ("34612345678", 107, "upstreamCost"),  // no upstream cost entry
                ("32470123456", 114, "retail"),  // forbidden wins over not_sellable
                ("393123456789", 107, "wholesale"),  // retail only
                ("4612345678", 107, "retail"),  // nowhere
                ("2812345678", 112, nil),  // no calling code
                ("abc", 106, nil),
                ("0612345678", 106, nil),  // national number
                ("", 103, nil),
            ]
            let preview = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/send-preview", key: tenant.subAccountKey,
                body: ["text": "Hi", "recipients": cases.map(\.0)])
            #expect(preview.status == .ok)
            let recipients = try #require(preview.json["recipients"] as? [[String: Any]])
            for (recipient, expected) in zip(recipients, cases) {
                #expect(recipient["gatewayCode"] as? Int == expected.1, "\(expected.0): \(recipient)")
                #expect((recipient["price"] == nil) == (expected.1 != nil), "\(expected.0)")
            }
            #expect(recipients[9]["country"] == nil && recipients[9]["number"] as? String == "2812345678")
            #expect((recipients[1]["country"] as? [String: Any])?["callingCode"] as? String == "44")
            let totals = try #require(preview["totals"] as? [String: Any])
            #expect(
                totals["messages"] as? Int == 2 && totals["refused"] as? Int == 11
                    && totals["retailTotal"] as? String == "0.1000")

            // The resolver says which layer refused (for operators; the preview shows codes only).
            let numbers = try cases.prefix(10).map { try PhoneNumber(parsing: $0.0) }
            let resolution = try #require(
                try await PriceResolver(pool: api.pool).resolve(
                    subAccountID: UUID(uuidString: tenant.subAccountID)!, numbers: numbers, at: Date()))
            for (number, expected) in zip(numbers, cases) {
                switch resolution[number] {
                case .refused(let refusal):
                    #expect(
                        refusal.code.rawValue == expected.1 && refusal.layer.map { "\($0)" } == expected.2, "\(number)")
                case .priced:
                    #expect(expected.1 == nil, "\(number)")
                case nil:
                    Issue.record("\(number) missing")
                }
            }
        }
    }
}
