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

@Suite(.timeLimit(.minutes(3))) struct TariffTests {
    static let cheap = [
        TestEntry("1", "0.0010"), TestEntry("7", "0.0010"), TestEntry("31", "0.0100"), TestEntry("44", "0.0100"),
    ]

    // MARK: - Access

    @Test func eachRoleReadsAndChangesOnlyItsLayersWith401Then404Then403() async throws {
        try await TenancyHarness.run { api in
            let priced = try await api.pricedTenant(
                "Roles", upstream: [TestEntry("31", "0.0300")], wholesale: [TestEntry("31", "0.0500")],
                retail: [TestEntry("31", "0.0700")])
            let tenant = priced.tenant
            let other = try await api.onboard("Other")
            let otherRetail = try await api.createPriceList("retail", name: "Other's list", key: other.resellerKey)
            let gold = try await api.createPriceList("retail", name: "Gold", key: tenant.resellerKey)
            let (upstream, wholesale, retail) = (priced.upstreamListID, priced.wholesaleListID, priced.retailListID)
            let nextMonth = Date().addingTimeInterval(30 * 86_400).formatted(.iso8601)
            let version: [String: Any] = [
                "effectiveFrom": nextMonth, "entries": [["prefix": "31", "price": "0.0900"]],
            ]
            let preview: [String: Any] = ["text": "Hi", "recipients": ["31612345678"]]
            let s = "/sub-accounts/\(tenant.subAccountID)"
            let r = "/resellers/\(tenant.resellerID)"
            // (method, path, body, expected for admin, reseller, sub-account)
            let matrix:
                [(
                    HTTPRequest.Method, String, [String: Any]?, HTTPResponse.Status, HTTPResponse.Status,
                    HTTPResponse.Status
                )] = [
                    (.get, "/price-lists/\(upstream)", nil, .ok, .notFound, .notFound),
                    (.get, "/price-lists/\(wholesale)", nil, .ok, .ok, .notFound),
                    (.get, "/price-lists/\(retail)", nil, .ok, .ok, .ok),
                    (.get, "/price-lists/\(gold)", nil, .ok, .ok, .notFound),
                    (.get, "/price-lists/\(otherRetail)", nil, .ok, .notFound, .notFound),
                    (.get, "/price-lists/\(wholesale)/versions/\(priced.wholesaleVersionID)", nil, .ok, .ok, .notFound),
                    (.get, "/price-lists/\(retail)/versions/\(priced.retailVersionID)/export", nil, .ok, .ok, .ok),
                    (
                        .get, "/price-lists/\(retail)/versions/\(priced.wholesaleVersionID)", nil, .notFound, .notFound,
                        .notFound
                    ),
                    (.patch, "/price-lists/\(upstream)", ["name": "1601"], .ok, .notFound, .notFound),
                    (.patch, "/price-lists/\(wholesale)", ["name": "Standard"], .ok, .forbidden, .notFound),
                    (.patch, "/price-lists/\(retail)", ["name": "Standard"], .forbidden, .ok, .forbidden),
                    (.patch, "/price-lists/\(otherRetail)", ["name": "Mine"], .forbidden, .notFound, .notFound),
                    (.post, "/price-lists/\(wholesale)/versions", version, .created, .forbidden, .notFound),
                    (.post, "/price-lists/\(retail)/versions", version, .forbidden, .created, .forbidden),
                    (
                        .post, "/price-lists", ["layer": "upstream_cost", "name": "U2"], .created, .forbidden,
                        .forbidden
                    ),
                    (.post, "/price-lists", ["layer": "wholesale", "name": "W2"], .created, .forbidden, .forbidden),
                    (.post, "/price-lists", ["layer": "retail", "name": "R2"], .forbidden, .created, .forbidden),
                    (.get, "/price-defaults", nil, .ok, .forbidden, .forbidden),
                    (.patch, "/price-defaults", ["wholesalePriceListId": wholesale], .ok, .forbidden, .forbidden),
                    (.get, "\(r)/pricing", nil, .ok, .ok, .forbidden),
                    (.put, "\(r)/wholesale-price-list", ["priceListId": wholesale], .ok, .forbidden, .forbidden),
                    (.delete, "\(r)/wholesale-price-list", nil, .ok, .forbidden, .forbidden),
                    (.put, "\(r)/default-retail-price-list", ["priceListId": retail], .forbidden, .ok, .forbidden),
                    (.get, "\(s)/pricing", nil, .ok, .ok, .ok),
                    (.put, "\(s)/retail-price-list", ["priceListId": retail], .forbidden, .ok, .forbidden),
                    (.delete, "\(s)/retail-price-list", nil, .forbidden, .ok, .forbidden),
                    (.post, "\(s)/send-preview", preview, .ok, .ok, .ok),
                ]
            for (method, path, body, admin, reseller, subAccount) in matrix {
                let noKey = try await api.call(method, path, key: nil, body: body)
                #expect(noKey.status == .unauthorized, "no key \(method) \(path)")
                for (role, key, expected) in [
                    ("admin", api.adminKey, admin), ("reseller", tenant.resellerKey, reseller),
                    ("sub_account", tenant.subAccountKey, subAccount),
                ] {
                    let reply = try await api.call(method, path, key: key, body: body)
                    #expect(reply.status == expected, "\(role) \(method) \(path): \(reply.json)")
                    if expected == .forbidden { #expect(reply.string("code") == "forbidden") }
                    if expected == .notFound { #expect(reply.string("code") == "not_found" && reply["id"] == nil) }
                }
            }
            // Another reseller's key sees none of it (the walk test covers every path; here the writes by id).
            #expect(
                try await api.call(.patch, "/price-lists/\(retail)", key: other.resellerKey, body: ["name": "x"]).status
                    == .notFound)
            #expect(
                try await api.call(
                    .put, "\(s)/retail-price-list", key: other.resellerKey, body: ["priceListId": otherRetail]
                ).status == .notFound)
            let unchanged = try await api.call(.get, "/price-lists/\(retail)", key: tenant.resellerKey)
            #expect(unchanged.string("name") == "Standard" && unchanged["versionCount"] as? Int == 2)
        }
    }

    @Test func listsAreScopedToWhatEachRoleMayRead() async throws {
        try await TenancyHarness.run { api in
            let priced = try await api.pricedTenant(
                "Scope", upstream: Self.cheap, wholesale: Self.cheap, retail: [TestEntry("31", "0.0700")])
            let tenant = priced.tenant
            let gold = try await api.createPriceList("retail", name: "Gold", key: tenant.resellerKey)
            let own = try await api.createPriceList("wholesale", name: "Special wholesale", key: api.adminKey)
            let other = try await api.onboard("Other")
            let otherRetail = try await api.createPriceList("retail", name: "Other", key: other.resellerKey)

            func ids(_ key: String, _ query: String = "") async throws -> Set<String> {
                Set(try await api.call(.get, "/price-lists\(query)", key: key).items.compactMap { $0["id"] as? String })
            }
            #expect(
                try await ids(api.adminKey) == [
                    priced.upstreamListID, priced.wholesaleListID, priced.retailListID, gold, own, otherRetail,
                ])
            #expect(try await ids(api.adminKey, "?layer=wholesale") == [priced.wholesaleListID, own])
            // A reseller: its retail lists and the wholesale list that applies to it (the default, then its own).
            #expect(try await ids(tenant.resellerKey) == [priced.wholesaleListID, priced.retailListID, gold])
            let assigned = try await api.call(
                .put, "/resellers/\(tenant.resellerID)/wholesale-price-list", key: api.adminKey,
                body: ["priceListId": own])
            #expect(assigned.status == .ok)
            #expect(try await ids(tenant.resellerKey) == [own, priced.retailListID, gold])
            #expect(
                try await api.call(.get, "/price-lists/\(priced.wholesaleListID)", key: tenant.resellerKey).status
                    == .notFound)
            #expect(try await ids(other.resellerKey) == [priced.wholesaleListID, otherRetail])
            // A sub-account: the retail list that applies to it, and it sees no allowLoss.
            #expect(try await ids(tenant.subAccountKey) == [priced.retailListID])
            let seen = try await api.call(.get, "/price-lists/\(priced.retailListID)", key: tenant.subAccountKey)
            #expect(seen["allowLoss"] == nil && seen.string("layer") == "retail")
            #expect(
                try await api.call(.get, "/price-lists/\(priced.retailListID)", key: tenant.resellerKey)["allowLoss"]
                    as? Bool == false)
            #expect(
                try await api.call(
                    .put, "/sub-accounts/\(tenant.subAccountID)/retail-price-list", key: tenant.resellerKey,
                    body: ["priceListId": gold]
                ).status == .ok)
            #expect(try await ids(tenant.subAccountKey) == [gold])
            // Paging.
            let first = try await api.call(.get, "/price-lists?limit=4", key: api.adminKey)
            let cursor = try #require(first.string("nextCursor"))
            let second = try await api.call(.get, "/price-lists?limit=4&cursor=\(cursor)", key: api.adminKey)
            #expect(first.items.count == 4 && second.items.count == 2 && second["nextCursor"] == nil)
        }
    }

    @Test func assignmentsAcceptOnlyListsOfTheRightLayerAndOwner() async throws {
        try await TenancyHarness.run { api in
            let priced = try await api.pricedTenant(
                "Assign", upstream: Self.cheap, wholesale: Self.cheap, retail: [TestEntry("31", "0.0700")])
            let tenant = priced.tenant
            let other = try await api.onboard("Other")
            let otherRetail = try await api.createPriceList("retail", name: "Other", key: other.resellerKey)
            let s = "/sub-accounts/\(tenant.subAccountID)/retail-price-list"
            for (key, path, id, message) in [
                (tenant.resellerKey, s, otherRetail, "is not a price list"),
                (tenant.resellerKey, s, priced.wholesaleListID, "is not one of your retail price lists"),
                (tenant.resellerKey, s, "not-a-uuid", "is not a price list"),
                (
                    tenant.resellerKey, "/resellers/\(tenant.resellerID)/default-retail-price-list", otherRetail,
                    "is not a price list"
                ),
                (
                    api.adminKey, "/resellers/\(tenant.resellerID)/wholesale-price-list", priced.upstreamListID,
                    "is not a wholesale price list"
                ),
                (
                    api.adminKey, "/resellers/\(tenant.resellerID)/wholesale-price-list", priced.retailListID,
                    "is not a wholesale price list"
                ),
            ] {
                let reply = try await api.call(.put, path, key: key, body: ["priceListId": id])
                #expect(reply.status == .unprocessableContent, "\(path) \(id)")
                #expect(reply.fieldError("/priceListId") == message, "\(path): \(reply.json)")
            }
            let defaults = try await api.call(
                .patch, "/price-defaults", key: api.adminKey,
                body: [
                    "upstreamCostPriceListId": priced.wholesaleListID, "wholesalePriceListId": priced.upstreamListID,
                ])
            #expect(defaults.fieldError("/upstreamCostPriceListId") == "is not an upstream_cost price list")
            #expect(defaults.fieldError("/wholesalePriceListId") == "is not a wholesale price list")
            #expect(
                try await api.call(.patch, "/price-defaults", key: api.adminKey, body: [:]).status
                    == .unprocessableContent)
            let unknownReseller = try await api.call(
                .put, "/resellers/\(UUID().uuidString)/wholesale-price-list", key: api.adminKey,
                body: ["priceListId": priced.wholesaleListID])
            #expect(unknownReseller.status == .notFound)
            // The database refuses another reseller's list even if a caller forgot to check.
            let foreign = await #expect(throws: PostgresError.self) {
                try await api.pool.query(
                    """
                    INSERT INTO sub_account_retail_price_list (reseller_id, sub_account_id, price_list_id, assigned_by)
                    VALUES (\(UUID(uuidString: tenant.resellerID)!), \(UUID(uuidString: tenant.subAccountID)!), \(UUID(uuidString: otherRetail)!), 'test')
                    """)
            }
            #expect(foreign?.isForeignKeyViolation == true)
        }
    }

    @Test func pricingViewsSayWhichListAppliesAndWhy() async throws {
        try await TenancyHarness.run { api in
            let priced = try await api.pricedTenant(
                "Views", upstream: Self.cheap, wholesale: Self.cheap, retail: [TestEntry("31", "0.0700")])
            let tenant = priced.tenant
            func applied(_ path: String, _ layer: String) async throws -> [String: Any] {
                let reply = try await api.call(.get, path, key: api.adminKey)
                #expect(reply.status == .ok, "\(path)")
                return reply[layer] as? [String: Any] ?? [:]
            }
            let reseller = "/resellers/\(tenant.resellerID)/pricing"
            let account = "/sub-accounts/\(tenant.subAccountID)/pricing"
            var wholesale = try await applied(reseller, "wholesale")
            #expect(
                wholesale["source"] as? String == "default"
                    && wholesale["priceListId"] as? String == priced.wholesaleListID)
            #expect(wholesale["currentVersionId"] as? String == priced.wholesaleVersionID)
            #expect(try await applied(reseller, "defaultRetail")["priceListId"] as? String == priced.retailListID)
            var retail = try await applied(account, "retail")
            #expect(
                retail["source"] as? String == "default"
                    && retail["currentVersionId"] as? String == priced.retailVersionID)

            let special = try await api.createPriceList("wholesale", name: "Special", key: api.adminKey)
            _ = try await api.call(
                .put, "/resellers/\(tenant.resellerID)/wholesale-price-list", key: api.adminKey,
                body: ["priceListId": special])
            wholesale = try await applied(reseller, "wholesale")
            #expect(
                wholesale["source"] as? String == "own" && wholesale["priceListId"] as? String == special
                    && wholesale["currentVersionId"] == nil)
            _ = try await api.call(.delete, "/resellers/\(tenant.resellerID)/wholesale-price-list", key: api.adminKey)
            #expect(try await applied(reseller, "wholesale")["source"] as? String == "default")

            let gold = try await api.createPriceList("retail", name: "Gold", key: tenant.resellerKey)
            _ = try await api.call(
                .put, "/sub-accounts/\(tenant.subAccountID)/retail-price-list", key: tenant.resellerKey,
                body: ["priceListId": gold])
            retail = try await applied(account, "retail")
            #expect(retail["source"] as? String == "own" && retail["priceListId"] as? String == gold)
            _ = try await api.call(
                .delete, "/sub-accounts/\(tenant.subAccountID)/retail-price-list", key: tenant.resellerKey)
            let cleared = try await api.call(
                .delete, "/resellers/\(tenant.resellerID)/default-retail-price-list", key: tenant.resellerKey)
            #expect((cleared["defaultRetail"] as? [String: Any])?["source"] as? String == "none")
            retail = try await applied(account, "retail")
            #expect(retail["source"] as? String == "none" && retail["priceListId"] == nil)
            // Without a retail list nothing is offered, and the sub-account sees no list at all.
            let preview = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/send-preview", key: tenant.subAccountKey,
                body: ["text": "Hi", "recipients": ["31612345678"]])
            #expect((preview.json["recipients"] as? [[String: Any]])?.first?["gatewayCode"] as? Int == 107)
            #expect(try await api.call(.get, "/price-lists", key: tenant.subAccountKey).items.isEmpty)
        }
    }

    // MARK: - Creating versions

    @Test func versionsAndEntriesCannotBeChangedOnceCommitted() async throws {
        try await TenancyHarness.run { api in
            let priced = try await api.pricedTenant(
                "Immutable", upstream: Self.cheap, wholesale: Self.cheap, retail: [TestEntry("31", "0.0700")])
            let version = try #require(UUID(uuidString: priced.retailVersionID))
            let reseller = try #require(UUID(uuidString: priced.tenant.resellerID))
            let wholesaleVersion = try #require(UUID(uuidString: priced.wholesaleVersionID))
            let statements: [PostgresQuery] = [
                "UPDATE retail_price_entry SET price = 1 WHERE version_id = \(version)",
                "DELETE FROM retail_price_entry WHERE version_id = \(version)",
                "UPDATE retail_price_version SET effective_from = now() - interval '1 year' WHERE id = \(version)",
                "DELETE FROM retail_price_version WHERE id = \(version)",
                "INSERT INTO retail_price_entry (reseller_id, version_id, prefix, price, status) VALUES (\(reseller), \(version), '44', 1, 'sellable')",
                "UPDATE platform_price_entry SET status = 'forbidden' WHERE version_id = \(wholesaleVersion)",
                "INSERT INTO platform_price_entry (version_id, prefix, price, status) VALUES (\(wholesaleVersion), '49', 1, 'sellable')",
                "TRUNCATE platform_price_entry CASCADE",
                "INSERT INTO retail_price_version (reseller_id, price_list_id, effective_from, entry_count, created_by) VALUES (\(reseller), \(UUID(uuidString: priced.retailListID)!), now() + interval '1 day', 2, 'test')",
            ]
            for statement in statements {
                await #expect(throws: PostgresError.self, "\(statement.sql)") { try await api.pool.query(statement) }
            }
            let entries = try await api.call(
                .get, "/price-lists/\(priced.retailListID)/versions/\(priced.retailVersionID)",
                key: priced.tenant.resellerKey)
            let list = try #require(entries["entries"] as? [[String: Any]])
            #expect(list.count == 1 && list.first?["price"] as? String == "0.0700")
        }
    }

    @Test func jsonEntriesAreValidatedAndNamedByPointer() async throws {
        try await TenancyHarness.run { api in
            let list = try await api.createPriceList("wholesale", name: "W", key: api.adminKey)
            let reply = try await api.createVersion(
                list, key: api.adminKey,
                [
                    TestEntry("31", "0.07251"), TestEntry("44", "-1"), TestEntry("abc", "1"), TestEntry("49", "1e3"),
                    TestEntry("33", "1000.0001"), TestEntry("34", nil), TestEntry("31", "0.0100"),
                    TestEntry("28", "0.01"),
                    TestEntry("39", "99999999999"), TestEntry("32", nil, "not_sellable"),
                ])
            #expect(reply.status == .unprocessableContent)
            #expect(reply.string("code") == "validation_failed")
            #expect(reply.fieldError("/entries/0/price") == "must have at most 4 decimal places")
            #expect(reply.fieldError("/entries/1/price") == "must not be negative")
            #expect(reply.fieldError("/entries/2/prefix")?.hasPrefix("must be digits only") == true)
            #expect(reply.fieldError("/entries/3/price") == "must be a decimal number such as \"12.5000\"")
            #expect(reply.fieldError("/entries/4/price") == "must be at most 1000.0000 credits per part")
            #expect(reply.fieldError("/entries/5/price") == "is required for a sellable entry")
            #expect(reply.fieldError("/entries/6/prefix") == "31 is already priced by /entries/0")
            #expect(reply.fieldError("/entries/7/prefix") == "does not start with an ITU-T calling code")
            #expect(reply.fieldError("/entries/8/price") == "must be at most 1000000000 credits in magnitude")
            #expect(reply.fieldErrors.count == 9)
            #expect(try await api.call(.get, "/price-lists/\(list)", key: api.adminKey)["versionCount"] as? Int == 0)

            #expect(
                try await api.createVersion(list, key: api.adminKey, []).fieldError("/entries")
                    == "a version needs at least one entry")
            // Wrong types and unknown fields are 400, as everywhere.
            let number = try await api.call(
                .post, "/price-lists/\(list)/versions", key: api.adminKey,
                body: ["entries": [["prefix": "31", "price": 0.07]]])
            #expect(number.status == .badRequest)
            let unknown = try await api.call(
                .post, "/price-lists/\(list)/versions", key: api.adminKey,
                body: ["entries": [["prefix": "31", "price": "0.07", "currency": "EUR"]]])
            #expect(unknown.status == .badRequest)
            let badStatus = try await api.call(
                .post, "/price-lists/\(list)/versions", key: api.adminKey,
                body: ["entries": [["prefix": "31", "status": "cheap"]]])
            #expect(badStatus.status == .badRequest)
            // effectiveFrom and note belong in the JSON body.
            let query = try await api.call(
                .post, "/price-lists/\(list)/versions?note=x", key: api.adminKey,
                body: ["entries": [["prefix": "31", "price": "0.07"]]])
            #expect(query.fieldError("note") == "is for text/csv bodies; give /note in the JSON body")
        }
    }

    @Test func effectiveFromMayNotBeInThePastNorTaken() async throws {
        try await TenancyHarness.run { api in
            let list = try await api.createPriceList("upstream_cost", name: "U", key: api.adminKey)
            let past = try await api.createVersion(
                list, key: api.adminKey, [TestEntry("31", "0.01")], effectiveFrom: Date().addingTimeInterval(-60))
            #expect(past.status == .unprocessableContent)
            #expect(past.fieldError("/effectiveFrom")?.hasPrefix("must not be in the past") == true)
            let instant = Date().addingTimeInterval(3_600)
            let first = try await api.createVersion(
                list, key: api.adminKey, [TestEntry("31", "0.01")], effectiveFrom: instant, note: "August")
            #expect(first.status == .created)
            #expect((first["version"] as? [String: Any])?["note"] as? String == "August")
            let taken = try await api.createVersion(
                list, key: api.adminKey, [TestEntry("31", "0.02")], effectiveFrom: instant)
            #expect(taken.status == .conflict)
            let csvPast = try await api.call(
                .post,
                "/price-lists/\(list)/versions?effectiveFrom=\(Date().addingTimeInterval(-60).formatted(.iso8601))",
                key: api.adminKey,
                csv: "prefix,price\n31,0.01\n")
            #expect(csvPast.fieldError("effectiveFrom")?.hasPrefix("must not be in the past") == true)
            #expect(try await api.call(.get, "/price-lists/\(list)", key: api.adminKey)["versionCount"] as? Int == 1)
        }
    }

    @Test func csvImportIsAllOrNothingWithAnErrorPerLine() async throws {
        try await TenancyHarness.run { api in
            let list = try await api.createPriceList("wholesale", name: "W", key: api.adminKey)
            let auditBefore = try await api.auditCount()
            let bad = try await api.call(
                .post, "/price-lists/\(list)/versions", key: api.adminKey,
                csv: """
                    prefix,price,status
                    31,0.0725,sellable
                    44,0.07251,sellable
                    4,0.0500,sellable
                    49,-0.01,sellable
                    33,,sellable
                    34,0.0300,cheap
                    31,0.0100,sellable
                    """)
            #expect(bad.status == .unprocessableContent)
            #expect(
                bad.fieldErrors.map(\.field) == [
                    "line 3: price", "line 4: prefix", "line 5: price", "line 6: price", "line 7: status",
                    "line 8: prefix",
                ])
            #expect(bad.fieldError("line 8: prefix") == "31 is already priced by line 2")
            #expect(try await api.call(.get, "/price-lists/\(list)", key: api.adminKey)["versionCount"] as? Int == 0)
            #expect(try await api.auditCount() == auditBefore)

            let header = try await api.call(
                .post, "/price-lists/\(list)/versions", key: api.adminKey, csv: "prefix;price\n31;0.01\n")
            #expect(header.fieldErrors.map(\.field) == ["line 1: header"])
            let empty = try await api.call(
                .post, "/price-lists/\(list)/versions", key: api.adminKey, csv: "prefix,price,status\n")
            #expect(empty.fieldError("file") == "a version needs at least one entry")
            let huge = String(repeating: "31,0.0100,sellable\n", count: (PriceListCSV.maximumBytes / 19) + 10)
            let tooLarge = try await api.call(
                .post, "/price-lists/\(list)/versions", key: api.adminKey, csv: "prefix,price,status\n" + huge)
            #expect(tooLarge.status == .contentTooLarge && tooLarge.string("code") == "payload_too_large")

            let good = try await api.call(
                .post, "/price-lists/\(list)/versions?note=From%20a%20file", key: api.adminKey,
                csv: "\u{FEFF}prefix,price,status\r\n31,0.0725,sellable\r\n\"7\",,forbidden\r\n",
                contentType: "text/csv; charset=utf-8")
            #expect(good.status == .created, "\(good.json)")
            let version = try #require(good["version"] as? [String: Any])
            #expect(
                version["entryCount"] as? Int == 2 && version["note"] as? String == "From a file"
                    && version["state"] as? String == "in_force")
            #expect(try await api.auditCount() == auditBefore + 1)
        }
    }

    @Test func csvExportRoundTripsIntoAnEqualVersion() async throws {
        try await TenancyHarness.run { api in
            let list = try await api.createPriceList("wholesale", name: "W", key: api.adminKey)
            var entries = [
                TestEntry("31", "0.0725"), TestEntry("4479", "0.0550"), TestEntry("44", "0.04"),
                TestEntry("7", nil, "forbidden"),
                TestEntry("1876", "12.5", "not_sellable"), TestEntry("1", "0"), TestEntry("32", nil, "not_sellable"),
            ]
            // Enough entries to need several pages of the export stream.
            for n in 0..<(PriceEntryCSVStream.pageSize + 123) {
                entries.append(TestEntry("49\(100_000 + n)", "0.\(String(format: "%04d", n % 10_000))"))
            }
            let versionID = try await api.version(list, key: api.adminKey, entries)
            let export = try await api.text("/price-lists/\(list)/versions/\(versionID)/export", key: api.adminKey)
            #expect(export.status == .ok)
            #expect(export.headers[.contentType]?.hasPrefix("text/csv") == true)
            #expect(
                export.headers[HTTPField.Name("Content-Disposition")!]
                    == "attachment; filename=\"price-list-\(list)-\(versionID).csv\"")
            let lines = export.body.split(separator: "\n").map(String.init)
            #expect(lines.count == entries.count + 1)
            #expect(
                Array(lines.prefix(5)) == [
                    "prefix,price,status", "1,0.0000,sellable", "1876,12.5000,not_sellable", "31,0.0725,sellable",
                    "32,,not_sellable",
                ])
            #expect(lines.contains("7,,forbidden") && lines.contains("4479,0.0550,sellable"))

            let reimport = try await api.call(
                .post,
                "/price-lists/\(list)/versions?effectiveFrom=\(Date().addingTimeInterval(86_400).formatted(.iso8601))",
                key: api.adminKey,
                csv: export.body)
            #expect(reimport.status == .created, "\(reimport.fieldErrors.prefix(3))")
            let copyID = try #require((reimport["version"] as? [String: Any])?["id"] as? String)
            let original = try await api.call(.get, "/price-lists/\(list)/versions/\(versionID)", key: api.adminKey)
            let copy = try await api.call(.get, "/price-lists/\(list)/versions/\(copyID)", key: api.adminKey)
            let a = try #require(original["entries"] as? [[String: Any]])
            let b = try #require(copy["entries"] as? [[String: Any]])
            #expect(a.count == entries.count)
            #expect(
                a.map { "\($0["prefix"]!) \($0["price"] ?? "-") \($0["status"]!)" }
                    == b.map { "\($0["prefix"]!) \($0["price"] ?? "-") \($0["status"]!)" })
            #expect(
                ((a.first { $0["prefix"] as? String == "4479" })?["country"] as? [String: Any])?["name"] as? String
                    == "United Kingdom")
            let copyExport = try await api.text("/price-lists/\(list)/versions/\(copyID)/export", key: api.adminKey)
            #expect(copyExport.body == export.body)
        }
    }

    // MARK: - The loss rule

    @Test func retailBelowWholesaleIsRefusedUnlessTheListAllowsLoss() async throws {
        try await TenancyHarness.run { api in
            let priced = try await api.pricedTenant(
                "Loss", upstream: Self.cheap,
                wholesale: [
                    TestEntry("31", "0.0400"), TestEntry("44", "0.0300"), TestEntry("4479", "0.0500"),
                    TestEntry("49", nil, "not_sellable"),
                ],
                retail: [TestEntry("31", "0.0500")])
            let key = priced.tenant.resellerKey
            let list = priced.retailListID
            // 44 at 0.0400 is above the UK landline wholesale but below the mobile range 4479 it also prices.
            let below = try await api.createVersion(
                list, key: key, [TestEntry("44", "0.0400"), TestEntry("31", "0.0300"), TestEntry("49", "0.0001")])
            #expect(below.status == .unprocessableContent)
            #expect(below.fieldErrors.map(\.field) == ["/entries/1/price", "/entries/0/price"])
            #expect(
                below.fieldError("/entries/0/price")
                    == "0.0400 is below the wholesale price 0.0500 for prefix 4479 (United Kingdom); the list does not allow loss (allowLoss)"
            )
            #expect(
                below.fieldError("/entries/1/price")?.contains(
                    "0.0300 is below the wholesale price 0.0400 for prefix 31") == true)
            // Pricing the mobile range separately fixes it; equal to wholesale is not a loss.
            let fixed = try await api.createVersion(
                list, key: key, [TestEntry("44", "0.0400"), TestEntry("4479", "0.0500"), TestEntry("31", "0.0400")],
                effectiveFrom: Date().addingTimeInterval(60))
            #expect(fixed.status == .created, "\(fixed.json)")
            #expect((fixed["warnings"] as? [Any])?.isEmpty == true)
            // The same rule for a CSV, named by line.
            let csv = try await api.call(
                .post, "/price-lists/\(list)/versions", key: key, csv: "prefix,price\n31,0.0300\n44,0.0400\n")
            #expect(csv.fieldErrors.map(\.field) == ["line 2: price", "line 3: price"])

            // A list that allows loss takes it, with a warning per loss-making prefix.
            let promo = try await api.createPriceList("retail", name: "Promo", key: key, allowLoss: true)
            let loss = try await api.createVersion(
                promo, key: key, [TestEntry("31", "0.0300"), TestEntry("44", "0.0400")])
            #expect(loss.status == .created)
            let warnings = try #require(loss["warnings"] as? [[String: Any]])
            #expect(warnings.map { $0["prefix"] as? String } == ["31", "44"])
            #expect(warnings.map { $0["wholesalePrefix"] as? String } == ["31", "4479"])
            #expect(warnings.map { $0["field"] as? String } == ["/entries/0/price", "/entries/1/price"])
            #expect(warnings.map { $0["kind"] as? String } == ["loss", "loss"])
            #expect(
                warnings[1]["retailPrice"] as? String == "0.0400"
                    && warnings[1]["wholesalePrice"] as? String == "0.0500")
            // allowLoss can be switched on for an existing list.
            let patched = try await api.call(.patch, "/price-lists/\(list)", key: key, body: ["allowLoss": true])
            #expect(patched["allowLoss"] as? Bool == true)
            let now = try await api.createVersion(
                list, key: key, [TestEntry("44", "0.0400")], effectiveFrom: Date().addingTimeInterval(120))
            #expect(now.status == .created && (now["warnings"] as? [Any])?.count == 1)
            _ = try await api.call(.patch, "/price-lists/\(list)", key: key, body: ["allowLoss": false])

            // A wholesale rise already scheduled counts: the retail version would be in force when it is.
            _ = try await api.version(
                priced.wholesaleListID, key: api.adminKey,
                [TestEntry("31", "0.0800"), TestEntry("44", "0.0300"), TestEntry("4479", "0.0500")],
                effectiveFrom: Date().addingTimeInterval(2 * 86_400))
            let beforeRise = try await api.createVersion(
                list, key: key, [TestEntry("31", "0.0500"), TestEntry("44", "0.0400"), TestEntry("4479", "0.0600")],
                effectiveFrom: Date().addingTimeInterval(600))
            #expect(
                beforeRise.fieldError("/entries/0/price")?.contains("below the wholesale price 0.0800 for prefix 31")
                    == true)
            let afterRise = try await api.createVersion(
                list, key: key, [TestEntry("31", "0.0900"), TestEntry("44", "0.0400"), TestEntry("4479", "0.0600")],
                effectiveFrom: Date().addingTimeInterval(3 * 86_400))
            #expect(afterRise.status == .created)

            // The wholesale list that applies is the reseller's own once it has one.
            let special = try await api.createPriceList("wholesale", name: "Special", key: api.adminKey)
            _ = try await api.version(
                special, key: api.adminKey, [TestEntry("31", "0.0100"), TestEntry("44", "0.0100")])
            _ = try await api.call(
                .put, "/resellers/\(priced.tenant.resellerID)/wholesale-price-list", key: api.adminKey,
                body: ["priceListId": special])
            let cheap = try await api.createVersion(
                list, key: key, [TestEntry("31", "0.0200"), TestEntry("44", "0.0200")],
                effectiveFrom: Date().addingTimeInterval(900))
            #expect(cheap.status == .created, "\(cheap.json)")
        }
    }

    // MARK: - Audit

    @Test func everyMutationWritesOneAuditRowAndFailuresNone() async throws {
        try await TenancyHarness.run { api in
            let priced = try await api.pricedTenant(
                "Audit", upstream: Self.cheap, wholesale: Self.cheap, retail: [TestEntry("31", "0.0700")])
            let tenant = priced.tenant
            var expected = try await api.auditCount()
            func step(_ what: String, adds: Int, _ body: () async throws -> Reply) async throws {
                let reply = try await body()
                expected += adds
                let actual = try await api.auditCount()
                #expect(actual == expected, "\(what): \(reply.status.code) \(reply.json)")
                expected = actual
            }
            try await step("create list", adds: 1) {
                try await api.call(
                    .post, "/price-lists", key: tenant.resellerKey, body: ["layer": "retail", "name": "Gold"])
            }
            let gold = try #require(
                try await api.call(.get, "/price-lists?layer=retail", key: tenant.resellerKey).items.first {
                    $0["name"] as? String == "Gold"
                }?["id"] as? String)
            try await step("invalid list", adds: 0) {
                try await api.call(
                    .post, "/price-lists", key: tenant.resellerKey, body: ["layer": "retail", "name": ""])
            }
            try await step("forbidden list", adds: 0) {
                try await api.call(
                    .post, "/price-lists", key: tenant.resellerKey, body: ["layer": "wholesale", "name": "W"])
            }
            try await step("rename", adds: 1) {
                try await api.call(
                    .patch, "/price-lists/\(gold)", key: tenant.resellerKey, body: ["name": "Gold customers"])
            }
            try await step("version", adds: 1) {
                try await api.createVersion(gold, key: tenant.resellerKey, [TestEntry("31", "0.0800")])
            }
            try await step("invalid version", adds: 0) {
                try await api.createVersion(gold, key: tenant.resellerKey, [TestEntry("31", "x")])
            }
            try await step("loss-making version", adds: 0) {
                try await api.createVersion(gold, key: tenant.resellerKey, [TestEntry("31", "0.0001")])
            }
            try await step("assign", adds: 1) {
                try await api.call(
                    .put, "/sub-accounts/\(tenant.subAccountID)/retail-price-list", key: tenant.resellerKey,
                    body: ["priceListId": gold])
            }
            try await step("assign again", adds: 0) {
                try await api.call(
                    .put, "/sub-accounts/\(tenant.subAccountID)/retail-price-list", key: tenant.resellerKey,
                    body: ["priceListId": gold])
            }
            try await step("unassign", adds: 1) {
                try await api.call(
                    .delete, "/sub-accounts/\(tenant.subAccountID)/retail-price-list", key: tenant.resellerKey)
            }
            try await step("unassign again", adds: 0) {
                try await api.call(
                    .delete, "/sub-accounts/\(tenant.subAccountID)/retail-price-list", key: tenant.resellerKey)
            }
            try await step("default retail", adds: 1) {
                try await api.call(
                    .put, "/resellers/\(tenant.resellerID)/default-retail-price-list", key: tenant.resellerKey,
                    body: ["priceListId": gold])
            }
            try await step("clear default retail", adds: 1) {
                try await api.call(
                    .delete, "/resellers/\(tenant.resellerID)/default-retail-price-list", key: tenant.resellerKey)
            }
            try await step("wholesale", adds: 1) {
                try await api.call(
                    .put, "/resellers/\(tenant.resellerID)/wholesale-price-list", key: api.adminKey,
                    body: ["priceListId": priced.wholesaleListID])
            }
            try await step("unassign wholesale", adds: 1) {
                try await api.call(.delete, "/resellers/\(tenant.resellerID)/wholesale-price-list", key: api.adminKey)
            }
            let w2 = try await api.createPriceList("wholesale", name: "W2", key: api.adminKey)
            expected += 1
            try await step("defaults", adds: 1) {
                try await api.call(.patch, "/price-defaults", key: api.adminKey, body: ["wholesalePriceListId": w2])
            }
            try await step("same defaults", adds: 0) {
                try await api.call(.patch, "/price-defaults", key: api.adminKey, body: ["wholesalePriceListId": w2])
            }
            try await step("preview", adds: 0) {
                try await api.call(
                    .post, "/sub-accounts/\(tenant.subAccountID)/send-preview", key: tenant.subAccountKey,
                    body: ["text": "Hi", "recipients": ["31612345678"]])
            }
            // What the rows say.
            let log = try await api.call(.get, "/audit-log?limit=200", key: api.adminKey).items
            let actions = Set(log.compactMap { $0["action"] as? String })
            for action in [
                "price_list.create", "price_list.update", "price_list_version.create",
                "sub_account.retail_price_list.assign",
                "sub_account.retail_price_list.unassign", "reseller.default_retail_price_list.set",
                "reseller.default_retail_price_list.clear",
                "reseller.wholesale_price_list.assign", "reseller.wholesale_price_list.unassign",
                "price_defaults.update",
            ] {
                #expect(actions.contains(action), "\(action)")
            }
            let defaults = try #require(log.first { $0["action"] as? String == "price_defaults.update" })
            // (UUIDs in audit JSON are as JSONEncoder writes them: upper case.)
            #expect(((defaults["after"] as? [String: Any])?["wholesale_price_list_id"] as? String)?.lowercased() == w2)
            let version = try #require(log.first { $0["action"] as? String == "price_list_version.create" })
            #expect(
                version["resellerId"] as? String == tenant.resellerID
                    && (version["after"] as? [String: Any])?["entry_count"] as? Int == 1)
            // The reseller sees its own tenant's rows, not the platform's.
            let own = try await api.call(
                .get, "/audit-log?limit=200&action=price_defaults.update", key: tenant.resellerKey)
            #expect(own.items.isEmpty)
        }
    }
}

struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
