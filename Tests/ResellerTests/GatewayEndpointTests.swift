import AsyncHTTPClient
import CompatibleGateway
import Contacts
import Foundation
import Gateway1601
import Gateway1601Simulator
import HTTPTypes
import Ledger
import NIOCore
import NIOHTTP1
import PostgresLibpq
import ResellerApp
import ResellerCore
import SMSCore
import ServiceTestSupport
import Testing

/// The 1601-compatible endpoint against the simulator: the same requests to both, with the same state on both sides,
/// must get the same answers; then what only our side can show (the ledger, encodings, the password limits).
@Suite(.serialized, .timeLimit(.minutes(5))) struct GatewayEndpointTests {
    /// A plain-text answer.
    struct Answer: Equatable, CustomStringConvertible {
        var status: Int
        var text: String
        var retryAfter: String? = nil
        var description: String { "\(status) \(text)" }
    }

    /// Both sides of the comparison, and our harness.
    struct World {
        var api: TenancyHarness
        var tenant: TenancyHarness.Tenant
        var ours: String
        var simulator: String
        var password: String
        var payBlocked: String
        var blocked: String

        /// `klantuser=…&klantpwd=…` for the main account.
        var login: String {
            "klantuser=\(FormEncoding.percentEncode(tenant.username))&klantpwd=\(FormEncoding.percentEncode(password))"
        }
    }

    static let password = "sup3r secret"
    static let groupMembers = ["31612345001", "31612345002"]

    /// GET (parameters in the query) or POST (a form body) of `query`, already encoded, to `base + path`.
    static func call(
        _ base: String, _ query: String, path: String = GatewayCall.gatewayPath, post: Bool = false,
        headers: [(String, String)] = [],
        contentType: String = "application/x-www-form-urlencoded; charset=utf-8", client: HTTPClient = .shared
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: base + path + (post || query.isEmpty ? "" : "?" + query))
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if post {
            request.method = .POST
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(string: query))
        }
        let response = try await client.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 22)
        return Answer(
            status: Int(response.status.code), text: String(buffer: body),
            retryAfter: response.headers.first(name: "Retry-After"))
    }

    /// Our tenant (credits, prices, the sender `Jansen`, groups, two blocked siblings) and a simulator set up alike.
    static func withWorld(
        configure: @escaping @Sendable (inout AppConfiguration) -> Void = { _ in },
        _ body: @Sendable @escaping (World) async throws -> Void
    ) async throws {
        try await TenancyHarness.run(configure: configure) { api in
            let priced = try await api.sendingTenant("Compat", credits: "10")
            let tenant = priced.tenant
            // Russia takes no long messages on our upstream connection, as on the simulator (119).
            let connection = try #require(
                try await api.call(.get, "/upstream-connections", key: api.adminKey).items.first)
            let patched = try await api.call(
                .patch, "/upstream-connections/\(try #require(connection["id"] as? String))", key: api.adminKey,
                body: ["singlePartCountries": ["7"]])
            try #require(patched.status == .ok, "\(patched.json)")
            let klanten = try await api.group(tenant.subAccountID, "klanten", key: tenant.subAccountKey)
            var members: [String] = []
            for number in groupMembers {
                members.append(try await api.contact(tenant.subAccountID, number, key: tenant.subAccountKey))
            }
            let added = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/contact-groups/\(klanten)/members",
                key: tenant.subAccountKey, body: ["contactIds": members])
            try #require(added.status == .ok, "\(added.json)")
            _ = try await api.group(tenant.subAccountID, "leeg", key: tenant.subAccountKey)
            var siblings: [String] = []
            for status in ["blocked_payment", "blocked"] {
                let username = "compat-\(status)-\(UUID().uuidString.prefix(6))"
                let account = try await api.call(
                    .post, "/sub-accounts", key: tenant.resellerKey,
                    body: ["name": status, "username": username, "password": password])
                try #require(account.status == .created, "\(account.json)")
                let blocked = try await api.call(
                    .post, "/sub-accounts/\(try #require(account.string("id")))/block", key: tenant.resellerKey,
                    body: ["status": status, "reason": "test"])
                try #require(blocked.status == .ok, "\(blocked.json)")
                siblings.append(username)
            }

            var configuration = SimulatorConfiguration()
            configuration.port = 0
            configuration.delivery.automatic = false
            configuration.accounts = [
                SimulatedAccount(
                    username: tenant.username, password: password, credits: 10,
                    groups: ["klanten": groupMembers, "leeg": []],
                    blockedSenders: ["Blocked"]),
                SimulatedAccount(username: siblings[0], password: password, status: .blockedPayment),
                SimulatedAccount(username: siblings[1], password: password, status: .blocked),
            ]
            configuration.countries = [
                "31": CountryRule(costPerPart: CreditAmount(Decimal(string: "0.0725")!)),
                "44": CountryRule(costPerPart: CreditAmount(Decimal(string: "0.04")!)),
                "7": CountryRule(costPerPart: CreditAmount(Decimal(string: "0.04")!), longMessages: false),
                "98": CountryRule(status: .forbidden),
            ]
            let simulator = GatewaySimulator(configuration: configuration, logger: HTTPSkeletonTests.logger)
            try await withRunning([simulator]) {
                try await body(
                    World(
                        api: api, tenant: tenant, ours: "http://127.0.0.1:\(api.client.port)",
                        simulator: try await simulator.baseURL(),
                        password: password, payBlocked: siblings[0], blocked: siblings[1]))
            }
        }
    }

    /// Sends `query` to both sides (by default as a GET, then the same as a POST form: only for requests that change
    /// nothing) and expects the same answer from each.
    static func expectSame(
        _ world: World, _ query: String, _ expected: String? = nil, path: String = GatewayCall.gatewayPath,
        methods: [Bool] = [false, true], sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        for post in methods {
            let ours = try await call(world.ours, query, path: path, post: post)
            let theirs = try await call(world.simulator, query, path: path, post: post)
            #expect(ours == theirs, "\(post ? "POST" : "GET") \(query)", sourceLocation: sourceLocation)
            if let expected {
                #expect(ours.text == expected, "\(post ? "POST" : "GET") \(query)", sourceLocation: sourceLocation)
            }
        }
    }

    @Test func everyDocumentedErrorIsAnsweredAsTheUpstreamAnswersItInTheSameOrder() async throws {
        try await Self.withWorld { world in
            let login = world.login
            let send = "\(login)&afzender=Jansen&bericht=Hallo"
            let long = String(repeating: "a", count: 200)
            let cases: [(String, String)] = [
                // Credentials: 100 before 101 before 104; blocks only for the right password.
                ("", "ERROR 100"),
                ("klantpwd=x&bericht=Hallo", "ERROR 100"),
                ("klantuser=&klantpwd=x", "ERROR 100"),
                ("klantuser=\(world.tenant.username)", "ERROR 101"),
                ("klantuser=\(world.tenant.username)&klantpwd=", "ERROR 101"),
                ("klantuser=\(world.tenant.username)&klantpwd=wrong", "ERROR 104"),
                ("klantuser=nobody-\(UUID().uuidString.prefix(6))&klantpwd=x", "ERROR 104"),
                (
                    "klantuser=\(world.payBlocked)&klantpwd=\(FormEncoding.percentEncode(world.password))&bericht=x",
                    "ERROR 115"
                ),
                (
                    "klantuser=\(world.blocked)&klantpwd=\(FormEncoding.percentEncode(world.password))&bericht=x",
                    "ERROR 116"
                ),
                ("klantuser=\(world.blocked)&klantpwd=wrong", "ERROR 104"),
                // The send's checks, one at a time.
                ("\(login)&naar=31612345678&afzender=Jansen", "ERROR 102"),
                ("\(login)&naar=31612345678&afzender=Jansen&bericht=", "ERROR 102"),
                (send, "ERROR 103"),
                ("\(send)&naar=%2C%20%2C", "ERROR 103"),
                ("\(send)&naar=groep&groep=onbekend", "ERROR 125"),
                ("\(send)&naar=groep", "ERROR 125"),
                ("\(send)&naar=groep&groep=leeg", "ERROR 126"),
                ("\(send)&naar=12ab", "ERROR 106"),
                ("\(send)&naar=0612345678", "ERROR 106"),
                ("\(send)&naar=%2B", "ERROR 106"),
                ("\(send)&naar=31612345678,-", "ERROR 106"),
                ("\(send)&naar=21012345678", "ERROR 112"),
                ("\(send)&naar=4917612345678", "ERROR 107"),
                ("\(send)&naar=989121234567", "ERROR 114"),
                ("\(login)&bericht=Hallo&naar=31612345678&afzender=", "ERROR 109"),
                ("\(login)&bericht=Hallo&naar=31612345678", "ERROR 109"),
                ("\(login)&bericht=Hallo&naar=31612345678&afzender=0612345678", "ERROR 110"),
                ("\(login)&bericht=Hallo&naar=31612345678&afzender=Jansen%20en%20Zonen", "ERROR 111"),
                ("\(login)&bericht=Hallo&naar=31612345678&afzender=Jan%24", "ERROR 113"),
                ("\(login)&bericht=Hallo&naar=31612345678&afzender=Blocked", "ERROR 117"),
                (
                    "\(login)&afzender=Jansen&naar=31612345678&bericht=\(String(repeating: "a", count: 161))",
                    "ERROR 105"
                ),
                (
                    "\(login)&afzender=Jansen&naar=31612345678&type=long&bericht=\(String(repeating: "a", count: 460))",
                    "ERROR 118"
                ),
                ("\(login)&afzender=Jansen&naar=79161234567&type=long&bericht=\(long)", "ERROR 119"),
                ("\(send)&naar=31612345678&datum=202001011200", "ERROR 121"),
                ("\(send)&naar=31612345678&datum=20261301", "ERROR 121"),
                ("\(send)&naar=31612345678&datum=209913311200", "ERROR 121"),
                ("\(send)&naar=\(Array(repeating: "31612345678", count: 140).joined(separator: ","))", "ERROR 108"),
                // Precedence: the earlier check wins when several fail.
                ("\(login)&afzender=", "ERROR 102"),
                ("\(login)&bericht=Hallo&naar=groep&groep=onbekend&afzender=", "ERROR 125"),
                ("\(login)&bericht=Hallo&naar=31612345678,12ab,4917612345678&afzender=", "ERROR 106"),
                ("\(login)&bericht=Hallo&naar=4917612345678,12ab&afzender=", "ERROR 107"),
                ("\(login)&bericht=\(long)&naar=31612345678&afzender=", "ERROR 109"),
                ("\(login)&bericht=\(long)&naar=79161234567&afzender=Jansen&datum=202001011200", "ERROR 105"),
                ("\(login)&bericht=\(long)&type=long&naar=79161234567&afzender=Jansen&datum=202001011200", "ERROR 119"),
                (
                    "\(send)&naar=\(Array(repeating: "31612345678", count: 140).joined(separator: ","))&datum=202001011200",
                    "ERROR 121"
                ),
                // The other actions' errors.
                ("\(login)&action=rapport", "ERROR 123"),
                ("\(login)&action=rapport&aantal=", "ERROR 123"),
                ("\(login)&action=rapport&aantal=abc", "ERROR 124"),
                ("\(login)&action=rapport&aantal=0", "ERROR 124"),
                ("\(login)&action=rapport&aantal=-5", "ERROR 124"),
                ("\(login)&action=rapport&aantal=99999999999999999999", "ERROR 124"),
                ("\(login)&action=verwijderbericht", "ERROR 122"),
                ("\(login)&action=verwijderbericht&naar=31699999999", "ERROR 122"),
                ("\(login)&action=verwijderbericht&id=999", "ERROR 122"),
                ("\(login)&action=verwijderoutbox", "ERROR 122"),
                ("action=credits", "ERROR 100"),
            ]
            for (query, expected) in cases { try await Self.expectSame(world, query, expected) }
            try await Self.expectSame(world, "\(login)&action=bogus")
            #expect(try await Self.call(world.ours, "\(login)&action=bogus").status == 400)

            // Delivery status: 123 without an smsid, 124 when it is not a number, NONE for one that is unknown.
            for (query, expected) in [
                ("\(login)", "ERROR 123"), ("\(login)&smsid=", "ERROR 123"), ("\(login)&smsid=12a", "ERROR 124"),
                ("\(login)&smsid=999999999", "NONE"), ("\(login)&smsid=999999999&datum=ja", "NONE"),
                ("klantuser=\(world.tenant.username)&klantpwd=wrong&smsid=1", "ERROR 104"),
            ] {
                try await Self.expectSame(world, query, expected, path: GatewayCall.reportPath)
            }

            // None of these wrote anything, and the balance is whole on both sides.
            #expect(try await world.api.sendRowCounts()[1] == 0)
            try await Self.expectSame(world, "\(login)&action=credits", "10")
        }
    }

    @Test func sendsCreditsReportsAndTheOutboxAnswerAsTheUpstreamDoes() async throws {
        try await Self.withWorld { world in
            let login = world.login
            let sha1 = "klantuser=\(world.tenant.username)&klantpwd=\(PasswordHasher.sha1Hex(world.password))"
            let sha1Upper =
                "klantuser=\(world.tenant.username)&klantpwd=\(PasswordHasher.sha1Hex(world.password).uppercased())"

            // test=ja: every check, a bare OK, nothing stored or charged (also with delivery and outboxid).
            try await Self.expectSame(
                world, "\(login)&afzender=Jansen&bericht=Test&naar=31612345678&test=ja&delivery=ja&outboxid=ja", "OK")
            try await Self.expectSame(world, "\(sha1)&afzender=Jansen&bericht=Test&naar=31612345678&test=ja", "OK")
            try await Self.expectSame(world, "\(sha1Upper)&afzender=Jansen&bericht=Test&naar=31612345678&test=ja", "OK")
            try await Self.expectSame(world, "\(login)&action=credits", "10")
            #expect(try await world.api.sendRowCounts()[1] == 0)

            // Sends, through both sides in the same order: the ids differ (each side numbers its own), the shape does not.
            var ourIDs: [String] = []
            var theirIDs: [String] = []
            let sends: [(String, Int)] = [
                ("\(login)&afzender=Jansen&bericht=Eerste&naar=31612345678&delivery=ja&referentie=order-1", 1),
                ("\(sha1)&afzender=Jansen&bericht=Tweede&naar=%2B31%206%201234%205679,0031612345680&delivery=ja", 2),
                ("\(login)&afzender=Jansen&bericht=Derde&naar=31612345681", 0),
                ("\(login)&afzender=Jansen&bericht=Stil&naar=31612345682&logging=nee&delivery=ja", 1),
                ("\(login)&afzender=Jansen&bericht=Groep&naar=groep&groep=klanten&delivery=ja&type=long", 2),
                (
                    "\(login)&afzender=Jansen&bericht=\(String(repeating: "b", count: 200))&naar=447911123456&delivery=ja&type=long&referentie=\(String(repeating: "r", count: 80))",
                    1
                ),
            ]
            for (index, (query, ids)) in sends.enumerated() {
                let post = index.isMultiple(of: 2)
                let ours = try await Self.call(world.ours, query, post: post)
                let theirs = try await Self.call(world.simulator, query, post: post)
                #expect(ours.status == 200 && theirs.status == 200)
                let ourParsed = try GatewayAnswer.parseOK(ours.text)
                let theirParsed = try GatewayAnswer.parseOK(theirs.text)
                #expect(ourParsed.count == ids && theirParsed.count == ids, "\(ours) / \(theirs)")
                ourIDs += ourParsed
                theirIDs += theirParsed
            }
            // Our ids are the messages' numbers, in the order of the recipients.
            let numbered = try await world.api.pool.query(
                """
                SELECT m.gateway_id::text FROM message m JOIN message_batch b ON b.id = m.batch_id
                WHERE b.delivery_reports ORDER BY m.accepted_at, m.position
                """
            ).decode(String.self)
            #expect(numbered == ourIDs)
            #expect(try await world.api.pool.query("SELECT count(*) FROM message").first(as: Int.self) == 8)

            // The same credits on both sides: 7 × 0.0725 + 2 parts to the UK at 0.04 (group members are Dutch, 2 parts each).
            let credits = try await Self.call(world.ours, "\(login)&action=credits")
            #expect(credits == (try await Self.call(world.simulator, "\(login)&action=credits")))
            #expect(credits.text == "9.4125")

            // The report table: newest first, logging=nee left out, the reference cut to 75, the same rows but for the ids.
            func normalized(_ table: String) -> String {
                table.split(separator: "\n").map { line in
                    line.first?.isNumber == true ? "ID" + line.drop { $0 != ";" } : Substring(line)
                }.joined(separator: "\n")
            }
            for aantal in ["3", "100"] {
                let ours = try await Self.call(world.ours, "\(login)&action=rapport&aantal=\(aantal)")
                let theirs = try await Self.call(world.simulator, "\(login)&action=rapport&aantal=\(aantal)")
                #expect(normalized(ours.text) == normalized(theirs.text), "\(ours.text)\n---\n\(theirs.text)")
                #expect(ours.text.split(separator: "\n").count == (aantal == "3" ? 4 : 8))
            }
            let table = try GatewayAnswer.parseReportTable(
                try await Self.call(world.ours, "\(login)&action=rapport&aantal=100").text)
            #expect(
                table.first?.reference == String(repeating: "r", count: 75) && table.allSatisfy { $0.status == .none })
            #expect(!table.contains { $0.recipient == "31612345682" })
            #expect(Set(table.map(\.smsID)).isSuperset(of: ourIDs.filter { $0 != ourIDs[3] }))

            // Delivery status of each message, by its own side's id: nothing has reached the network yet.
            for (ours, theirs) in zip(ourIDs, theirIDs) {
                let mine = try await Self.call(
                    world.ours, "\(login)&smsid=\(ours)&datum=ja", path: GatewayCall.reportPath)
                #expect(
                    mine
                        == (try await Self.call(
                            world.simulator, "\(login)&smsid=\(theirs)&datum=ja", path: GatewayCall.reportPath)))
                #expect(mine.text == "NONE")
            }
        }
    }

    @Test func scheduledSendsAreRemovedByIdByNumberOrAllWithTheirReservationsVoided() async throws {
        try await Self.withWorld { world in
            let login = world.login
            let tomorrow = GatewayDateTime(Date().addingTimeInterval(86_400))
            let datum = GatewayDateTime(
                year: tomorrow.year, month: tomorrow.month, day: tomorrow.day, hour: 12, minute: 0)!.scheduleText
            let schedule = "\(login)&afzender=Jansen&bericht=Later&datum=\(datum)"

            // With outboxid=ja the answer is the outbox id (even with delivery=ja); without it, as for any send.
            let ours = try await Self.call(
                world.ours, "\(schedule)&naar=31612345678,31612345679&outboxid=ja&delivery=ja")
            let theirs = try await Self.call(
                world.simulator, "\(schedule)&naar=31612345678,31612345679&outboxid=ja&delivery=ja")
            let ourOutbox = try #require(try GatewayAnswer.parseOK(ours.text).first)
            let theirOutbox = try #require(try GatewayAnswer.parseOK(theirs.text).first)
            #expect(
                try GatewayAnswer.parseOK(ours.text).count == 1 && (try GatewayAnswer.parseOK(theirs.text).count) == 1)
            try await Self.expectSame(world, "\(schedule)&naar=31612345690", "OK", methods: [false])
            try await Self.expectSame(world, "\(schedule)&naar=31612345691,31612345692", "OK", methods: [true])
            // Charged (reserved) at acceptance on both sides: 5 × 0.0725.
            try await Self.expectSame(world, "\(login)&action=credits", "9.6375")
            // Scheduled messages are not in the report table on either side (only the header).
            try await Self.expectSame(world, "\(login)&action=rapport&aantal=10", GatewayAnswer.reportHeader)
            // The current minute is sent at once, and still answered with an outbox id on both sides.
            if Calendar.current.component(.second, from: Date()) >= 57 { try await Task.sleep(for: .seconds(4)) }
            let now = GatewayDateTime(Date())
            let thisMinute =
                "\(login)&afzender=Jansen&bericht=Nu&naar=31612345699&outboxid=ja&datum=\(now.scheduleText)"
            let ourNow = try GatewayAnswer.parseOK(try await Self.call(world.ours, thisMinute).text)
            let theirNow = try GatewayAnswer.parseOK(try await Self.call(world.simulator, thisMinute).text)
            #expect(ourNow.count == 1 && theirNow.count == 1)
            #expect(
                try await world.api.pool.query("SELECT status FROM message WHERE recipient = '31612345699'").first(
                    as: String.self) == "queued")
            // The simulator sends it when its outbox is next checked (every 250 ms).
            try await eventually("the simulator sent it") {
                try await Self.call(world.simulator, "\(login)&action=rapport&aantal=10").text.contains("31612345699")
            }
            try await Self.expectSame(world, "\(login)&action=credits", "9.565")

            // By outbox id: both messages of that send; a second time there is nothing left (122).
            let wallet = try await world.api.walletState(world.tenant.subAccountID)
            #expect(try await Self.call(world.ours, "\(login)&action=verwijderbericht&id=\(ourOutbox)").text == "OK")
            #expect(
                try await Self.call(world.simulator, "\(login)&action=verwijderbericht&id=\(theirOutbox)").text == "OK")
            #expect(
                try await Self.call(world.ours, "\(login)&action=verwijderbericht&id=\(ourOutbox)").text == "ERROR 122")
            #expect(
                try await Self.call(world.simulator, "\(login)&action=verwijderbericht&id=\(theirOutbox)").text
                    == "ERROR 122")
            try await Self.expectSame(world, "\(login)&action=credits", "9.71")
            // The refund is in the ledger: both reservations of each removed message voided, the wallet back by 2 × 0.0725.
            let afterID = try await world.api.walletState(world.tenant.subAccountID)
            #expect(afterID.available - wallet.available == 1_450 && wallet.pending - afterID.pending == 1_450)
            let voided = try await world.api.pool.query(
                """
                SELECT m.status, r.state, w.state FROM message m
                JOIN message_batch b ON b.id = m.batch_id
                JOIN ledger_transfer r ON r.id = m.retail_reservation_id JOIN ledger_transfer w ON w.id = m.wholesale_reservation_id
                WHERE b.outbox_id = \(Int64(ourOutbox)!)
                """
            ).decode((String, String, String).self)
            #expect(voided.count == 2 && voided.allSatisfy { $0 == ("cancelled", "voided", "voided") })

            // By number, written any way a number may be written: that number's scheduled message only.
            try await Self.expectSame(
                world, "\(login)&action=verwijderbericht&naar=%2B31%206%201234%205690", "OK", methods: [true])
            try await Self.expectSame(world, "\(login)&action=verwijderbericht&naar=31612345690", "ERROR 122")
            try await Self.expectSame(world, "\(login)&action=credits", "9.7825")
            // The rest of the outbox at once; then it is empty.
            try await Self.expectSame(world, "\(login)&action=verwijderoutbox", "OK", methods: [false])
            try await Self.expectSame(world, "\(login)&action=verwijderoutbox", "ERROR 122")
            try await Self.expectSame(world, "\(login)&action=credits", "9.9275")
            let after = try await world.api.walletState(world.tenant.subAccountID)
            #expect(after.available == 99_275 && after.pending == 725)
            #expect(
                try await world.api.pool.query("SELECT count(*) FROM message WHERE status <> 'cancelled'").first(
                    as: Int.self) == 1)
            // The audit log names the batch an outbox id removed.
            #expect(
                try await world.api.pool.query(
                    """
                    SELECT count(*) FROM audit_log a JOIN message_batch b ON b.id::text = a.target_id
                    WHERE a.action = 'message.cancel' AND b.outbox_id = \(Int64(ourOutbox)!)
                    """
                ).first(as: Int.self) == 1)
            #expect(try await world.api.auditCount(action: "message.cancel") == 3)
        }
    }

    /// A group of more members than a send may have (100 001, inserted set-based) is refused as the 10 000 check
    /// refuses listed recipients: 422 on `/group` through the REST API, 413 through the 1601 endpoint; expansion reads
    /// at most the limit plus one member.
    @Test func aGroupOverTheRecipientLimitIsRefusedWithoutReadingItWhole() async throws {
        try await Self.withWorld { world in
            let api = world.api
            let tenant = world.tenant
            let big = try await api.group(tenant.subAccountID, "alle", key: tenant.subAccountKey)
            let exact = try await api.group(tenant.subAccountID, "precies", key: tenant.subAccountKey)
            let subAccountID = UUID(uuidString: tenant.subAccountID)!
            try await api.pool.query(
                """
                INSERT INTO contact (reseller_id, sub_account_id, number)
                SELECT s.reseller_id, s.id, '3170' || lpad(n::text, 7, '0')
                FROM sub_account s, generate_series(1, 100001) AS n WHERE s.id = \(subAccountID)
                """)
            // Statistics first: the memberships' foreign key checks would otherwise plan for an empty contact table.
            try await api.pool.query("ANALYZE contact")
            try await api.pool.query(
                """
                INSERT INTO contact_group_member (reseller_id, sub_account_id, group_id, contact_id)
                SELECT reseller_id, sub_account_id, \(UUID(uuidString: big)!), id FROM contact
                WHERE sub_account_id = \(subAccountID) AND number LIKE '3170%'
                UNION ALL
                SELECT reseller_id, sub_account_id, \(UUID(uuidString: exact)!), id FROM contact
                WHERE sub_account_id = \(subAccountID) AND number BETWEEN '31700000001' AND '31700010000'
                """)
            #expect(try await api.expand(tenant.subAccountID, "alle") == .overLimit)
            #expect(try await api.expand(tenant.subAccountID, "ALLE ", limit: 100_001) != .overLimit)
            guard case .members(let members) = try await api.expand(tenant.subAccountID, "precies") else {
                Issue.record("a group of exactly the limit is expanded")
                return
            }
            #expect(members.count == 10_000 && members.first?.digits == "31700000001")
            #expect(try await api.expand(tenant.subAccountID, "precies", limit: 9_999) == .overLimit)

            for (group, listed) in [("alle", [String]()), ("precies", ["31612345678"])] {
                let refused = try await api.send(
                    tenant, ["sender": "Jansen", "text": "Hi", "recipients": listed, "group": group])
                #expect(refused.status == .unprocessableContent, "\(refused.json)")
                #expect(
                    refused.fieldError("/group")?.contains("more than 10000 recipients") == true, "\(refused.json)")
                let preview = try await api.send(
                    tenant, ["sender": "Jansen", "text": "Hi", "recipients": listed, "group": group, "test": true])
                #expect(preview.status == .unprocessableContent && preview.fieldError("/group") != nil)
            }
            let compatible = try await Self.call(
                world.ours, "\(world.login)&afzender=Jansen&bericht=Hallo&naar=groep&groep=alle", post: true)
            #expect(compatible.status == 413 && compatible.text.contains("10000"), "\(compatible)")
            #expect(try await api.sendRowCounts()[0] == 0)
        }
    }

    @Test func textsArePercentDecodedOnceAndABrokenEncodingIsRefusedNotSent() async throws {
        try await Self.withWorld { world in
            let send = "\(world.login)&afzender=Jansen&naar=31612345678"
            // Decoded exactly once: %2525 is "%25", + is a space and %2B a plus; UTF-8 arrives as itself.
            let accepted: [(String, String)] = [
                ("caf%C3%A9%20%E2%82%AC5", "café €5"), ("100%25", "100%"), ("%2525", "%25"), ("a+b%2Bc", "a b+c"),
                ("%F0%9F%98%80", "😀"),
            ]
            for (encoded, text) in accepted {
                for post in [false, true] {
                    let answer = try await Self.call(world.ours, "\(send)&bericht=\(encoded)", post: post)
                    #expect(answer.text == "OK", "\(encoded)")
                    let stored = try await world.api.pool.query(
                        "SELECT text FROM message_batch ORDER BY accepted_at DESC LIMIT 1"
                    ).first(as: String.self)
                    #expect(stored == text)
                }
            }
            // A reference is cut to 75 characters as PostgreSQL counts them (combining marks included).
            let combining = String(repeating: "e%CC%81", count: 80)
            #expect(try await Self.call(world.ours, "\(send)&bericht=Hallo&referentie=\(combining)").text == "OK")
            let reference = try await world.api.pool.query(
                "SELECT reference FROM message_batch ORDER BY accepted_at DESC LIMIT 1"
            ).first(as: String.self)
            #expect(reference?.unicodeScalars.count == 75)
            let count = try await world.api.sendRowCounts()[1]
            // Broken encodings get the code of the check they fail, and nothing is stored: Latin-1 bytes, a cut UTF-8
            // sequence, a bad escape, an encoded U+FFFD (what a broken conversion leaves).
            let refused: [(String, String)] = [
                ("\(send)&bericht=caf%E9", "ERROR 102"),
                ("\(send)&bericht=caf%C3", "ERROR 102"),
                ("\(send)&bericht=%EF%BF%BD", "ERROR 102"),
                ("\(send)&bericht=Hallo&referentie=%E9", "ERROR 102"),
                ("\(world.login)&afzender=Jans%E9n&naar=31612345678&bericht=Hallo", "ERROR 113"),
                ("\(world.login)&afzender=Jansen&naar=3161234%FF&bericht=Hallo", "ERROR 106"),
                ("\(world.login)&afzender=Jansen&naar=groep&groep=%FF&bericht=Hallo", "ERROR 125"),
                ("\(send)&bericht=Hallo&datum=%FF", "ERROR 121"),
                ("klantuser=%FF&klantpwd=x&bericht=Hallo", "ERROR 104"),
                ("klantuser=\(world.tenant.username)&klantpwd=%C3&bericht=Hallo", "ERROR 104"),
                ("\(world.login)&action=rapport&aantal=%FF", "ERROR 124"),
                ("\(world.login)&action=verwijderbericht&naar=%FF", "ERROR 122"),
            ]
            for (query, expected) in refused {
                for post in [false, true] {
                    let answer = try await Self.call(world.ours, query, post: post)
                    #expect(answer == Answer(status: 200, text: expected), "\(query)")
                }
            }
            // A bare or bad escape cannot even be put into a URL; in a form body it is refused the same way.
            for bad in ["100%", "%ZZ", "%4"] {
                #expect(
                    try await Self.call(world.ours, "\(send)&bericht=\(bad)", post: true)
                        == Answer(status: 200, text: "ERROR 102"))
            }
            #expect(try await world.api.sendRowCounts()[1] == count)
            // A body that is not a form is refused as such.
            let plain = try await Self.call(world.ours, "\(send)&bericht=Hallo", post: true, contentType: "text/plain")
            #expect(plain.status == 415)
            // A POST with everything in the query and no body (nor a content type), or with a Basic Authorization header
            // of the client's own: the JSON API's middleware leaves both alone.
            var bare = HTTPClientRequest(url: world.ours + GatewayCall.gatewayPath + "?\(world.login)&action=credits")
            bare.method = .POST
            bare.headers.add(name: "Authorization", value: "Basic dXNlcjpwYXNz")
            let bareAnswer = try await HTTPClient.shared.execute(bare, timeout: .seconds(10))
            let bareText = String(buffer: try await bareAnswer.body.collect(upTo: 1024))
            #expect(bareAnswer.status == .ok && bareText == "9.2025")
            // Too much at once: more than 10 000 numbers, or a body over 1 MiB, is refused whole.
            let numbers = Array(repeating: "31612345678", count: 10_001).joined(separator: ",")
            #expect(
                try await Self.call(
                    world.ours, "\(world.login)&afzender=Jansen&bericht=Hallo&naar=\(numbers)", post: true
                ).status == 413)
            #expect(
                try await Self.call(world.ours, "\(send)&bericht=\(String(repeating: "a", count: 1 << 20))", post: true)
                    .status == 413)
            // Query and body together: the query's parameters come first, as on the simulator.
            var mixed = HTTPClientRequest(url: world.ours + GatewayCall.gatewayPath + "?\(world.login)&action=credits")
            mixed.method = .POST
            mixed.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            mixed.body = .bytes(ByteBuffer(string: "action=rapport&aantal=1"))
            let response = try await HTTPClient.shared.execute(mixed, timeout: .seconds(10))
            #expect(String(buffer: try await response.body.collect(upTo: 1024)) == "9.2025")
        }
    }

    @Test func wrongPasswordsAreLimitedPerUsernameAndPerAddressWithoutStoppingTheValidUser() async throws {
        try await Self.withWorld(configure: { $0.trustedProxies = ["127.0.0.1/32", "::1/128"] }) { world in
            let username = world.tenant.username
            func attempt(_ password: String, from address: String, user: String? = nil) async throws -> Answer {
                try await Self.call(
                    world.ours,
                    "klantuser=\(user ?? username)&klantpwd=\(FormEncoding.percentEncode(password))&action=credits",
                    headers: [("X-Forwarded-For", "198.18.0.1, \(address)")])
            }
            // The owner logs in from its server.
            #expect(try await attempt(world.password, from: "192.0.2.10") == Answer(status: 200, text: "10"))

            // Ten wrong passwords for the username from ten addresses: each is checked and refused as usual …
            for index in 1...10 {
                #expect(
                    try await attempt("guess\(index)", from: "203.0.113.\(index)")
                        == Answer(status: 200, text: "ERROR 104"))
            }
            // … then the username is closed to addresses it never logged in from, the right password included (429,
            // the answer a wrong password gets, and when to come back) …
            let closed = try await attempt(world.password, from: "203.0.113.99")
            #expect(closed.status == 429 && closed.text == "ERROR 104" && Int(closed.retryAfter ?? "") ?? 0 > 0)
            // … while its owner's address keeps working at once.
            #expect(try await attempt(world.password, from: "192.0.2.10") == Answer(status: 200, text: "10"))
            // The SHA-1 form of the password is the password too.
            #expect(
                try await attempt(PasswordHasher.sha1Hex(world.password), from: "192.0.2.10")
                    == Answer(status: 200, text: "10"))

            // Twenty wrong passwords from one address, spread over usernames, close that address to everyone …
            for index in 1...20 {
                #expect(
                    try await attempt("wrong", from: "198.51.100.7", user: "nobody-\(index)")
                        == Answer(status: 200, text: "ERROR 104"))
            }
            let sibling = try await world.api.sibling(of: world.tenant, name: "Neighbour")
            let siblingName = try #require(
                try await world.api.pool.query(
                    "SELECT username FROM sub_account WHERE id = \(UUID(uuidString: sibling.id)!)"
                ).first(as: String.self))
            #expect(try await attempt(world.password, from: "198.51.100.7", user: siblingName).status == 429)
            // … but not the addresses next to it.
            #expect(
                try await attempt(world.password, from: "198.51.100.8", user: siblingName)
                    == Answer(status: 200, text: "0"))
            // Without a trusted proxy in front, X-Forwarded-For is ignored: the peer's address counts (tested by the
            // unit test of the throttle below; here every request comes from 127.0.0.1, a trusted proxy).
        }
    }

    @Test func deliveryStatesReachTheStatusAndTheReportTableWithTheirDates() async throws {
        try await TenancyHarness.run(configure: DeliveryReportTests.dispatching) { api in
            let tenant = try await api.sendingTenant("Reported", credits: "1").tenant
            let login = "klantuser=\(tenant.username)&klantpwd=\(FormEncoding.percentEncode(Self.password))"
            let ours = "http://127.0.0.1:\(api.client.port)"
            let sent = try await Self.call(
                ours, "\(login)&afzender=Jansen&bericht=Hoi&naar=31612345678,31612345679&delivery=ja&referentie=order-9"
            )
            let ids = try GatewayAnswer.parseOK(sent.text)
            #expect(ids.count == 2)
            let rows = try await api.pool.query("SELECT id, gateway_id::text FROM message ORDER BY position").decode(
                (UUID, String).self)
            #expect(rows.map(\.1) == ids)
            try await eventually("submitted") {
                try await api.pool.query("SELECT count(*) FROM message WHERE status = 'submitted'").first(as: Int.self)
                    == 2
            }
            func status(_ id: String) async throws -> String {
                try await Self.call(ours, "\(login)&smsid=\(id)&datum=ja", path: GatewayCall.reportPath).text
            }
            #expect(try await status(ids[0]) == "SUBMITTED")
            #expect(
                try await Self.call(ours, "\(login)&smsid=\(ids[0])", path: GatewayCall.reportPath).text == "SUBMITTED")

            // The upstream reports through the connection's callback: BUFFERED (dated when it reached us), then the end.
            let connection = try #require(
                try await api.call(.get, "/upstream-connections", key: api.adminKey).items.first)
            let callbackPath = try #require(connection["callbackPath"] as? String)
            let upstreamID = try #require(
                try await api.pool.query("SELECT upstream_id FROM message WHERE id = \(rows[0].0)").first(
                    as: String.self))
            let reference = rows[0].0.uuidString.lowercased()
            #expect(
                try await DeliveryReportTests.report(
                    api, callbackPath, smsID: upstreamID, status: "BUFFERED", reference: reference
                ).status == .ok)
            let buffered = try GatewayAnswer.parseDeliveryReport(try await status(ids[0]))
            #expect(buffered.status == .buffered && buffered.updatedAt != nil)
            #expect(
                try await Self.call(ours, "\(login)&smsid=\(ids[0])", path: GatewayCall.reportPath).text == "BUFFERED")
            #expect(
                try await DeliveryReportTests.report(
                    api, callbackPath, smsID: upstreamID, status: "DELIVERED", reference: reference,
                    datum: "20261126102310"
                ).status == .ok)
            #expect(try await status(ids[0]) == "DELIVERED 26/11/2026 10:23:10")
            #expect(try await status(ids[1]) == "SUBMITTED")

            let table = try await Self.call(ours, "\(login)&action=rapport&aantal=5").text
            #expect(
                table == """
                    smsid;naar;status;datum;referentie
                    \(ids[1]);31612345679;SUBMITTED;;order-9
                    \(ids[0]);31612345678;DELIVERED;26/11/2026 10:23:10;order-9
                    """)
            // The REST API knows the messages by the same numbers, and a scheduled REST send's outbox number works here.
            let read = try await api.call(
                .get, "/sub-accounts/\(tenant.subAccountID)/messages/\(rows[0].0.uuidString.lowercased())",
                key: tenant.subAccountKey)
            #expect(read["gatewayId"] as? Int == Int(ids[0]))
            let later = try await api.send(
                tenant,
                [
                    "sender": "Jansen", "text": "Later", "recipients": ["31612345670"],
                    "scheduleAt": Date().addingTimeInterval(3_600).formatted(.iso8601),
                ])
            let outboxID = try #require(later["outboxId"] as? Int)
            #expect(try await Self.call(ours, "\(login)&action=verwijderbericht&id=\(outboxID)").text == "OK")
            // Each request was counted under its operation.
            var metrics = HTTPClientRequest(url: ours + "/metrics")
            metrics.method = .GET
            let exposition = String(
                buffer: try await HTTPClient.shared.execute(metrics, timeout: .seconds(10)).body.collect(upTo: 1 << 22))
            #expect(
                exposition.contains(#"operation="gateway1601",status="200""#)
                    && exposition.contains(#"operation="gateway1601Report",status="200""#))
            // Charged for the delivered message only so far: 1 − 2 × 0.0725 reserved, one of them now posted.
            #expect(try await Self.call(ours, "\(login)&action=credits").text == "0.855")
            #expect(
                try await DeliveryReportTests.ledger(api, rows[0].0.uuidString.lowercased()).states == [
                    "posted", "posted",
                ])
        }
    }

    @Test func anotherSubAccountSeesAndRemovesNothingOfTheOthers() async throws {
        try await TenancyHarness.run { api in
            let victim = try await api.sendingTenant("Victim", credits: "1").tenant
            let intruder = try await api.sendingTenant("Intruder", credits: "1").tenant
            let ours = "http://127.0.0.1:\(api.client.port)"
            func login(_ tenant: TenancyHarness.Tenant) -> String {
                "klantuser=\(tenant.username)&klantpwd=\(FormEncoding.percentEncode(Self.password))"
            }
            let tomorrow = GatewayDateTime(Date().addingTimeInterval(86_400))
            let datum = GatewayDateTime(
                year: tomorrow.year, month: tomorrow.month, day: tomorrow.day, hour: 9, minute: 30)!.scheduleText
            let scheduled = try await Self.call(
                ours, "\(login(victim))&afzender=Jansen&bericht=Later&naar=31612345678&datum=\(datum)&outboxid=ja")
            let outboxID = try #require(try GatewayAnswer.parseOK(scheduled.text).first)
            let sent = try await Self.call(
                ours, "\(login(victim))&afzender=Jansen&bericht=Nu&naar=31612345679&delivery=ja")
            let messageID = try #require(try GatewayAnswer.parseOK(sent.text).first)

            for (query, expected) in [
                ("\(login(intruder))&action=verwijderbericht&id=\(outboxID)", "ERROR 122"),
                ("\(login(intruder))&action=verwijderbericht&naar=31612345678", "ERROR 122"),
                ("\(login(intruder))&action=verwijderoutbox", "ERROR 122"),
                ("\(login(intruder))&action=rapport&aantal=100", GatewayAnswer.reportHeader),
                ("\(login(intruder))&action=credits", "1"),
            ] {
                #expect(try await Self.call(ours, query).text == expected, "\(query)")
            }
            #expect(
                try await Self.call(
                    ours, "\(login(intruder))&smsid=\(messageID)&datum=ja", path: GatewayCall.reportPath
                ).text == "NONE")
            // Without credentials nobody is told anything (unlike the upstream's example URL).
            #expect(try await Self.call(ours, "smsid=\(messageID)", path: GatewayCall.reportPath).text == "ERROR 100")
            // The victim's messages are as they were.
            #expect(
                try await api.pool.query("SELECT status FROM message ORDER BY accepted_at").decode(String.self) == [
                    "scheduled", "queued",
                ])
            #expect(
                try await Self.call(ours, "\(login(victim))&smsid=\(messageID)", path: GatewayCall.reportPath).text
                    == "NONE")
            #expect(try await Self.call(ours, "\(login(victim))&action=verwijderbericht&id=\(outboxID)").text == "OK")
        }
    }

    @Test func guessesSentAllAtOnceAreCountedBeforeTheyAreCheckedWhileTheOwnersParallelLoginsShareOneCheck()
        async throws
    {
        // A slow hash, as in production, and a client with a connection per request, so that checks overlap.
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        do {
            try await Self.withWorld(configure: { $0.passwordIterations = 100_000 }) { world in
                let login = "klantuser=\(world.tenant.username)&action=credits&klantpwd="
                // 40 guesses at once from one client: only 10 (the username's limit) are checked, the rest refused unchecked.
                let guesses = try await withThrowingTaskGroup(of: Answer.self) { group in
                    for index in 0..<40 {
                        group.addTask { try await Self.call(world.ours, login + "guess\(index)", client: client) }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(
                    guesses.filter { $0.status == 200 }.count == 10 && guesses.filter { $0.status == 429 }.count == 30)
                #expect(guesses.allSatisfy { $0.text == "ERROR 104" })
            }
            try await Self.withWorld(configure: { $0.passwordIterations = 100_000 }) { world in
                // 30 requests of one integration at once, before its password was ever checked: one slow check serves
                // them all, so none of them is refused (30 separate checks would pass the address's limit of 20).
                let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                    for _ in 0..<30 {
                        group.addTask {
                            try await Self.call(world.ours, "\(world.login)&action=credits", client: client)
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(answers.allSatisfy { $0 == Answer(status: 200, text: "10") }, "\(answers)")
            }
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    @Test func aNulByteAndMultipartFormsAreReadAsTheUpstreamsPHPWouldWithoutLettingAnythingBrokenThrough() async throws
    {
        try await Self.withWorld { world in
            // NUL ends C strings: refused in texts, and a username with one is no username (counted against the address).
            #expect(
                try await Self.call(world.ours, "\(world.login)&afzender=Jansen&naar=31612345678&bericht=a%00b").text
                    == "ERROR 102")
            #expect(
                try await Self.call(
                    world.ours,
                    "klantuser=\(world.tenant.username)%00x&klantpwd=\(FormEncoding.percentEncode(world.password))"
                ).text
                    == "ERROR 104")
            // multipart/form-data (PHP's curl with an array of fields): raw UTF-8 values, no percent-decoding.
            func multipart(_ fields: [(String, [UInt8])]) async throws -> Answer {
                let boundary = "----sms\(UUID().uuidString.prefix(8))"
                var body: [UInt8] = []
                for (name, value) in fields {
                    body +=
                        Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n".utf8) + value
                        + Array("\r\n".utf8)
                }
                body += Array("--\(boundary)--\r\n".utf8)
                var request = HTTPClientRequest(url: world.ours + GatewayCall.gatewayPath)
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
                request.body = .bytes(ByteBuffer(bytes: body))
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                return Answer(
                    status: Int(response.status.code), text: String(buffer: try await response.body.collect(upTo: 4096))
                )
            }
            let credentials: [(String, [UInt8])] = [
                ("klantuser", Array(world.tenant.username.utf8)), ("klantpwd", Array(world.password.utf8)),
            ]
            let sent = try await multipart(
                credentials + [
                    ("afzender", Array("Jansen".utf8)), ("naar", Array("31612345678".utf8)),
                    ("bericht", Array("café 100%25 a+b".utf8)),
                    ("delivery", Array("ja".utf8)),
                ])
            let sentIDs = try GatewayAnswer.parseOK(sent.text)
            #expect(sent.status == 200 && sentIDs.count == 1, "\(sent)")
            let stored = try await world.api.pool.query(
                "SELECT text FROM message_batch ORDER BY accepted_at DESC LIMIT 1"
            ).first(as: String.self)
            #expect(stored == "café 100%25 a+b")
            #expect(
                try await multipart(credentials + [("action", Array("credits".utf8))])
                    == Answer(status: 200, text: "9.9275"))
            // Latin-1 bytes in a multipart value are refused like a bad escape in a form.
            #expect(
                try await multipart(
                    credentials + [
                        ("afzender", Array("Jansen".utf8)), ("naar", Array("31612345678".utf8)),
                        ("bericht", [0x63, 0x61, 0x66, 0xE9]),
                    ])
                    == Answer(status: 200, text: "ERROR 102"))
            #expect(try await world.api.sendRowCounts()[1] == 1)
            // A multipart body without its closing delimiter is no body.
            var broken = HTTPClientRequest(url: world.ours + GatewayCall.gatewayPath)
            broken.method = .POST
            broken.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=x")
            broken.body = .bytes(
                ByteBuffer(string: "--x\r\nContent-Disposition: form-data; name=\"klantuser\"\r\n\r\nabc\r\n"))
            #expect(try await HTTPClient.shared.execute(broken, timeout: .seconds(10)).status == .badRequest)
        }
    }

    @Test func theClientAddressIsThePeerOrWhatATrustedProxySaysAndIPv6CountsPerSlash64() throws {
        let proxies = [try #require(IPRange("10.0.0.0/8")), try #require(IPRange("::1/128"))]
        let proxy = try SocketAddress(ipAddress: "10.1.2.3", port: 4000)
        let stranger = try SocketAddress(ipAddress: "192.0.2.9", port: 4000)
        // From a trusted proxy: the last hop that is not one of the proxies.
        #expect(
            GatewayEndpoint.clientAddress(
                peer: proxy, forwardedFor: ["198.51.100.1, 203.0.113.5, 10.9.9.9"], trustedProxies: proxies)
                == "203.0.113.5")
        #expect(
            GatewayEndpoint.clientAddress(
                peer: proxy, forwardedFor: ["198.51.100.1", "203.0.113.6"], trustedProxies: proxies) == "203.0.113.6")
        #expect(GatewayEndpoint.clientAddress(peer: proxy, forwardedFor: [], trustedProxies: proxies) == "10.1.2.3")
        // From anyone else, or without trusted proxies, X-Forwarded-For is ignored: a client cannot pick its address.
        #expect(
            GatewayEndpoint.clientAddress(peer: stranger, forwardedFor: ["203.0.113.5"], trustedProxies: proxies)
                == "192.0.2.9")
        #expect(
            GatewayEndpoint.clientAddress(peer: proxy, forwardedFor: ["203.0.113.5"], trustedProxies: []) == "10.1.2.3")
        // One IPv6 client holds a /64: its addresses count together; an IPv4-mapped address counts as the IPv4 one.
        #expect(LoginThrottle.addressKey("2001:db8:1:2::1") == LoginThrottle.addressKey("2001:db8:1:2:ffff::9"))
        #expect(LoginThrottle.addressKey("2001:db8:1:2::1") != LoginThrottle.addressKey("2001:db8:1:3::1"))
        #expect(LoginThrottle.addressKey("::ffff:192.0.2.1") == "192.0.2.1")
        #expect(LoginThrottle.addressKey("192.0.2.1") == "192.0.2.1")
    }

    @Test func aTrustedProxyThatIsNoAddressRangeStopsTheStart() throws {
        var configuration = HTTPSkeletonTests.configuration(
            try PostgresConfiguration(url: "postgresql://nobody@127.0.0.1:1/none"))
        configuration.trustedProxies = ["10.0.0.0/8", "proxy.example"]
        #expect(throws: ConfigurationError.self) { _ = try buildApplication(configuration: configuration) }
        #expect(try GatewayEndpointSettings.ranges(["10.0.0.0/8", "::1"]) == [IPRange("10.0.0.0/8"), IPRange("::1")])
    }

    @Test func theThrottleCountsWindowsAndForgetsThem() {
        let throttle = LoginThrottle(
            settings: LoginThrottleSettings(failuresPerAddress: 3, failuresPerUsername: 2, window: .seconds(60)))
        let start = ContinuousClock.now
        // A right password: taken, then given back, and the address becomes known for the username.
        #expect(throttle.reserve(username: "Anna", address: "10.0.0.1", now: start) == nil)
        throttle.release(username: "Anna", address: "10.0.0.1", now: start)
        throttle.recordSuccess(username: "Anna", address: "10.0.0.1", now: start)
        #expect(throttle.reserve(username: "anna", address: "10.0.0.2", now: start) == nil)
        #expect(throttle.refusal(username: "anna", address: "10.0.0.3", now: start) == nil)
        #expect(throttle.reserve(username: "ANNA", address: "10.0.0.3", now: start) == nil)
        // The username is closed to strangers, with the rest of the window to wait, but not to the address it logged in from.
        #expect(throttle.refusal(username: "anna", address: "10.0.0.4", now: start + .seconds(10)) == .seconds(50))
        #expect(throttle.reserve(username: "anna", address: "10.0.0.4", now: start + .seconds(10)) == .seconds(50))
        #expect(throttle.refusal(username: "anna", address: "10.0.0.1", now: start + .seconds(10)) == nil)
        // An address with three failures is closed for every username, known or not; names no account can have count
        // against the address only.
        #expect(throttle.reserve(username: "bob", address: "10.0.0.3", now: start) == nil)
        #expect(throttle.reserve(username: nil, address: "10.0.0.3", now: start) == nil)
        #expect(throttle.refusal(username: "dora", address: "10.0.0.3", now: start + .seconds(1)) != nil)
        #expect(throttle.refusal(username: "dora", address: "10.0.0.5", now: start + .seconds(1)) == nil)
        // After the window, everything opens again.
        #expect(throttle.refusal(username: "anna", address: "10.0.0.4", now: start + .seconds(61)) == nil)
        #expect(throttle.refusal(username: "dora", address: "10.0.0.3", now: start + .seconds(61)) == nil)
    }

}
