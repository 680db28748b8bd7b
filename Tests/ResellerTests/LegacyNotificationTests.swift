import CompatibleGateway
import Foundation
import Gateway1601
import HTTPTypes
import Ledger
import NIOHTTP1
import PostgresLibpq
import ResellerApp
import ResellerCore
import Testing
import Webhooks

/// Old-style (1601) delivery notifications: `GET <url>?smsid=…&datum=…&status=…&referentie=…` to `1601` endpoints and
/// to a send's own callback URL, through the webhook outbox and sender.
@Suite(.serialized, .timeLimit(.minutes(3))) struct LegacyNotificationTests {
    /// One message sent through the API and submitted to the built-in simulator.
    struct Sent {
        var messageID: UUID
        var batchID: UUID
        var gatewayID: Int64
        var upstreamID: String
        var callbackPath: String
    }

    /// Sends one message to 31612345671 with `extra` in the body; `beforeSubmission` runs between acceptance and the
    /// wait for its submission.
    static func send(
        _ api: TenancyHarness, _ tenant: TenancyHarness.Tenant, _ extra: [String: Any] = [:],
        beforeSubmission: (UUID) async throws -> Void = { _ in }
    ) async throws -> Sent {
        var body: [String: Any] = ["sender": "Jansen", "text": "Hi", "recipients": ["31612345671"]]
        body.merge(extra) { $1 }
        let reply = try await api.send(tenant, body)
        try #require(reply.status == .created, "\(reply.json)")
        let messageText = try #require((reply["messages"] as? [[String: Any]])?.first?["id"] as? String)
        let messageID = try #require(UUID(uuidString: messageText))
        let batchText = try #require(reply.string("batchId"))
        let batchID = try #require(UUID(uuidString: batchText))
        try await beforeSubmission(batchID)
        try await eventually("submitted") {
            try await api.pool.query("SELECT status FROM message WHERE id = \(messageID)").first(as: String.self)
                == "submitted"
        }
        let (gatewayID, upstreamID) = try #require(
            try await api.pool.query("SELECT gateway_id, upstream_id FROM message WHERE id = \(messageID)")
                .first(as: (Int64, String).self))
        let connection = try #require(try await api.call(.get, "/upstream-connections", key: api.adminKey).items.first)
        let callbackPath = try #require(connection["callbackPath"] as? String)
        return Sent(
            messageID: messageID, batchID: batchID, gatewayID: gatewayID, upstreamID: upstreamID,
            callbackPath: callbackPath)
    }

    /// The upstream reports `status` for `sent` (through the callback endpoint, as it would).
    static func report(_ api: TenancyHarness, _ sent: Sent, _ status: String) async throws {
        let reply = try await DeliveryReportTests.report(
            api, sent.callbackPath, smsID: sent.upstreamID, status: status, reference: sent.messageID.apiString)
        try #require(reply.status == .ok)
    }

    /// `yyyymmddhhmmss` in Amsterdam (seconds truncated) of the message's first history entry `status`, worked out by
    /// PostgreSQL rather than by the service's code. (Not DateFormatter: it rounds to milliseconds, so .9995 s and up
    /// would show the next second.)
    static func datum(_ api: TenancyHarness, _ messageID: UUID, _ status: String) async throws -> String {
        try #require(
            try await api.pool.query(
                """
                SELECT to_char(occurred_at AT TIME ZONE 'Europe/Amsterdam', 'YYYYMMDDHH24MISS') FROM message_event
                WHERE message_id = \(messageID) AND status = \(status) ORDER BY seq LIMIT 1
                """
            ).first(as: String.self), "no \(status) in the history")
    }

    /// The `datum` of the reports `report(_:_:_:)` sends (DeliveryReportTests' default): what a final status they set is
    /// dated by, literally, so that a time-zone mistake in reading or writing it cannot cancel out.
    static let reportDatum = "20261126101500"

    /// `yyyymmddhhmmss` in Amsterdam of the time the final report gave (what a final status is dated by).
    static func reportedDatum(_ api: TenancyHarness, _ messageID: UUID) async throws -> String {
        try #require(
            try await api.pool.query(
                """
                SELECT to_char(reported_at AT TIME ZONE 'Europe/Amsterdam', 'YYYYMMDDHH24MISS') FROM message WHERE id = \(messageID)
                """
            ).first(as: String.self), "no report time")
    }

    /// A `1601` endpoint written straight into the table (for addresses the API would refuse).
    @discardableResult
    static func legacyEndpoint(
        _ api: TenancyHarness, _ tenant: TenancyHarness.Tenant, url: String, resellerWide: Bool = false
    ) async throws -> UUID {
        try #require(
            try await api.pool.query(
                """
                INSERT INTO webhook_endpoint (reseller_id, sub_account_id, url, format, event_types, secret, created_by)
                VALUES (\(UUID(uuidString: tenant.resellerID)!), \(resellerWide ? nil : UUID(uuidString: tenant.subAccountID)!), \(url), '1601',
                        '{message.status_changed}', \("whsec_" + String(repeating: "s", count: 40)), 'test')
                RETURNING id
                """
            ).first(as: UUID.self))
    }

    static func gets(_ receiver: WebhookReceiver, path: String = "/hook") -> [WebhookReceiver.Received] {
        receiver.received.filter { $0.method == .get && $0.path == path }
    }

    @Test func aLegacyEndpointGetsSubmittedBufferedAndDeliveredExactlyAsTheUpstreamSendsThem() async throws {
        let receiver = WebhookReceiver()
        try await receiver.run { port in
            try await TenancyHarness.run(configure: WebhookTests.stopSenders) { api in
                try await WebhookTests.allow(api, ["127.0.0.0/8"])
                let tenant = try await api.sendingTenant("Legacy").tenant
                let created = try await api.call(
                    .post, "/sub-accounts/\(tenant.subAccountID)/webhooks", key: tenant.subAccountKey,
                    body: ["url": "http://127.0.0.1:\(port)/hook", "format": "1601"])
                try #require(created.status == .created, "\(created.json)")
                // The client's reference comes back as referentie, form-encoded like the upstream's.
                let sent = try await Self.send(api, tenant, ["reference": "order 7&x/é"])
                try await WebhookTests.withSender(api.pool) { sender in
                    try await WebhookTests.deliver(sender) { receiver.received.count == 1 }
                    try await Self.report(api, sent, "SUBMITTED")  // the upstream's own SUBMITTED: already said
                    try await Self.report(api, sent, "BUFFERED")
                    try await WebhookTests.deliver(sender) { receiver.received.count == 2 }
                    try await Self.report(api, sent, "BUFFERED")  // a duplicate: only recorded
                    try await Self.report(api, sent, "DELIVERED")
                    try await WebhookTests.deliver(sender) { receiver.received.count == 3 }
                    try await Self.report(api, sent, "BUFFERED")  // late, after the final state: only recorded
                    for _ in 0..<3 { await sender.runOnce() }
                }
                let reference = "referentie=order%207%26x%2F%C3%A9"
                let expected = [
                    "smsid=\(sent.gatewayID)&datum=\(try await Self.datum(api, sent.messageID, "submitted"))&status=SUBMITTED&\(reference)",
                    "smsid=\(sent.gatewayID)&datum=\(try await Self.datum(api, sent.messageID, "report:buffered"))&status=BUFFERED&\(reference)",
                    "smsid=\(sent.gatewayID)&datum=\(Self.reportDatum)&status=DELIVERED&\(reference)",
                ]
                #expect(receiver.received.map(\.query) == expected)
                #expect(receiver.received.allSatisfy { $0.method == .get && $0.path == "/hook" && $0.body.isEmpty })
                #expect(
                    receiver.received.allSatisfy {
                        $0.headers[HTTPField.Name("Webhook-Signature")!] == nil
                            && $0.headers[HTTPField.Name("Webhook-Id")!] != nil
                    })
                #expect(
                    try await api.pool.query("SELECT count(*) FROM webhook_delivery WHERE state = 'delivered'").first(
                        as: Int.self) == 3)
                // The log of the endpoint lists them like any webhook's.
                let id = try #require((created["webhook"] as? [String: Any])?["id"] as? String)
                let log = try await api.call(.get, "/webhooks/\(id)/deliveries", key: tenant.subAccountKey)
                #expect(
                    log.items.count == 3 && log.items.allSatisfy { $0["state"] as? String == "delivered" },
                    "\(log.json)")
            }
        }
    }

    @Test func theSimulatorsOwnCallbacksReachALegacyEndpointAsTheSameSequence() async throws {
        let receiver = WebhookReceiver()
        try await receiver.run { port in
            try await TenancyHarness.run(configure: WebhookTests.stopSenders) { api in
                try await WebhookTests.allow(api, ["127.0.0.0/8"])
                // The upstream moves the message by itself (SUBMITTED, BUFFERED, DELIVERED) and calls our callback.
                let connection = try #require(
                    try await api.call(.get, "/upstream-connections", key: api.adminKey).items.first)
                let simulator = try #require(connection["baseUrl"] as? String)
                let callbackPath = try #require(connection["callbackPath"] as? String)
                let ownPort = api.client.port
                #expect(
                    try await DeliveryReportTests.simulator(
                        simulator, .PATCH, "/_sim/accounts/sandbox",
                        #"{"callbackURL":"http://127.0.0.1:\#(ownPort)\#(callbackPath)"}"#) == .ok)
                #expect(
                    try await DeliveryReportTests.simulator(
                        simulator, .PUT, "/_sim/delivery",
                        """
                        {"automatic":true,"submittedAfterMilliseconds":0,"bufferedAfterMilliseconds":300,"finalAfterMilliseconds":300,
                         "deliveredWeight":1,"notDeliveredWeight":0,"rejectedWeight":0}
                        """) == .ok)
                let tenant = try await api.sendingTenant("Simulated").tenant
                try await Self.legacyEndpoint(api, tenant, url: "http://127.0.0.1:\(port)/hook")
                let sent = try await Self.send(api, tenant, ["reference": "sim-1"])
                try await WebhookTests.withSender(api.pool) { sender in
                    try await WebhookTests.deliver(sender, rounds: 250) { receiver.received.count == 3 }
                    for _ in 0..<3 { await sender.runOnce() }
                }
                let history = try await api.pool.query(
                    """
                    SELECT status || ' ' || occurred_at::text FROM message_event WHERE message_id = \(sent.messageID) ORDER BY seq
                    """
                ).decode(String.self)
                #expect(
                    receiver.received.map { FormEncoding.decode($0.query).value(of: "status") } == [
                        "SUBMITTED", "BUFFERED", "DELIVERED",
                    ])
                #expect(
                    receiver.received.map(\.query) == [
                        "smsid=\(sent.gatewayID)&datum=\(try await Self.datum(api, sent.messageID, "submitted"))&status=SUBMITTED&referentie=sim-1",
                        "smsid=\(sent.gatewayID)&datum=\(try await Self.datum(api, sent.messageID, "report:buffered"))&status=BUFFERED&referentie=sim-1",
                        "smsid=\(sent.gatewayID)&datum=\(try await Self.reportedDatum(api, sent.messageID))&status=DELIVERED&referentie=sim-1",
                    ], "\(history)")
            }
        }
    }

    @Test func aURLWithAQueryKeepsItAndStatusWordsAndAnEmptyReferentieAreEncodedAsTheUpstreamDoes() async throws {
        let receiver = WebhookReceiver()
        try await receiver.run { port in
            try await TenancyHarness.run(configure: WebhookTests.stopSenders) { api in
                try await WebhookTests.allow(api, ["127.0.0.0/8"])
                let tenant = try await api.sendingTenant("Query").tenant
                try await Self.legacyEndpoint(api, tenant, url: "http://127.0.0.1:\(port)/hook?token=a%2Fb&site=nl")
                let sent = try await Self.send(api, tenant)
                try await Self.report(api, sent, "NOT DELIVERED")
                try await WebhookTests.withSender(api.pool) { sender in
                    try await WebhookTests.deliver(sender) {
                        try await api.pool.query("SELECT count(*) FROM webhook_delivery WHERE state = 'delivered'")
                            .first(as: Int.self) == 2
                    }
                }
                let queries = Set(receiver.received.map(\.query))
                #expect(
                    queries == [
                        "token=a%2Fb&site=nl&smsid=\(sent.gatewayID)&datum=\(try await Self.datum(api, sent.messageID, "submitted"))&status=SUBMITTED&referentie=",
                        "token=a%2Fb&site=nl&smsid=\(sent.gatewayID)&datum=\(Self.reportDatum)&status=NOT%20DELIVERED&referentie=",
                    ], "\(queries)")
            }
        }
    }

    @Test func batchesWithoutDeliveryReportsGetNoOldStyleNotificationsWhileSignedEndpointsStillDo() async throws {
        let receiver = WebhookReceiver()
        try await receiver.run { port in
            try await TenancyHarness.run(configure: WebhookTests.stopSenders) { api in
                try await WebhookTests.allow(api, ["127.0.0.0/8"])
                let tenant = try await api.sendingTenant("Quiet").tenant
                let legacy = try await Self.legacyEndpoint(api, tenant, url: "http://127.0.0.1:\(port)/hook")
                let signedEndpoint = try await WebhookTests.endpoint(
                    api, reseller: tenant.resellerID, subAccount: tenant.subAccountID,
                    url: "http://127.0.0.1:\(port)/hook", types: ["message.status_changed"])
                // The 1601 `delivery=nee`: set while the batch is still scheduled.
                let quiet = try await Self.send(
                    api, tenant, ["scheduleAt": Date().addingTimeInterval(2).formatted(.iso8601)]
                ) { batch in
                    try await api.pool.query("UPDATE message_batch SET delivery_reports = false WHERE id = \(batch)")
                }
                let loud = try await Self.send(api, tenant)
                try await Self.report(api, quiet, "BUFFERED")
                try await Self.report(api, quiet, "DELIVERED")
                try await Self.report(api, loud, "BUFFERED")
                try await Self.report(api, loud, "DELIVERED")
                try await WebhookTests.withSender(api.pool) { sender in
                    try await WebhookTests.deliver(sender) {
                        try await api.pool.query("SELECT count(*) FROM webhook_delivery WHERE state = 'pending'").first(
                            as: Int.self) == 0
                    }
                }
                let smsIDs = Self.gets(receiver).map { $0.query.split(separator: "&").first.map(String.init) ?? "" }
                #expect(smsIDs == Array(repeating: "smsid=\(loud.gatewayID)", count: 3), "\(smsIDs)")
                // Signed: the quiet message's queued, submitted and delivered; the other's submitted and delivered.
                let signed = receiver.received.filter { $0.method == .post }.compactMap {
                    ((try? JSONSerialization.jsonObject(with: Data($0.body.utf8))) as? [String: Any])?["data"]
                        as? [String: Any]
                }
                #expect(
                    signed.filter { $0["messageId"] as? String == quiet.messageID.apiString }.compactMap {
                        $0["status"] as? String
                    }.sorted()
                        == ["delivered", "queued", "submitted"], "\(signed)")
                #expect(signed.count == 5)
                // The added payload fields.
                let delivered = try #require(
                    signed.first {
                        $0["messageId"] as? String == loud.messageID.apiString && $0["status"] as? String == "delivered"
                    })
                #expect(
                    (delivered["gatewayId"] as? NSNumber)?.int64Value == loud.gatewayID
                        && delivered["gatewayStatus"] as? String == "DELIVERED", "\(delivered)")

                // Replay gives each endpoint what it would get now: the 1601 one the loud message's three notifications,
                // the signed one the five status changes (not the BUFFERED, which changed no status).
                let now = Date()
                let period: [String: Any] = [
                    "from": now.addingTimeInterval(-600).formatted(.iso8601),
                    "to": now.addingTimeInterval(60).formatted(.iso8601),
                ]
                var reply = try await api.call(
                    .post, "/webhooks/\(legacy.apiString)/replay", key: tenant.subAccountKey, body: period)
                #expect(reply.status == .accepted && reply["queued"] as? Int == 3, "\(reply.json)")
                reply = try await api.call(
                    .post, "/webhooks/\(signedEndpoint.apiString)/replay", key: tenant.subAccountKey, body: period)
                #expect(reply.status == .accepted && reply["queued"] as? Int == 5, "\(reply.json)")
            }
        }
    }

    @Test func aFailingReceiverIsRetriedAndAForbiddenAddressRefusedAsForSignedEndpoints() async throws {
        let receiver = WebhookReceiver()
        try await receiver.run { port in
            try await TenancyHarness.run(configure: WebhookTests.stopSenders) { api in
                let tenant = try await api.sendingTenant("Retry").tenant
                try await Self.legacyEndpoint(api, tenant, url: "http://127.0.0.1:\(port)/hook")
                let sent = try await Self.send(api, tenant)
                try await WebhookTests.withSender(api.pool) { sender in
                    // Loopback is not allowed: refused before any connection, at every attempt.
                    try await WebhookTests.deliver(sender, rounds: 3) { false }
                    #expect(receiver.received.isEmpty)
                    let refused = try await api.pool.query("SELECT error FROM webhook_attempt ORDER BY id").decode(
                        String?.self)
                    #expect(
                        refused.count == 3 && refused.allSatisfy { $0?.hasPrefix("refused: ") == true }, "\(refused)")

                    // Allowed now; the receiver fails once, then takes it.
                    try await WebhookTests.allow(api, ["127.0.0.0/8"])
                    receiver.plan([.status(500)])
                    try await WebhookTests.deliver(sender) {
                        try await api.pool.query("SELECT state FROM webhook_delivery").first(as: String.self)
                            == "delivered"
                    }
                }
                let codes = try await api.pool.query("SELECT status_code FROM webhook_attempt ORDER BY id").decode(
                    Int?.self)
                #expect(codes == [nil, nil, nil, 500, 200], "\(codes)")
                let expected =
                    "smsid=\(sent.gatewayID)&datum=\(try await Self.datum(api, sent.messageID, "submitted"))&status=SUBMITTED&referentie="
                #expect(receiver.received.map(\.query) == [expected, expected])
                #expect(
                    try await api.pool.query("SELECT failing_since IS NULL FROM webhook_endpoint").first(as: Bool.self)
                        == true)
            }
        }
    }

    @Test func theAPIRegisters1601EndpointsForDeliveryNotificationsOnlyAndKeepsTheirFormat() async throws {
        try await TenancyHarness.run(configure: WebhookTests.stopSenders) { api in
            let tenant = try await api.onboard("Formats")
            let base = "/sub-accounts/\(tenant.subAccountID)/webhooks"
            let url = "http://93.184.216.34/notify"
            var reply = try await api.call(
                .post, base, key: tenant.subAccountKey,
                body: ["url": url, "format": "1601", "eventTypes": ["account.blocked"]])
            #expect(reply.status == .unprocessableContent && reply.fieldError("/eventTypes") != nil, "\(reply.json)")
            #expect(reply.headers[.contentType]?.hasPrefix("application/problem+json") == true)
            reply = try await api.call(.post, base, key: tenant.subAccountKey, body: ["url": url])
            #expect(
                reply.status == .unprocessableContent && reply.fieldError("/eventTypes") != nil,
                "a signed endpoint names its types: \(reply.json)")
            reply = try await api.call(
                .post, base, key: tenant.subAccountKey, body: ["url": "http://127.0.0.1/notify", "format": "1601"])
            #expect(reply.status == .unprocessableContent && reply.fieldError("/url") != nil, "\(reply.json)")
            reply = try await api.call(.post, base, key: tenant.subAccountKey, body: ["url": url, "format": "1601"])
            #expect(reply.status == .created, "\(reply.json)")
            let legacy = try #require(reply["webhook"] as? [String: Any])
            let id = try #require(legacy["id"] as? String)
            #expect(
                legacy["format"] as? String == "1601"
                    && legacy["eventTypes"] as? [String] == ["message.status_changed"], "\(legacy)")
            reply = try await api.call(
                .post, "/resellers/\(tenant.resellerID)/webhooks", key: tenant.resellerKey,
                body: ["url": url, "eventTypes": ["account.blocked"]])
            #expect(
                reply.status == .created && (reply["webhook"] as? [String: Any])?["format"] as? String == "signed",
                "\(reply.json)")

            // The format is fixed; a 1601 endpoint keeps its one type.
            reply = try await api.call(.patch, "/webhooks/\(id)", key: tenant.subAccountKey, body: ["format": "signed"])
            #expect(
                reply.status == .conflict && reply.headers[.contentType]?.hasPrefix("application/problem+json") == true,
                "\(reply.json)")
            reply = try await api.call(
                .patch, "/webhooks/\(id)", key: tenant.subAccountKey,
                body: ["eventTypes": ["message.status_changed", "balance.low"]])
            #expect(reply.status == .unprocessableContent && reply.fieldError("/eventTypes") != nil, "\(reply.json)")
            reply = try await api.call(
                .patch, "/webhooks/\(id)", key: tenant.subAccountKey,
                body: ["format": "1601", "description": "old shop"])
            #expect(
                reply.status == .ok && reply.string("format") == "1601" && reply.string("description") == "old shop",
                "\(reply.json)")
            #expect(try await api.call(.get, "/webhooks/\(id)", key: tenant.resellerKey).string("format") == "1601")
            #expect(try await api.call(.get, "/webhooks/\(id)", key: api.adminKey).status == .ok)
            let other = try await api.onboard("Strangers")
            #expect(try await api.call(.get, "/webhooks/\(id)", key: other.resellerKey).status == .notFound)
            #expect(
                try await api.call(.patch, "/webhooks/\(id)", key: other.subAccountKey, body: ["format": "signed"])
                    .status == .notFound)

            // The database holds to it too.
            await #expect(throws: PostgresError.self) {
                try await api.pool.query(
                    "UPDATE webhook_endpoint SET event_types = '{message.status_changed,balance.low}' WHERE id = \(UUID(uuidString: id)!)"
                )
            }
            // Other events (webhook.endpoint_disabled included) reach signed endpoints only.
            _ = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/block", key: tenant.resellerKey,
                body: ["status": "blocked", "reason": "x"])
            #expect(try await api.count("webhook_delivery") == 1)
            #expect(
                try await api.pool.query(
                    "SELECT count(*) FROM webhook_delivery WHERE endpoint_id = \(UUID(uuidString: id)!)"
                ).first(as: Int.self) == 0)
            #expect(
                try await api.pool.query(
                    "SELECT webhook_wanted('webhook.endpoint_disabled', \(UUID(uuidString: tenant.resellerID)!), NULL)"
                ).first(as: Bool.self) == true)
            try await api.pool.query("DELETE FROM webhook_endpoint WHERE format = 'signed'")
            #expect(
                try await api.pool.query(
                    "SELECT webhook_wanted('webhook.endpoint_disabled', \(UUID(uuidString: tenant.resellerID)!), \(UUID(uuidString: tenant.subAccountID)!))"
                ).first(as: Bool.self) == false)
        }
    }

    @Test func aReplayedSendIsNotCheckedAgainstTheSSRFRulesOfNow() async throws {
        try await TenancyHarness.run(configure: WebhookTests.stopSenders) { api in
            let tenant = try await api.sendingTenant("Replayed").tenant
            let body: [String: Any] = [
                "sender": "Jansen", "text": "Hi", "recipients": ["31612345671"], "callbackUrl": "http://127.0.0.1:9/cb",
            ]
            try await WebhookTests.allow(api, ["127.0.0.0/8"])
            let key = UUID().uuidString
            #expect(try await api.send(tenant, idempotencyKey: key, body).status == .created)
            // The rules change (or the host resolves elsewhere by now): a new send is refused, the replay answers as before.
            try await WebhookTests.allow(api, [])
            let replayed = try await api.send(tenant, idempotencyKey: key, body)
            #expect(
                replayed.status == .created && replayed.headers[HTTPField.Name("Idempotent-Replayed")!] == "true",
                "\(replayed.json)")
            let fresh = try await api.send(tenant, body)
            #expect(fresh.status == .unprocessableContent && fresh.fieldError("/callbackUrl") != nil)
            #expect(try await api.count("message") == 1)
        }
    }

    @Test func aSendsOwnCallbackURLTakesThePlaceOfTheSubAccountsLegacyEndpointsAndItsHistoryTellsTheOutcome()
        async throws
    {
        let receiver = WebhookReceiver()
        try await receiver.run { port in
            try await TenancyHarness.run(configure: WebhookTests.stopSenders) { api in
                let tenant = try await api.sendingTenant("PerSend").tenant
                let callbackURL = "http://127.0.0.1:\(port)/target?key=s3cret"
                // The SSRF rules hold for a send's URL at once, as for an endpoint's.
                let refused = try await api.send(
                    tenant,
                    ["sender": "Jansen", "text": "Hi", "recipients": ["31612345671"], "callbackUrl": callbackURL])
                #expect(
                    refused.status == .unprocessableContent && refused.fieldError("/callbackUrl") != nil,
                    "\(refused.json)")
                #expect(try await api.count("message") == 0)
                try await WebhookTests.allow(api, ["127.0.0.0/8"])

                let own = try await Self.legacyEndpoint(api, tenant, url: "http://127.0.0.1:\(port)/hook")
                let wide = try await Self.legacyEndpoint(
                    api, tenant, url: "http://127.0.0.1:\(port)/hook?wide=1", resellerWide: true)
                try await WebhookTests.endpoint(
                    api, reseller: tenant.resellerID, subAccount: tenant.subAccountID,
                    url: "http://127.0.0.1:\(port)/hook", types: ["message.status_changed"])
                receiver.plan([.status(503)])
                let sent = try await Self.send(api, tenant, ["callbackUrl": callbackURL, "reference": "r1"])
                try await WebhookTests.withSender(api.pool) { sender in
                    // Only the per-send delivery first, so that the planned failure is its.
                    try await api.pool.query(
                        "UPDATE webhook_delivery SET due_at = now() + interval '1 hour' WHERE url IS NULL")
                    try await WebhookTests.deliver(sender) { Self.gets(receiver, path: "/target").count == 2 }
                    try await api.pool.query("UPDATE webhook_delivery SET due_at = now() WHERE state = 'pending'")
                    try await Self.report(api, sent, "DELIVERED")
                    try await WebhookTests.deliver(sender) {
                        try await api.pool.query("SELECT count(*) FROM webhook_delivery WHERE state = 'pending'").first(
                            as: Int.self) == 0
                    }
                }
                let submitted =
                    "smsid=\(sent.gatewayID)&datum=\(try await Self.datum(api, sent.messageID, "submitted"))&status=SUBMITTED&referentie=r1"
                let delivered = "smsid=\(sent.gatewayID)&datum=\(Self.reportDatum)&status=DELIVERED&referentie=r1"
                #expect(
                    Self.gets(receiver, path: "/target").map(\.query) == [
                        "key=s3cret&\(submitted)", "key=s3cret&\(submitted)", "key=s3cret&\(delivered)",
                    ])
                // The sub-account's own 1601 endpoint gets nothing of this send; the reseller's and the signed one theirs.
                #expect(
                    Self.gets(receiver).map(\.query).sorted()
                        == ["wide=1&\(delivered)", "wide=1&\(submitted)"].sorted())
                #expect(receiver.received.filter { $0.method == .post }.count == 2)
                #expect(
                    try await api.pool.query("SELECT count(*) FROM webhook_delivery WHERE endpoint_id = \(own)").first(
                        as: Int.self) == 0)
                #expect(
                    try await api.pool.query("SELECT count(*) FROM webhook_delivery WHERE endpoint_id = \(wide)").first(
                        as: Int.self) == 2)

                // The message's history tells the sub-account what became of its notifications.
                let message = try await api.call(
                    .get, "/sub-accounts/\(tenant.subAccountID)/messages/\(sent.messageID.apiString)",
                    key: tenant.subAccountKey)
                let history = (message["history"] as? [[String: Any]] ?? []).filter {
                    ($0["status"] as? String)?.hasPrefix("callback:") == true
                }
                #expect(
                    history.compactMap { $0["status"] as? String } == [
                        "callback:retrying", "callback:delivered", "callback:delivered",
                    ], "\(history)")
                let details = history.compactMap { $0["detail"] as? String }
                #expect(
                    details.count == 3
                        && details[0].hasPrefix("SUBMITTED notification, attempt 1: answered 503; retried until "),
                    "\(details)")
                #expect(
                    details.count == 3 && details[1] == "SUBMITTED notification, attempt 2: answered 200", "\(details)")
                #expect(
                    details.count == 3 && details[2] == "DELIVERED notification, attempt 1: answered 200", "\(details)")
                // Nobody else sees it.
                let other = try await api.onboard("Outsider")
                #expect(
                    try await api.call(
                        .get, "/sub-accounts/\(tenant.subAccountID)/messages/\(sent.messageID.apiString)",
                        key: other.subAccountKey
                    ).status == .notFound)
            }
        }
    }
}
