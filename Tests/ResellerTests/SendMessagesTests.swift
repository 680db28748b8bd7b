import CompatibleGateway
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

extension TenancyHarness {
    /// A tenant whose sub-account can send: priced in every layer, sender `Jansen` approved, `credits` on its wallet
    /// and plenty on its reseller's.
    func sendingTenant(_ name: String, credits: String = "100") async throws -> PricedTenant {
        let priced = try await pricedTenant(
            name, upstream: SendMessagesTests.upstream, wholesale: SendMessagesTests.wholesale,
            retail: SendMessagesTests.retail)
        try await approvedSender("Jansen", for: priced.tenant)
        try await fundWallet(priced.tenant.subAccountID, credits: credits)
        return priced
    }

    /// `POST /sub-accounts/{id}/messages` under a fresh (or the given) Idempotency-Key.
    func send(_ tenant: Tenant, key: String? = nil, idempotencyKey: String = UUID().uuidString, _ body: [String: Any])
        async throws -> Reply
    {
        try await call(
            .post, "/sub-accounts/\(tenant.subAccountID)/messages", key: key ?? tenant.subAccountKey, body: body,
            headers: LedgerAPITests.key(idempotencyKey))
    }

    /// The sub-account's wallet: available (credits − debits posted − debits pending) and pending debits, in minor units.
    func walletState(_ subAccountID: String) async throws -> (available: Int64, pending: Int64) {
        let wallet = try #require(
            try await LedgerRepository(pool: pool).wallet(subAccountID: UUID(uuidString: subAccountID)!))
        return (wallet.available, wallet.debitsPending)
    }

    /// Rows of the send path's tables: batches, messages, outbox rows, ledger transfers, idempotency records.
    func sendRowCounts() async throws -> [Int] {
        try await pool.query(
            """
            SELECT (SELECT count(*) FROM message_batch), (SELECT count(*) FROM message), (SELECT count(*) FROM message_outbox),
                   (SELECT count(*) FROM ledger_transfer), (SELECT count(*) FROM idempotency_record)
            """
        ).first(as: (Int, Int, Int, Int, Int).self).map { [$0.0, $0.1, $0.2, $0.3, $0.4] } ?? []
    }
}

@Suite(.serialized, .timeLimit(.minutes(5))) struct SendMessagesTests {
    static let upstream = [TestEntry("31", "0.0100"), TestEntry("44", "0.0100"), TestEntry("7", "0.0100")]
    static let wholesale = [
        TestEntry("31", "0.0500"), TestEntry("44", "0.0200"), TestEntry("7", "0.0200"),
        TestEntry("98", nil, "forbidden"),
    ]
    static let retail = [TestEntry("31", "0.0725"), TestEntry("44", "0.0400"), TestEntry("7", "0.0400")]

    @Test func acceptingWritesMessagesReservationsAndOutboxRowsAndAReplayWritesNothing() async throws {
        try await TenancyHarness.run { api in
            let priced = try await api.sendingTenant("Accept", credits: "1")
            let tenant = priced.tenant
            let before = try await api.walletState(tenant.subAccountID)
            let body: [String: Any] = [
                "sender": "Jansen", "text": String(repeating: "A", count: 200), "long": true, "reference": "order-1",
                "recipients": ["+31 6 1234 5678", "abc", "447911123456"], "invalidRecipients": "skip",
            ]
            let key = UUID().uuidString
            let reply = try await api.send(tenant, idempotencyKey: key, body)
            #expect(reply.status == .created, "\(reply.json)")
            #expect(reply.headers[HTTPField.Name("Idempotent-Replayed")!] == "false")
            let accepted = try reply.decode(Components.Schemas.SendAccepted.self)
            #expect(accepted.status == .queued && accepted.sender == "Jansen" && accepted.parts == 2)
            #expect(accepted.messageCount == 2 && accepted.retailTotal == "0.2250" && accepted.reference == "order-1")
            #expect(accepted.messages.map(\.number) == ["31612345678", "447911123456"])
            #expect(
                accepted.messages.map(\.price) == ["0.1450", "0.0800"] && accepted.messages.map(\.index) == [0, 2])
            #expect(accepted.refused.map(\.index) == [1] && accepted.refused.map(\.gatewayCode) == [106])

            // One message row per recipient with its prices and versions, two linked reservations each, an outbox row each.
            let batchID = accepted.batchId
            let rows = try await api.pool.query(
                """
                SELECT m.recipient, m.retail_price, m.wholesale_price, m.upstream_cost, m.retail_version_id, m.wholesale_version_id,
                       m.upstream_cost_version_id, r.amount, r.state, w.amount, w.state, r.linked_id = w.linked_id, o.due_at <= now()
                FROM message m
                JOIN ledger_transfer r ON r.id = m.retail_reservation_id
                JOIN ledger_transfer w ON w.id = m.wholesale_reservation_id
                JOIN message_outbox o ON o.message_id = m.id
                WHERE m.batch_id = \(UUID(uuidString: batchID)!) ORDER BY m.position
                """
            ).decode((String, Int64, Int64, Int64, UUID, UUID, UUID, Int64, String, Int64, String, Bool, Bool).self)
            #expect(rows.count == 2)
            #expect(rows.map(\.0) == ["31612345678", "447911123456"])
            #expect(rows.map(\.1) == [1_450, 800] && rows.map(\.2) == [1_000, 400] && rows.map(\.3) == [200, 200])
            #expect(
                rows.allSatisfy {
                    $0.4.apiString == priced.retailVersionID && $0.5.apiString == priced.wholesaleVersionID
                })
            #expect(rows.allSatisfy { $0.6.apiString == priced.upstreamVersionID })
            #expect(
                rows.allSatisfy {
                    $0.7 == $0.1 && $0.8 == "pending" && $0.9 == $0.2 && $0.10 == "pending" && $0.11 && $0.12
                })
            let after = try await api.walletState(tenant.subAccountID)
            #expect(after.available == before.available - 2_250 && after.pending == before.pending + 2_250)

            // The same key again: the stored answer, nothing new.
            let counts = try await api.sendRowCounts()
            let replay = try await api.send(tenant, idempotencyKey: key, body)
            #expect(replay.status == .created && replay.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            #expect(replay.string("batchId") == batchID && (replay["messages"] as? [[String: Any]])?.count == 2)
            #expect(try await api.sendRowCounts() == counts)
            #expect(try await api.walletState(tenant.subAccountID) == after)
            // The same key for another send: 422, nothing written.
            var other = body
            other["text"] = "Something else"
            let reused = try await api.send(tenant, idempotencyKey: key, other)
            #expect(reused.status == .unprocessableContent && reused.string("code") == "idempotency_key_reused")
            #expect(try await api.sendRowCounts() == counts)

            // Without skip, one invalid recipient refuses the whole send, each error reported per recipient.
            var strict = body
            strict["invalidRecipients"] = nil
            let all = try await api.send(tenant, strict)
            #expect(
                all.status == .unprocessableContent && all.string("code") == "recipients_refused"
                    && all["gatewayCode"] as? Int == 106)
            let errors = try #require(all["errors"] as? [[String: Any]])
            #expect(
                errors.map { $0["field"] as? String } == ["/recipients/1"]
                    && errors.map { $0["gatewayCode"] as? Int } == [106])
            #expect(try await api.sendRowCounts() == counts)

            // An admin reads but does not send; no key is 400.
            #expect(try await api.send(tenant, key: api.adminKey, body).status == .forbidden)
            let noKey = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/messages", key: tenant.subAccountKey, body: body)
            #expect(noKey.status == .badRequest)
            // Its reseller sends for it.
            #expect(
                try await api.send(
                    tenant, key: tenant.resellerKey, ["sender": "Jansen", "text": "Hi", "recipients": ["31612345678"]]
                ).status == .created)
        }
    }

    @Test func everyRefusalAnswersItsGatewayCodeAndWritesNothing() async throws {
        try await TenancyHarness.run { api in
            let priced = try await api.sendingTenant("Refusals", credits: "1")
            let tenant = priced.tenant
            _ = try await api.group(tenant.subAccountID, "Nobody", key: tenant.subAccountKey)
            // The upstream connection that sends for the reseller takes single parts only to Russia (7): 119.
            let connectionID = try #require(
                try await api.call(.get, "/upstream-connections", key: api.adminKey).items.first?["id"] as? String)
            let invalid = try await api.call(
                .patch, "/upstream-connections/\(connectionID)", key: api.adminKey,
                body: ["singlePartCountries": ["7", "28"]])
            #expect(invalid.status == .unprocessableContent && invalid.fieldError("/singlePartCountries/1") != nil)
            let patched = try await api.call(
                .patch, "/upstream-connections/\(connectionID)", key: api.adminKey,
                body: ["singlePartCountries": ["7", "7"]])
            #expect(patched.status == .ok && patched["singlePartCountries"] as? [String] == ["7"], "\(patched.json)")
            let counts = try await api.sendRowCounts()
            let ok: [String: Any] = ["sender": "Jansen", "text": "Hi", "recipients": ["31612345678"]]
            func refused(_ changes: [String: Any?], _ status: HTTPResponse.Status, _ code: Int, _ line: Int = #line)
                async throws
            {
                var body = ok
                for (key, value) in changes { body[key] = value }
                let reply = try await api.send(tenant, body.compactMapValues { $0 })
                #expect(reply.status == status, "line \(line): \(reply.json)")
                #expect(reply["gatewayCode"] as? Int == code, "line \(line): \(reply.json)")
                #expect(reply.headers[.contentType]?.hasPrefix("application/problem+json") == true, "line \(line)")
            }
            try await refused(["sender": nil], .unprocessableContent, 109)
            try await refused(["sender": "31612345678"], .unprocessableContent, 110)
            try await refused(["sender": "ThisNameIsTooLong"], .unprocessableContent, 111)
            try await refused(["sender": "Jan{sen}"], .unprocessableContent, 113)
            try await refused(["sender": "Bakery"], .unprocessableContent, 117)
            try await refused(["text": ""], .unprocessableContent, 102)
            try await refused(["text": String(repeating: "a", count: 161)], .unprocessableContent, 105)
            try await refused(["text": String(repeating: "a", count: 460), "long": true], .unprocessableContent, 118)
            try await refused(["recipients": []], .unprocessableContent, 103)
            try await refused(["recipients": [""]], .unprocessableContent, 103)
            try await refused(["recipients": ["12"]], .unprocessableContent, 106)
            try await refused(["recipients": ["2812345678"]], .unprocessableContent, 112)
            try await refused(["recipients": ["33612345678"]], .unprocessableContent, 107)
            try await refused(["recipients": ["989121234567"]], .unprocessableContent, 114)
            try await refused(
                ["recipients": ["79161234567"], "text": String(repeating: "a", count: 200), "long": true],
                .unprocessableContent, 119)
            try await refused(["recipients": [], "group": "Unknown"], .unprocessableContent, 125)
            try await refused(["recipients": [], "group": "Nobody"], .unprocessableContent, 126)
            try await refused(
                ["scheduleAt": Date().addingTimeInterval(-60).formatted(.iso8601)], .unprocessableContent, 121)
            try await refused(["recipients": Array(repeating: "31612345678", count: 14)], .paymentRequired, 108)
            // A single part to the single-part country is fine.
            #expect(
                try await api.send(
                    tenant, ["sender": "Jansen", "text": "Hi", "recipients": ["79161234567"], "test": true]
                ).status == .ok)
            // The first request-level problem is the answer; all are listed.
            let several = try await api.send(tenant, ["sender": "Bakery", "text": "", "recipients": ["31612345678"]])
            #expect(several["gatewayCode"] as? Int == 117)
            #expect((several["errors"] as? [[String: Any]])?.map { $0["gatewayCode"] as? Int } == [117, 102])
            #expect(try await api.sendRowCounts() == counts)

            // The account first: 116, 115 and a blocked reseller, as 403.
            _ = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/block", key: tenant.resellerKey,
                body: ["status": "blocked", "reason": "test"])
            try await refused(["text": ""], .forbidden, 116)
            _ = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/block", key: tenant.resellerKey,
                body: ["status": "blocked_payment", "reason": "unpaid"])
            try await refused([:], .forbidden, 115)
            _ = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/unblock", key: tenant.resellerKey, body: [:])
            _ = try await api.call(
                .post, "/resellers/\(tenant.resellerID)/block", key: api.adminKey,
                body: ["status": "blocked", "reason": "test"])
            try await refused([:], .forbidden, 116)
            _ = try await api.call(.post, "/resellers/\(tenant.resellerID)/unblock", key: api.adminKey, body: [:])

            // The reseller's wallet must cover the wholesale leg: empty it and the send is 108 too.
            let reseller = try await LedgerAPITests.wallet(api, key: tenant.resellerKey, kind: "reseller_wallet")
            let adjust = try await api.call(
                .post, "/resellers/\(tenant.resellerID)/adjustments", key: api.adminKey,
                body: ["amount": "-\(reseller["available"] as? String ?? "0")", "reason": "test"],
                headers: LedgerAPITests.key())
            #expect(adjust.status == .created, "\(adjust.json)")
            try await refused([:], .paymentRequired, 108)
            #expect(try await api.sendRowCounts()[0...2] == counts[0...2])

            // Malformed requests are 422 without a gateway code.
            let longReference = try await api.send(
                tenant,
                [
                    "sender": "Jansen", "text": "Hi", "recipients": ["31612345678"],
                    "reference": String(repeating: "r", count: 76),
                ])
            #expect(longReference.status == .unprocessableContent && longReference.fieldError("/reference") != nil)
            // 40 characters of two scalars each are 80 as the database counts them: refused, not a 500.
            let combining = try await api.send(
                tenant,
                [
                    "sender": "Jansen", "text": "Hi", "recipients": ["31612345678"],
                    "reference": String(repeating: "e\u{301}", count: 40),
                ])
            #expect(combining.status == .unprocessableContent && combining.fieldError("/reference") != nil)
            let badCallback = try await api.send(
                tenant, ["sender": "Jansen", "text": "Hi", "recipients": ["31612345678"], "callbackUrl": "ftp://x"])
            #expect(badCallback.status == .unprocessableContent && badCallback.fieldError("/callbackUrl") != nil)
        }
    }

    @Test func testModeRunsEveryCheckAndWritesNothing() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.sendingTenant("Testmode", credits: "1").tenant
            let counts = try await api.sendRowCounts()
            let wallet = try await api.walletState(tenant.subAccountID)
            let ok = try await api.send(
                tenant,
                ["sender": "Jansen", "text": "Hi", "recipients": ["31612345678", "447911123456"], "test": true])
            #expect(
                ok.status == .ok && ok["accepted"] as? Bool == true
                    && (ok["totals"] as? [String: Any])?["retailTotal"] as? String == "0.1125")
            let refused = try await api.send(
                tenant, ["sender": "Bakery", "text": "Hi", "recipients": ["31612345678"], "test": true])
            #expect(refused.status == .unprocessableContent && refused["gatewayCode"] as? Int == 117)
            let broke = try await api.send(
                tenant,
                [
                    "sender": "Jansen", "text": "Hi", "recipients": Array(repeating: "31612345678", count: 14),
                    "test": true,
                ])
            #expect(broke.status == .paymentRequired && broke["gatewayCode"] as? Int == 108)
            #expect(try await api.sendRowCounts() == counts)
            #expect(try await api.walletState(tenant.subAccountID) == wallet)
        }
    }

    @Test func aGroupIsExpandedWhenTheSendIsAccepted() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.sendingTenant("Groups").tenant
            let key = tenant.subAccountKey
            let anna = try await api.contact(tenant.subAccountID, "+31 6 1111 1111", key: key)
            let john = try await api.contact(tenant.subAccountID, "+44 7911 123456", key: key)
            let group = try await api.group(tenant.subAccountID, "Staff", key: key)
            let added = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/contact-groups/\(group)/members", key: key,
                body: ["contactIds": [anna, john]])
            #expect(added.status == .ok, "\(added.json)")
            let reply = try await api.send(
                tenant, ["sender": "Jansen", "text": "Meeting at 10", "recipients": ["31622222222"], "group": "staff"])
            #expect(reply.status == .created, "\(reply.json)")
            let messages = try #require(reply["messages"] as? [[String: Any]])
            #expect(messages.map { $0["number"] as? String } == ["31622222222", "31611111111", "447911123456"])
            #expect(messages.map { $0["index"] as? Int } == [0, 1, 2])
            // Later changes to the group do not change what was accepted.
            _ = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/contact-groups/\(group)/members/remove", key: key,
                body: ["contactIds": [anna]])
            let batch = try await api.call(
                .get, "/sub-accounts/\(tenant.subAccountID)/message-batches/\(reply.string("batchId")!)", key: key)
            #expect(batch["messageCount"] as? Int == 3 && batch.string("group") == "staff")
            // With its members a send may still have at most 10 000 recipients.
            let tooMany = try await api.send(
                tenant,
                [
                    "sender": "Jansen", "text": "Hi", "recipients": Array(repeating: "31622222222", count: 10_000),
                    "group": "staff",
                ])
            #expect(tooMany.status == .unprocessableContent && tooMany.fieldError("/group") != nil, "\(tooMany.json)")
        }
    }

    @Test func scheduledMessagesAreCancelledWithExactRefunds() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.sendingTenant("Schedule", credits: "10").tenant
            let funded = try await api.walletState(tenant.subAccountID)
            let later = Date().addingTimeInterval(3_600).formatted(.iso8601)
            let first = try await api.send(
                tenant,
                [
                    "sender": "Jansen", "text": "Later", "recipients": ["31612345678", "447911123456", "31612345679"],
                    "scheduleAt": later,
                ])
            #expect(first.status == .created && first.string("status") == "scheduled", "\(first.json)")
            let second = try await api.send(
                tenant, ["sender": "Jansen", "text": "Later too", "recipients": ["31612345670"], "scheduleAt": later])
            let now = try await api.send(tenant, ["sender": "Jansen", "text": "Now", "recipients": ["31612345671"]])
            #expect(now.string("status") == "queued")
            #expect(
                try await api.walletState(tenant.subAccountID).available == funded.available - (725 + 400 + 725) - 725
                    - 725)

            let ids = try #require(first["messages"] as? [[String: Any]]).compactMap { $0["id"] as? String }
            let base = "/sub-accounts/\(tenant.subAccountID)"
            // One message: its exact price comes back.
            let one = try await api.call(
                .post, "\(base)/messages/\(ids[1])/cancel", key: tenant.subAccountKey, headers: LedgerAPITests.key())
            #expect(
                one.status == .ok && one.string("refunded") == "0.0400" && one["cancelled"] as? [String] == [ids[1]],
                "\(one.json)")
            #expect(
                try await api.walletState(tenant.subAccountID).available == funded.available - (725 + 725) - 725 - 725)
            let message = try await api.call(.get, "\(base)/messages/\(ids[1])", key: tenant.subAccountKey)
            #expect(message.string("status") == "cancelled")
            #expect(
                (message["history"] as? [[String: Any]])?.map { $0["status"] as? String } == [
                    "accepted", "scheduled", "cancelled",
                ])
            let voided = try await api.pool.query(
                """
                SELECT count(*) FROM message m JOIN ledger_transfer t ON t.id IN (m.retail_reservation_id, m.wholesale_reservation_id)
                WHERE m.id = \(UUID(uuidString: ids[1])!) AND t.state = 'voided'
                """
            ).first(as: Int.self)
            #expect(voided == 2)
            // Twice: 409, nothing changes.
            let again = try await api.call(
                .post, "\(base)/messages/\(ids[1])/cancel", key: tenant.subAccountKey, headers: LedgerAPITests.key())
            #expect(again.status == .conflict && again.string("code") == "not_cancellable")

            // A message the dispatcher has claimed may already be upstream: 409.
            try await api.pool.query(
                "UPDATE message_outbox SET possibly_sent = true WHERE message_id = \(UUID(uuidString: ids[0])!)")
            let claimed = try await api.call(
                .post, "\(base)/messages/\(ids[0])/cancel", key: tenant.subAccountKey, headers: LedgerAPITests.key())
            #expect(
                claimed.status == .conflict && claimed.string("detail")?.contains("upstream") == true, "\(claimed.json)"
            )
            // The batch: what is left of it (the third message), the claimed one listed as not cancelled.
            let batch = try await api.call(
                .post, "\(base)/message-batches/\(first.string("batchId")!)/cancel", key: tenant.subAccountKey,
                headers: LedgerAPITests.key())
            #expect(
                batch.status == .ok && batch["cancelled"] as? [String] == [ids[2]]
                    && batch.string("refunded") == "0.0725", "\(batch.json)")
            #expect((batch["notCancelled"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [ids[0]])
            // Everything scheduled: the second send; not the queued one, not the claimed one.
            let all = try await api.call(
                .post, "\(base)/scheduled-messages/cancel", key: tenant.resellerKey, headers: LedgerAPITests.key())
            #expect(
                all.status == .ok && (all["cancelled"] as? [String])?.count == 1 && all.string("refunded") == "0.0725",
                "\(all.json)")
            #expect(try await api.walletState(tenant.subAccountID).available == funded.available - 725 - 725)
            let nothing = try await api.call(
                .post, "\(base)/scheduled-messages/cancel", key: tenant.resellerKey, headers: LedgerAPITests.key())
            #expect(nothing.status == .ok && (nothing["cancelled"] as? [String])?.isEmpty == true)
            #expect(try await api.auditCount(action: "message.cancel") == 3)
            _ = second

            // Another tenant's ids are unknown.
            let other = try await api.onboard("Other")
            #expect(
                try await api.call(
                    .post, "/sub-accounts/\(other.subAccountID)/messages/\(ids[2])/cancel", key: other.subAccountKey,
                    headers: LedgerAPITests.key()
                ).status == .notFound)
            #expect(
                try await api.call(
                    .get, "/sub-accounts/\(tenant.subAccountID)/messages/\(ids[2])", key: other.resellerKey
                ).status == .notFound)
        }
    }

    @Test func listsFilterAndTheBatchSummaryCountsPerStatus() async throws {
        try await TenancyHarness.run { api in
            let priced = try await api.sendingTenant("Lists")
            let tenant = priced.tenant
            let base = "/sub-accounts/\(tenant.subAccountID)"
            let first = try await api.send(
                tenant,
                [
                    "sender": "Jansen", "text": "One", "recipients": ["31612345678", "447911123456"],
                    "reference": "ref-a",
                ])
            let second = try await api.send(
                tenant,
                [
                    "sender": "Jansen", "text": "Two", "recipients": ["31612345678"],
                    "scheduleAt": Date().addingTimeInterval(600).formatted(.iso8601),
                ])
            #expect(first.status == .created && second.status == .created)
            let all = try await api.call(.get, "\(base)/messages", key: tenant.subAccountKey)
            #expect(all.items.count == 3 && all.items.first?["text"] as? String == "Two", "newest first")
            #expect(
                try await api.call(.get, "\(base)/messages?reference=ref-a", key: tenant.subAccountKey).items.count == 2
            )
            #expect(
                try await api.call(.get, "\(base)/messages?status=scheduled", key: tenant.subAccountKey).items.count
                    == 1)
            #expect(
                try await api.call(
                    .get, "\(base)/messages?recipient=%2B31%206%201234%205678", key: tenant.subAccountKey
                ).items.count == 2)
            #expect(
                try await api.call(
                    .get, "\(base)/messages?batchId=\(first.string("batchId")!)", key: tenant.subAccountKey
                ).items.count == 2)
            let future = Date().addingTimeInterval(60).formatted(.iso8601)
            #expect(
                try await api.call(.get, "\(base)/messages?from=\(future)", key: tenant.subAccountKey).items.isEmpty)
            // Pages of one, following the cursor, give every message once.
            var seen: [String] = []
            var cursor: String?
            repeat {
                let page = try await api.call(
                    .get, "\(base)/messages?limit=1" + (cursor.map { "&cursor=\($0)" } ?? ""), key: tenant.subAccountKey
                )
                seen += page.items.compactMap { $0["id"] as? String }
                cursor = page.string("nextCursor")
            } while cursor != nil
            #expect(seen.count == 3 && Set(seen).count == 3 && seen == all.items.compactMap { $0["id"] as? String })
            #expect(
                try await api.call(.get, "\(base)/messages?cursor=nonsense", key: tenant.subAccountKey).status
                    == .unprocessableContent)

            // Prices by role: the sub-account its retail price, the reseller also wholesale, the admin also the cost.
            let id = try #require((first["messages"] as? [[String: Any]])?.first?["id"] as? String)
            let own = try #require(
                try await api.call(.get, "\(base)/messages/\(id)", key: tenant.subAccountKey)["price"] as? [String: Any]
            )
            #expect(
                own["retail"] as? String == "0.0725" && own["retailVersionId"] as? String == priced.retailVersionID
                    && own["wholesale"] == nil && own["upstreamCost"] == nil)
            let resellers = try #require(
                try await api.call(.get, "\(base)/messages/\(id)", key: tenant.resellerKey)["price"] as? [String: Any])
            #expect(resellers["wholesale"] as? String == "0.0500" && resellers["upstreamCost"] == nil)
            let admins = try #require(
                try await api.call(.get, "\(base)/messages/\(id)", key: api.adminKey)["price"] as? [String: Any])
            #expect(
                admins["upstreamCost"] as? String == "0.0100"
                    && admins["upstreamCostVersionId"] as? String == priced.upstreamVersionID)

            let summary = try await api.call(
                .get, "\(base)/message-batches/\(first.string("batchId")!)", key: tenant.subAccountKey)
            #expect(
                summary.status == .ok && summary["messageCount"] as? Int == 2
                    && summary.string("retailTotal") == "0.1125")
            let statuses = try #require(summary["statuses"] as? [[String: Any]])
            #expect(
                statuses.count == 1 && statuses[0]["status"] as? String == "queued" && statuses[0]["count"] as? Int == 2
            )
            #expect(statuses[0]["retail"] as? String == "0.1125")
        }
    }

    @Test func aSendThatBreaksInsideAGroupFailsAloneAndLeavesNothingBehind() async throws {
        try await TenancyHarness.run(configure: { $0.databasePoolMaximum = 12 }) { api in
            let tenant = try await api.sendingTenant("Breaks").tenant
            // A failure in the middle of the writes (after the reservations, in the message rows) for one text only.
            try await api.pool.query(
                """
                CREATE FUNCTION test_break() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF (SELECT text FROM message_batch WHERE id = NEW.batch_id) = 'boom' THEN RAISE EXCEPTION 'injected failure'; END IF;
                    RETURN NEW;
                END $$
                """)
            try await api.pool.query(
                "CREATE TRIGGER test_break AFTER INSERT ON message FOR EACH ROW EXECUTE FUNCTION test_break()")
            let before = try await api.walletState(tenant.subAccountID)
            let counts = try await api.sendRowCounts()
            let statuses = try await withThrowingTaskGroup(of: (String, HTTPResponse.Status).self) { group in
                for index in 0..<16 {
                    let text = index == 7 ? "boom" : "fine \(index)"
                    group.addTask {
                        (
                            text,
                            try await api.send(
                                tenant, ["sender": "Jansen", "text": text, "recipients": ["31612345678"]]
                            ).status
                        )
                    }
                }
                return try await group.reduce(into: [String: HTTPResponse.Status]()) { $0[$1.0] = $1.1 }
            }
            #expect(statuses["boom"] == .internalServerError)
            #expect(statuses.filter { $0.key != "boom" }.values.allSatisfy { $0 == .created }, "\(statuses)")
            let after = try await api.sendRowCounts()
            // 15 batches, 15 messages, 15 outbox rows, 30 reservations, 15 keys: nothing of the broken one.
            #expect(after[0] - counts[0] == 15 && after[1] - counts[1] == 15 && after[2] - counts[2] == 15)
            #expect(after[3] - counts[3] == 30 && after[4] - counts[4] == 15)
            #expect(try await api.walletState(tenant.subAccountID).available == before.available - 15 * 725)
            #expect(
                try await api.pool.query("SELECT count(*) FROM message_batch WHERE text = 'boom'").first(as: Int.self)
                    == 0)
        }
    }

    @Test func concurrentSendsFromOneSubAccountNeverOverdrawIt() async throws {
        try await TenancyHarness.run(configure: { $0.databasePoolMaximum = 16 }) { api in
            // Room for 40 single-part messages to the Netherlands (0.0725 each), asked for by 32 clients × 5 sends.
            let tenant = try await api.sendingTenant("Hot", credits: "2.9").tenant
            let outcomes = try await withThrowingTaskGroup(of: [HTTPResponse.Status].self) { group in
                for client in 0..<32 {
                    group.addTask {
                        var statuses: [HTTPResponse.Status] = []
                        for send in 0..<5 {
                            let recipients =
                                (client + send) % 3 == 0 ? ["31612345678", "31612345679"] : ["31612345678"]
                            statuses.append(
                                try await api.send(
                                    tenant, ["sender": "Jansen", "text": "Hi \(client)", "recipients": recipients]
                                ).status)
                        }
                        return statuses
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(outcomes.allSatisfy { $0 == .created || $0 == .paymentRequired }, "\(Set(outcomes.map(\.code)))")
            let wallet = try await api.walletState(tenant.subAccountID)
            let messages = try await api.pool.query(
                """
                SELECT count(*), COALESCE(sum(retail_price), 0)::bigint FROM message WHERE sub_account_id = \(UUID(uuidString: tenant.subAccountID)!)
                """
            ).first(as: (Int, Int64).self)!
            // Never overdrawn; used up as far as the sends asked for allow (a two-message send may not fit the last 0.0725).
            #expect(wallet.available >= 0 && wallet.available < 1_450, "\(wallet)")
            #expect(
                messages.1 + wallet.available == 29_000 && wallet.pending == messages.1
                    && messages.1 == Int64(messages.0) * 725)
            // The ledger's invariants: postings and reservations sum to zero, each account's sums match its transfers.
            let sums = try await api.pool.query(
                """
                SELECT sum(credits_posted - debits_posted)::bigint, sum(credits_pending - debits_pending)::bigint FROM ledger_account
                """
            ).first(as: (Int64, Int64).self)!
            #expect(sums.0 == 0 && sums.1 == 0)
            let mismatched = try await api.pool.query(
                """
                SELECT count(*) FROM ledger_account a WHERE a.debits_pending <> COALESCE((
                    SELECT sum(t.amount) FROM ledger_transfer t WHERE t.debit_account_id = a.id AND t.state = 'pending'), 0)
                """
            ).first(as: Int.self)
            #expect(mismatched == 0)
            #expect(try await api.pool.query("SELECT count(*) FROM message_outbox").first(as: Int.self) == messages.0)
        }
    }
}

extension SendMessagesTests {
    @Test func aConnectionChangeWaitsForSendsInFlightAndQueuedMessagesFollowIt() async throws {
        try await TenancyHarness.run(configure: { $0.databasePoolMaximum = 8 }) { api in
            let tenant = try await api.sendingTenant("Follow").tenant
            let later = Date().addingTimeInterval(3_600).formatted(.iso8601)
            let sent = try await api.send(
                tenant, ["sender": "Jansen", "text": "Later", "recipients": ["31612345678"], "scheduleAt": later])
            let messageID = try #require(
                UUID(uuidString: (sent["messages"] as? [[String: Any]])?.first?["id"] as? String ?? ""))
            let created = try await api.call(
                .post, "/upstream-connections", key: api.adminKey,
                body: [
                    "name": "Second", "baseUrl": "http://127.0.0.1:9", "username": "u", "password": "p",
                ])
            let second = try #require(created.string("id"))
            let resellerID = try #require(UUID(uuidString: tenant.resellerID))

            // A send in flight holds its reseller's row FOR SHARE until it commits (as SendService.write does): the
            // assignment waits for it, then moves every queued message of the reseller, those of that send included.
            let assigned = try await api.pool.withTransaction { connection in
                try await connection.query("SELECT 1 FROM reseller WHERE id = \(resellerID) FOR SHARE")
                let assignment = Task {
                    try await api.call(
                        .put, "/resellers/\(tenant.resellerID)/upstream-connection", key: api.adminKey,
                        body: ["connectionId": second])
                }
                try await Task.sleep(for: .milliseconds(300))
                let waited =
                    try await api.pool.query(
                        """
                        SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND a.datname = current_database()
                        """
                    ).first(as: Int.self) ?? 0
                #expect(waited >= 1, "the assignment waits for the send's lock")
                return assignment
            }
            #expect(try await assigned.value.status == .ok)
            let connection = try await api.pool.query(
                "SELECT connection_id FROM message_outbox WHERE message_id = \(messageID)"
            ).first(as: UUID?.self)
            #expect(connection??.apiString == second)
            // And back to the default when the reseller's own connection is taken away.
            #expect(
                try await api.call(.delete, "/resellers/\(tenant.resellerID)/upstream-connection", key: api.adminKey)
                    .status == .ok)
            let back = try await api.pool.query(
                "SELECT connection_id = (SELECT connection_id FROM upstream_connection_default) FROM message_outbox WHERE message_id = \(messageID)"
            ).first(as: Bool.self)
            #expect(back == true)
        }
    }
}
