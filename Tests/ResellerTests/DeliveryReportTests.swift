import AsyncHTTPClient
import CompatibleGateway
import Foundation
import Gateway1601
import HTTPTypes
import Ledger
import Messaging
import NIOCore
import NIOHTTP1
import PostgresLibpq
import ResellerApp
import ResellerCore
import SMSCore
import Testing

/// Delivery reports in through the callback endpoint, and settlement of the reservations.
@Suite(.serialized, .timeLimit(.minutes(3))) struct DeliveryReportTests {
    /// Polls at once after submission, every 10 ms; expires after an hour.
    static var pollEveryTenMilliseconds: ReportPoller.Settings {
        var settings = ReportPoller.Settings()
        settings.interval = .milliseconds(10)
        settings.pollAfter = .zero
        settings.pollCap = .zero
        settings.expireAfter = .seconds(3_600)
        return settings
    }

    /// A tenant that has sent `recipients` (one message each, 0.0725 retail / 0.0500 wholesale to the Netherlands),
    /// all submitted to the built-in simulator; the connection's callback path.
    struct Sent {
        var tenant: TenancyHarness.Tenant
        var callbackPath: String
        var messages: [(id: String, upstreamID: String)]
    }

    static func sent(_ api: TenancyHarness, _ name: String, recipients: [String]) async throws -> Sent {
        let tenant = try await api.sendingTenant(name).tenant
        let connection = try #require(try await api.call(.get, "/upstream-connections", key: api.adminKey).items.first)
        let callbackPath = try #require(connection["callbackPath"] as? String)
        let reply = try await api.send(tenant, ["sender": "Jansen", "text": "Hi", "recipients": recipients])
        try #require(reply.status == .created, "\(reply.json)")
        let ids = (reply["messages"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        try await eventually("submitted") {
            try await api.pool.query(
                """
                SELECT count(*) FROM message WHERE id = ANY (\(ids.map { UUID(uuidString: $0)! })) AND status = 'submitted'
                """
            ).first(as: Int.self) == ids.count
        }
        var messages: [(String, String)] = []
        for id in ids {
            let upstreamID = try #require(
                try await api.pool.query("SELECT upstream_id FROM message WHERE id = \(UUID(uuidString: id)!)").first(
                    as: String.self))
            messages.append((id, upstreamID))
        }
        return Sent(tenant: tenant, callbackPath: callbackPath, messages: messages)
    }

    static func report(
        _ api: TenancyHarness, _ path: String, smsID: String, status: String, reference: String?,
        datum: String = "20261126101500"
    ) async throws -> Reply {
        var query = "smsid=\(smsID)&datum=\(datum)&status=\(status.replacingOccurrences(of: " ", with: "%20"))"
        if let reference { query += "&referentie=\(reference)" }
        return try await api.call(.get, "\(path)?\(query)", key: nil)
    }

    /// Each reservation of `messageID` with its state, and the transfers that resolved or followed it.
    static func ledger(_ api: TenancyHarness, _ messageID: String) async throws -> (
        states: [String], resolutions: [String], late: Int
    ) {
        let id = UUID(uuidString: messageID)!
        let states = try await api.pool.query(
            """
            SELECT t.state FROM message m JOIN ledger_transfer t ON t.id IN (m.retail_reservation_id, m.wholesale_reservation_id)
            WHERE m.id = \(id) ORDER BY t.amount DESC
            """
        ).decode(String.self)
        let resolutions = try await api.pool.query(
            """
            SELECT r.kind || ':' || r.code FROM message m JOIN ledger_transfer r ON r.pending_id IN (m.retail_reservation_id, m.wholesale_reservation_id)
            WHERE m.id = \(id) ORDER BY r.seq
            """
        ).decode(String.self)
        let late =
            try await api.pool.query(
                "SELECT count(*) FROM ledger_transfer WHERE code = 'late_delivery' AND reference = \(messageID)"
            ).first(as: Int.self) ?? 0
        return (states, resolutions, late)
    }

    static let dispatching: @Sendable (inout AppConfiguration) -> Void = {
        $0.dispatcher = true
        $0.dispatch.pollInterval = .milliseconds(50)
        $0.databasePoolMaximum = 10
    }

    @Test func finalReportsSettleByTheDefaultPolicyOnceAndALateDeliveryIsChargedByANewTransfer() async throws {
        try await TenancyHarness.run(configure: Self.dispatching) { api in
            let sent = try await Self.sent(api, "Reports", recipients: ["31612345671", "31612345672", "31612345673"])
            let (delivered, notDelivered, rejected) = (sent.messages[0], sent.messages[1], sent.messages[2])
            let funded = try await api.walletState(sent.tenant.subAccountID)
            #expect(funded.pending == 3 * 725)

            // DELIVERED: both legs posted. NOT DELIVERED and REJECTED: both refunded.
            var reply = try await Self.report(
                api, sent.callbackPath, smsID: delivered.upstreamID, status: "DELIVERED", reference: delivered.id)
            #expect(reply.status == .ok)
            reply = try await Self.report(
                api, sent.callbackPath, smsID: notDelivered.upstreamID, status: "NOT DELIVERED",
                reference: notDelivered.id)
            #expect(reply.status == .ok)
            reply = try await Self.report(
                api, sent.callbackPath, smsID: rejected.upstreamID, status: "REJECTED", reference: rejected.id)
            #expect(reply.status == .ok)
            var wallet = try await api.walletState(sent.tenant.subAccountID)
            #expect(wallet.pending == 0 && wallet.available == funded.available + 2 * 725, "\(wallet)")
            #expect(try await Self.ledger(api, delivered.id).states == ["posted", "posted"])
            #expect(try await Self.ledger(api, notDelivered.id).states == ["voided", "voided"])
            #expect(
                try await Self.ledger(api, rejected.id).resolutions == [
                    "void_pending:message_rejected", "void_pending:message_rejected",
                ])
            let base = "/sub-accounts/\(sent.tenant.subAccountID)/messages"
            #expect(
                try await api.call(.get, "\(base)/\(delivered.id)", key: sent.tenant.subAccountKey).string("status")
                    == "delivered")
            #expect(
                try await api.call(.get, "\(base)/\(rejected.id)", key: sent.tenant.subAccountKey).string("status")
                    == "rejected")

            // The same report again, and a non-final one after the final: kept in the history, nothing else changes.
            let transfers = try await api.count("ledger_transfer")
            _ = try await Self.report(
                api, sent.callbackPath, smsID: delivered.upstreamID, status: "DELIVERED", reference: delivered.id)
            _ = try await Self.report(
                api, sent.callbackPath, smsID: delivered.upstreamID, status: "BUFFERED", reference: delivered.id)
            #expect(try await api.count("ledger_transfer") == transfers)
            let message = try await api.call(.get, "\(base)/\(delivered.id)", key: sent.tenant.subAccountKey)
            #expect(message.string("status") == "delivered")
            let history = (message["history"] as? [[String: Any]] ?? []).compactMap { $0["status"] as? String }
            #expect(
                history == [
                    "accepted", "queued", "submitted", "report:delivered", "delivered", "report:delivered",
                    "report:buffered",
                ], "\(history)")

            // Refunded, then delivered after all: charged again by a new transfer; the refund stays in the history.
            _ = try await Self.report(
                api, sent.callbackPath, smsID: notDelivered.upstreamID, status: "DELIVERED", reference: notDelivered.id)
            let late = try await Self.ledger(api, notDelivered.id)
            #expect(late.states == ["voided", "voided"] && late.late == 2)
            wallet = try await api.walletState(sent.tenant.subAccountID)
            #expect(wallet.available == funded.available + 725, "\(wallet)")
            #expect(
                try await api.call(.get, "\(base)/\(notDelivered.id)", key: sent.tenant.subAccountKey).string("status")
                    == "delivered")
            let sums = try await api.pool.query(
                "SELECT sum(credits_posted - debits_posted)::bigint, sum(credits_pending - debits_pending)::bigint FROM ledger_account"
            ).first(as: (Int64, Int64).self)
            #expect(sums?.0 == 0 && sums?.1 == 0)
        }
    }

    /// One group of reports settles its messages set-based: here one group delivers one message, refunds another,
    /// and refunds a third and then, later in the same group, delivers it after all (which must see the refund).
    @Test func oneGroupSettlesManyMessagesAndALateDeliveryInsideItSeesTheRefundBeforeIt() async throws {
        try await TenancyHarness.run(configure: Self.dispatching) { api in
            let sent = try await Self.sent(api, "Group", recipients: ["31612345671", "31612345672", "31612345673"])
            let funded = try await api.walletState(sent.tenant.subAccountID)
            let connectionID = try #require(
                try await api.pool.query("SELECT id FROM upstream_connection").first(as: UUID.self))
            let (a, b, c) = (sent.messages[0], sent.messages[1], sent.messages[2])
            let report = { (message: (id: String, upstreamID: String), status: DeliveryStatus) in
                IncomingReport(
                    connectionID: connectionID, smsID: message.upstreamID, status: status, reference: message.id,
                    source: .callback)
            }
            let outcomes = try await DeliveryReportRepository(pool: api.pool).apply([
                report(a, .delivered), report(b, .notDelivered), report(c, .notDelivered), report(c, .delivered),
            ])
            #expect(outcomes == [.applied, .applied, .applied, .applied])
            #expect(try await Self.ledger(api, a.id).states == ["posted", "posted"])
            #expect(try await Self.ledger(api, b.id).states == ["voided", "voided"])
            let late = try await Self.ledger(api, c.id)
            #expect(late.states == ["voided", "voided"] && late.late == 2, "\(late)")
            // Charged for a and c, refunded b.
            let wallet = try await api.walletState(sent.tenant.subAccountID)
            #expect(wallet.pending == 0 && wallet.available == funded.available + 725, "\(wallet)")
            let statuses = try await api.pool.query(
                "SELECT status FROM message WHERE id = ANY (\([a, b, c].map { UUID(uuidString: $0.id)! })) ORDER BY status"
            ).decode(String.self)
            #expect(statuses == ["delivered", "delivered", "not_delivered"])
            let history = try await api.pool.query(
                "SELECT status FROM message_event WHERE message_id = \(UUID(uuidString: c.id)!) ORDER BY seq"
            ).decode(String.self)
            #expect(
                history.suffix(4) == ["report:not_delivered", "not_delivered", "report:delivered", "delivered"],
                "\(history)")
        }
    }

    @Test func unknownTokensMalformedReportsAndForeignIdsChangeNothing() async throws {
        try await TenancyHarness.run(configure: Self.dispatching) { api in
            let sent = try await Self.sent(api, "Strict", recipients: ["31612345671"])
            let message = sent.messages[0]
            let before = try await api.walletState(sent.tenant.subAccountID)
            let events = try await api.count("message_event")

            let unknown = try await Self.report(
                api, "/callbacks/1601/\(String(repeating: "0", count: 64))", smsID: message.upstreamID,
                status: "DELIVERED", reference: message.id)
            #expect(unknown.status == .notFound)
            #expect(
                try await Self.report(
                    api, "/callbacks/1601/short", smsID: message.upstreamID, status: "DELIVERED", reference: message.id
                ).status == .notFound)
            for (smsID, status, datum) in [
                ("", "DELIVERED", "20261126101500"), (message.upstreamID, "LOST", "20261126101500"),
                (message.upstreamID, "DELIVERED", "2026112610"), ("a b", "DELIVERED", "20261126101500"),
            ] {
                let reply = try await Self.report(
                    api, sent.callbackPath, smsID: smsID.replacingOccurrences(of: " ", with: "%20"), status: status,
                    reference: message.id, datum: datum)
                #expect(reply.status == .badRequest, "\(smsID) \(status) \(datum): \(reply.status)")
            }
            // Another upstream id, or no such message: answered OK (the upstream must not retry), kept for the admins.
            #expect(
                try await Self.report(
                    api, sent.callbackPath, smsID: "999999", status: "DELIVERED", reference: message.id
                ).status == .ok)
            #expect(
                try await Self.report(
                    api, sent.callbackPath, smsID: message.upstreamID, status: "DELIVERED", reference: UUID().uuidString
                ).status == .ok)
            #expect(
                try await Self.report(
                    api, sent.callbackPath, smsID: message.upstreamID, status: "DELIVERED", reference: nil
                ).status == .ok)
            #expect(try await api.count("unmatched_delivery_report") == 3)
            #expect(try await api.walletState(sent.tenant.subAccountID) == before)
            #expect(try await api.count("message_event") == events)
            #expect(
                try await api.pool.query("SELECT status FROM message WHERE id = \(UUID(uuidString: message.id)!)")
                    .first(as: String.self) == "submitted")
        }
    }

    @Test func racingReportsSettleEachMessageExactlyOnce() async throws {
        try await TenancyHarness.run(configure: Self.dispatching) { api in
            let recipients = (0..<6).map { "3161234560\($0)" }
            let sent = try await Self.sent(api, "Races", recipients: recipients)
            let funded = try await api.walletState(sent.tenant.subAccountID)
            // For every message, at once: five DELIVERED, three NOT DELIVERED, two BUFFERED.
            try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for message in sent.messages {
                    for status in Array(repeating: "DELIVERED", count: 5) + Array(repeating: "NOT DELIVERED", count: 3)
                        + ["BUFFERED", "BUFFERED"]
                    {
                        group.addTask {
                            try await Self.report(
                                api, sent.callbackPath, smsID: message.upstreamID, status: status, reference: message.id
                            ).status
                        }
                    }
                }
                for try await status in group { #expect(status == .ok) }
            }
            // Whatever the order, each message ends delivered and is charged once: by its post, or by a late charge
            // after a refund.
            for message in sent.messages {
                let ledger = try await Self.ledger(api, message.id)
                let charged =
                    ledger.states == ["posted", "posted"]
                    ? 1 : (ledger.states == ["voided", "voided"] && ledger.late == 2 ? 1 : 0)
                #expect(charged == 1, "\(message.id): \(ledger)")
                #expect(
                    try await api.pool.query("SELECT status FROM message WHERE id = \(UUID(uuidString: message.id)!)")
                        .first(as: String.self) == "delivered")
            }
            let wallet = try await api.walletState(sent.tenant.subAccountID)
            #expect(
                wallet.pending == 0 && wallet.available == funded.available,
                "every message charged exactly its price: \(wallet) vs \(funded)")
            #expect(
                try await api.pool.query("SELECT count(*) FROM message_event WHERE status LIKE 'report:%'").first(
                    as: Int.self) == 60)
        }
    }

    @Test func theSimulatorsOwnCallbacksSettleTheMessages() async throws {
        try await TenancyHarness.run(configure: Self.dispatching) { api in
            let connection = try #require(
                try await api.call(.get, "/upstream-connections", key: api.adminKey).items.first)
            let simulator = try #require(connection["baseUrl"] as? String)
            let port = api.client.port
            // The sandbox account calls back our endpoint, every message delivered at once.
            var request = HTTPClientRequest(url: simulator + "/_sim/accounts/sandbox")
            request.method = .PATCH
            request.body = .bytes(
                ByteBuffer(
                    string: #"{"callbackURL":"http://127.0.0.1:\#(port)\#(connection["callbackPath"] as! String)"}"#))
            #expect(try await HTTPClient.shared.execute(request, timeout: .seconds(5)).status == .ok)
            let sent = try await Self.sent(api, "Simulated", recipients: ["31612345671", "31612345672"])
            for message in sent.messages {
                var status = HTTPClientRequest(url: simulator + "/_sim/messages/\(message.upstreamID)/status")
                status.method = .POST
                status.body = .bytes(ByteBuffer(string: #"{"status":"DELIVERED"}"#))
                #expect(try await HTTPClient.shared.execute(status, timeout: .seconds(5)).status == .ok)
            }
            try await eventually("both delivered") {
                try await api.pool.query("SELECT count(*) FROM message WHERE status = 'delivered'").first(as: Int.self)
                    == 2
            }
            #expect(try await api.walletState(sent.tenant.subAccountID).pending == 0)
        }
    }
}

extension DeliveryReportTests {
    @Test func refundPoliciesDecideWhichLegsAreChargedPerResellerAndSubAccount() async throws {
        try await TenancyHarness.run(configure: Self.dispatching) { api in
            let sent = try await Self.sent(api, "Policies", recipients: ["31612345671", "31612345672", "31612345673"])
            let tenant = sent.tenant
            let reseller = "/resellers/\(tenant.resellerID)/refund-policy"
            let sub = "/sub-accounts/\(tenant.subAccountID)/refund-policy"
            var policy = try await api.call(.get, reseller, key: tenant.resellerKey)
            #expect((policy["retail"] as? [String: Any])?["source"] as? String == "default")
            #expect((policy["wholesale"] as? [String: Any])?["chargedStates"] as? [String] == ["delivered"])

            // Who may set what.
            #expect(
                try await api.call(
                    .put, "\(reseller)/retail", key: api.adminKey, body: ["chargedStates": ["delivered"]]
                ).status == .forbidden)
            #expect(
                try await api.call(
                    .put, "\(reseller)/wholesale", key: tenant.resellerKey, body: ["chargedStates": ["delivered"]]
                ).status == .forbidden)
            #expect(
                try await api.call(.put, sub, key: tenant.subAccountKey, body: ["chargedStates": ["delivered"]]).status
                    == .forbidden)
            #expect(
                try await api.call(
                    .put, "\(reseller)/retail", key: tenant.resellerKey, body: ["chargedStates": ["lost"]]
                ).status == .badRequest)

            // The reseller charges not-delivered messages to its sub-accounts; this sub-account has an override that
            // charges rejected ones instead; the admin charges the reseller for everything but expired.
            policy = try await api.call(
                .put, "\(reseller)/retail", key: tenant.resellerKey,
                body: ["chargedStates": ["not_delivered", "delivered"]])
            #expect(
                (policy["retail"] as? [String: Any])?["chargedStates"] as? [String] == ["delivered", "not_delivered"])
            _ = try await api.call(
                .put, "\(reseller)/wholesale", key: api.adminKey,
                body: ["chargedStates": ["delivered", "not_delivered", "rejected"]])
            let own = try await api.call(
                .put, sub, key: tenant.resellerKey, body: ["chargedStates": ["delivered", "rejected"]])
            #expect(own.string("source") == "own" && own["chargedStates"] as? [String] == ["delivered", "rejected"])
            #expect(try await api.call(.get, sub, key: tenant.subAccountKey).string("source") == "own")
            #expect(try await api.auditCount(action: "refund_policy.set") == 3)

            let (first, second, third) = (sent.messages[0], sent.messages[1], sent.messages[2])
            _ = try await Self.report(
                api, sent.callbackPath, smsID: first.upstreamID, status: "NOT DELIVERED", reference: first.id)
            #expect(
                try await Self.ledger(api, first.id).states == ["voided", "posted"],
                "retail (the larger) refunded by the override, wholesale charged")
            _ = try await Self.report(
                api, sent.callbackPath, smsID: second.upstreamID, status: "REJECTED", reference: second.id)
            #expect(try await Self.ledger(api, second.id).states == ["posted", "posted"])

            // Without the override the reseller's default applies.
            let cleared = try await api.call(.delete, sub, key: tenant.resellerKey)
            #expect(
                cleared.string("source") == "reseller"
                    && cleared["chargedStates"] as? [String] == ["delivered", "not_delivered"])
            _ = try await Self.report(
                api, sent.callbackPath, smsID: third.upstreamID, status: "NOT DELIVERED", reference: third.id)
            #expect(try await Self.ledger(api, third.id).states == ["posted", "posted"])
            // Another tenant sees none of it.
            let other = try await api.onboard("Other")
            #expect(try await api.call(.get, reseller, key: other.resellerKey).status == .notFound)
            #expect(try await api.call(.get, sub, key: other.subAccountKey).status == .notFound)
        }
    }
}

extension DeliveryReportTests {
    static func simulator(_ url: String, _ method: HTTPMethod, _ path: String, _ body: String) async throws
        -> HTTPResponseStatus
    {
        var request = HTTPClientRequest(url: url + path)
        request.method = method
        request.body = .bytes(ByteBuffer(string: body))
        return try await HTTPClient.shared.execute(request, timeout: .seconds(5)).status
    }

    @Test func withoutCallbacksMessagesArePolledAndThoseWithoutAFinalStateExpire() async throws {
        try await TenancyHarness.run(configure: {
            Self.dispatching(&$0)
            $0.reportPolling = true
            $0.reportPoll.interval = .milliseconds(100)
            $0.reportPoll.pollAfter = .milliseconds(300)
            $0.reportPoll.pollCap = .seconds(1)
            $0.reportPoll.expireAfter = .seconds(4)
        }) { api in
            let connection = try #require(
                try await api.call(.get, "/upstream-connections", key: api.adminKey).items.first)
            let simulator = try #require(connection["baseUrl"] as? String)
            // Messages move only when told to; the account has no callback URL: polling is the only way to learn.
            #expect(try await Self.simulator(simulator, .PUT, "/_sim/delivery", #"{"automatic":false}"#) == .ok)
            let sent = try await Self.sent(api, "Polled", recipients: ["31612345671", "31612345672"])
            let funded = try await api.walletState(sent.tenant.subAccountID)
            let (delivered, silent) = (sent.messages[0], sent.messages[1])
            #expect(
                try await Self.simulator(
                    simulator, .POST, "/_sim/messages/\(delivered.upstreamID)/status", #"{"status":"DELIVERED"}"#)
                    == .ok)

            try await eventually("the poll finds the delivery", timeout: .seconds(20)) {
                try await api.pool.query("SELECT status FROM message WHERE id = \(UUID(uuidString: delivered.id)!)")
                    .first(as: String.self) == "delivered"
            }
            #expect(try await Self.ledger(api, delivered.id).states == ["posted", "posted"])
            let details = try await api.pool.query(
                """
                SELECT detail FROM message_event WHERE message_id = \(UUID(uuidString: delivered.id)!) AND status = 'report:delivered'
                """
            ).decode(String.self)
            #expect(details.count == 1 && details[0].hasPrefix("poll: DELIVERED"), "\(details)")

            // The other one never gets a final state: polled again and again, then expired and refunded (the
            // default policy does not charge expired messages).
            try await eventually("the silent message expires", timeout: .seconds(30)) {
                try await api.pool.query("SELECT status FROM message WHERE id = \(UUID(uuidString: silent.id)!)").first(
                    as: String.self) == "expired"
            }
            #expect(try await Self.ledger(api, silent.id).states == ["voided", "voided"])
            let polls =
                try await api.pool.query("SELECT poll_attempts FROM message WHERE id = \(UUID(uuidString: silent.id)!)")
                .first(as: Int.self) ?? 0
            #expect(polls >= 2)
            let wallet = try await api.walletState(sent.tenant.subAccountID)
            #expect(wallet.pending == 0 && wallet.available == funded.available + 725)
            // A DELIVERED after expiry is charged by a new transfer, like after any refund.
            _ = try await Self.report(
                api, sent.callbackPath, smsID: silent.upstreamID, status: "DELIVERED", reference: silent.id)
            #expect(try await Self.ledger(api, silent.id).late == 2)
        }
    }
}

extension DeliveryReportTests {
    @Test func aReportThatOvertakesTheDispatchersCommitSuppliesTheUpstreamID() async throws {
        // No dispatcher: the message stays queued, as if its OK were still being recorded.
        try await TenancyHarness.run { api in
            let tenant = try await api.sendingTenant("Overtaken").tenant
            let connection = try #require(
                try await api.call(.get, "/upstream-connections", key: api.adminKey).items.first)
            let path = try #require(connection["callbackPath"] as? String)
            let reply = try await api.send(tenant, ["sender": "Jansen", "text": "Hi", "recipients": ["31612345678"]])
            let id = try #require((reply["messages"] as? [[String: Any]])?.first?["id"] as? String)
            let uuid = UUID(uuidString: id)!
            // Never claimed: nothing can have reached the upstream, so a report for it matches nothing.
            #expect(try await Self.report(api, path, smsID: "777", status: "DELIVERED", reference: id).status == .ok)
            #expect(try await api.count("unmatched_delivery_report") == 1)
            // Claimed (possibly sent): the report is the message's, with its upstream id.
            try await api.pool.query("UPDATE message_outbox SET possibly_sent = true WHERE message_id = \(uuid)")
            #expect(try await Self.report(api, path, smsID: "777", status: "DELIVERED", reference: id).status == .ok)
            let row = try #require(
                try await api.pool.query("SELECT status, upstream_id FROM message WHERE id = \(uuid)").first(
                    as: (String, String?).self))
            #expect(row.0 == "delivered" && row.1 == "777")
            #expect(try await Self.ledger(api, id).states == ["posted", "posted"])
            // Another id for it now is a mismatch.
            _ = try await Self.report(api, path, smsID: "778", status: "NOT DELIVERED", reference: id)
            #expect(try await api.count("unmatched_delivery_report") == 2)
        }
    }
}

extension DeliveryReportTests {
    @Test func callbacksRacingPollsSettleEachMessageExactlyOnce() async throws {
        try await TenancyHarness.run(configure: Self.dispatching) { api in
            let connection = try #require(
                try await api.call(.get, "/upstream-connections", key: api.adminKey).items.first)
            let simulator = try #require(connection["baseUrl"] as? String)
            #expect(try await Self.simulator(simulator, .PUT, "/_sim/delivery", #"{"automatic":false}"#) == .ok)
            let sent = try await Self.sent(api, "PollRace", recipients: (0..<5).map { "3161234570\($0)" })
            let funded = try await api.walletState(sent.tenant.subAccountID)
            for message in sent.messages {
                #expect(
                    try await Self.simulator(
                        simulator, .POST, "/_sim/messages/\(message.upstreamID)/status", #"{"status":"DELIVERED"}"#)
                        == .ok)
            }
            // Pollers of two "instances" (their own report queues) against callbacks saying DELIVERED and NOT DELIVERED.
            let pollers = (0..<2).map { _ in
                ReportPoller(
                    reports: DeliveryReports(pool: api.pool), connections: UpstreamConnectionRepository(pool: api.pool),
                    clients: UpstreamClients(logger: HTTPSkeletonTests.logger),
                    settings: Self.pollEveryTenMilliseconds, metrics: ServiceMetrics(),
                    logger: HTTPSkeletonTests.logger)
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for poller in pollers {
                    group.addTask { for _ in 0..<3 { await poller.runOnce() } }
                }
                for message in sent.messages {
                    for status in ["DELIVERED", "NOT DELIVERED", "DELIVERED"] {
                        group.addTask {
                            _ = try await Self.report(
                                api, sent.callbackPath, smsID: message.upstreamID, status: status, reference: message.id
                            )
                        }
                    }
                }
                try await group.waitForAll()
            }
            for message in sent.messages {
                let ledger = try await Self.ledger(api, message.id)
                let charged =
                    ledger.states == ["posted", "posted"]
                    ? 1 : (ledger.states == ["voided", "voided"] && ledger.late == 2 ? 1 : 0)
                #expect(charged == 1, "\(message.id): \(ledger)")
            }
            let wallet = try await api.walletState(sent.tenant.subAccountID)
            #expect(wallet.pending == 0 && wallet.available == funded.available, "\(wallet) vs \(funded)")
            let polled =
                try await api.pool.query("SELECT count(*) FROM message_event WHERE detail LIKE 'poll:%'").first(
                    as: Int.self) ?? 0
            #expect(polled >= 1, "the pollers took part")
        }
    }
}
