import AsyncHTTPClient
import CompatibleGateway
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Ledger
import Logging
import PostgresLibpq
import ResellerApp
import ResellerCore
import ServiceLifecycle
import Synchronization
import Testing
import Webhooks

/// A webhook receiver on 127.0.0.1 (real HTTP, a port of its own): records what it gets and answers by plan.
final class WebhookReceiver: Sendable {
    struct Received: Sendable {
        var path: String
        /// The Host header as sent.
        var authority: String? = nil
        var headers: HTTPFields
        var body: String
        /// The query as sent (still percent-encoded); empty when none.
        var query: String = ""
        var method: HTTPRequest.Method = .post
    }

    enum Answer: Sendable {
        case status(Int)
        /// Answers 200 only after this long (longer than the sender's timeout: a timeout).
        case slow(Duration)
        /// 302 to this location (always the answer on `/redirect`).
        case redirect(String)
        /// `200 OK` with `Content-Length: 10`, then nothing (always the answer on `/stall`).
        case stall
        /// `200 OK`, then a byte of body every 100 ms, never ending (always the answer on `/trickle`).
        case trickle
        /// `200 OK`, then 64 KB chunks of body as fast as they are taken, 256 MB in all (always the answer on `/flood`).
        case flood
    }

    private let state = Mutex<(received: [Received], plan: [Answer], port: Int)>(([], [], 0))

    /// Answers to come, in order; when used up, 200.
    func plan(_ answers: [Answer]) { state.withLock { $0.plan = answers } }
    var received: [Received] { state.withLock { $0.received } }

    /// Runs the receiver for the duration of `body`, which gets its port.
    func run(_ body: @Sendable (Int) async throws -> Void) async throws {
        let router = Router()
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            let buffer = try await request.body.collect(upTo: 1 << 20)
            let answer = self.state.withLock { state -> Answer in
                state.received.append(
                    Received(
                        path: request.uri.path, authority: request.head.authority, headers: request.headers,
                        body: String(buffer: buffer),
                        query: request.uri.query ?? "", method: request.method))
                switch request.uri.path {
                case "/redirect": return .redirect("http://127.0.0.1:\(state.port)/target")
                case "/stall": return .stall
                case "/trickle": return .trickle
                case "/flood": return .flood
                case "/slow": return .slow(.seconds(1))
                default: break
                }
                return state.plan.isEmpty ? .status(200) : state.plan.removeFirst()
            }
            switch answer {
            case .status(let code):
                return Response(status: .init(code: code))
            case .slow(let delay):
                try? await Task.sleep(for: delay)
                return Response(status: .ok)
            case .redirect(let location):
                return Response(status: .found, headers: [.location: location])
            case .stall:
                return Response(
                    status: .ok, headers: [.contentLength: "10"],
                    body: ResponseBody { _ in try await Task.sleep(for: .seconds(120)) })
            case .trickle:
                return Response(
                    status: .ok,
                    body: ResponseBody { writer in
                        for _ in 0..<1200 {
                            try await writer.write(ByteBuffer(string: "x"))
                            try await Task.sleep(for: .milliseconds(100))
                        }
                        try await writer.finish(nil)
                    })
            case .flood:
                return Response(
                    status: .ok,
                    body: ResponseBody { writer in
                        let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)
                        for _ in 0..<4096 { try await writer.write(chunk) }
                        try await writer.finish(nil)
                    })
            }
        }
        router.post("/hook", use: handler)
        for path in ["/stall", "/trickle", "/flood", "/slow"] { router.post(RouterPath(path), use: handler) }
        router.post("/target", use: handler)
        router.post("/redirect", use: handler)
        // Old-style (1601) notifications are GETs.
        router.get("/hook", use: handler)
        router.get("/target", use: handler)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: Logger(label: "test.receiver"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService(gracefulShutdownSignals: []) }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            state.withLock { $0.port = port }
            try await body(port)
            group.cancelAll()
        }
    }
}

/// Webhooks out: events written with the change they report, delivered signed by the sender, retried, guarded.
@Suite(.serialized, .timeLimit(.minutes(3))) struct WebhookTests {
    /// A sender for the tests to drive round by round (short timeout, retries due at once), with its own client.
    static func withSender(
        _ pool: PostgresPool, timeout: Duration = .seconds(2),
        configure: (inout WebhookSenderSettings) -> Void = { _ in },
        _ body: (WebhookSender) async throws -> Void
    ) async throws {
        var settings = WebhookSenderSettings()
        settings.timeout = timeout
        settings.backoff = RetryBackoff(base: .milliseconds(1), cap: .milliseconds(1))
        settings.worker = "test-sender"
        configure(&settings)
        let http = WebhookHTTPClient(timeout: settings.timeout)
        do {
            try await body(
                WebhookSender(pool: pool, client: http.client, settings: settings, logger: HTTPSkeletonTests.logger))
        } catch {
            try await http.client.shutdown()
            throw error
        }
        try await http.client.shutdown()
    }

    /// Rounds of `sender` until `done` holds (at most `rounds`).
    static func deliver(_ sender: WebhookSender, rounds: Int = 40, until done: () async throws -> Bool) async throws {
        for _ in 0..<rounds {
            await sender.runOnce()
            if try await done() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// An endpoint, written straight into the table (the API is not part of this change yet).
    @discardableResult
    static func endpoint(
        _ api: TenancyHarness, reseller: String, subAccount: String?, url: String, types: [String],
        secret: String = "whsec_" + String(repeating: "s", count: 40)
    ) async throws -> UUID {
        try #require(
            try await api.pool.query(
                """
                INSERT INTO webhook_endpoint (reseller_id, sub_account_id, url, event_types, secret, created_by)
                VALUES (\(UUID(uuidString: reseller)!), \(subAccount.map { UUID(uuidString: $0)! }), \(url), \(types), \(secret), 'test')
                RETURNING id
                """
            ).first(as: UUID.self))
    }

    static func allow(_ api: TenancyHarness, _ ranges: [String]) async throws {
        try await api.pool.query("UPDATE webhook_settings SET allowed_ranges = \(ranges)::cidr[]")
    }

    static func stopSenders(_ configuration: inout AppConfiguration) {
        DeliveryReportTests.dispatching(&configuration)
        configuration.webhooks = false
    }

    /// The recipe of docs/webhooks.md, written out independently of the service's code.
    static func recipeVerifies(_ received: WebhookReceiver.Received, secret: String, now: Date = Date()) -> Bool {
        guard let id = received.headers[HTTPField.Name("Webhook-Id")!],
            let timestamp = received.headers[HTTPField.Name("Webhook-Timestamp")!],
            let header = received.headers[HTTPField.Name("Webhook-Signature")!], let seconds = Double(timestamp),
            abs(now.timeIntervalSince1970 - seconds) < 300
        else { return false }
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data("\(id).\(timestamp).\(received.body)".utf8), using: SymmetricKey(data: Data(secret.utf8)))
        let expected = mac.map { String(format: "%02x", $0) }.joined()
        return header.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces) == "v1=\(expected)" }
    }

    @Test func messageStatusChangesAreDeliveredSignedAsTheRecipeSays() async throws {
        let receiver = WebhookReceiver()
        try await receiver.run { port in
            try await TenancyHarness.run(configure: Self.stopSenders) { api in
                try await Self.allow(api, ["127.0.0.0/8"])
                let tenant = try await api.sendingTenant("Hooks").tenant
                let secret = "whsec_" + String(repeating: "k", count: 40)
                try await Self.endpoint(
                    api, reseller: tenant.resellerID, subAccount: tenant.subAccountID,
                    url: "http://127.0.0.1:\(port)/hook",
                    types: ["message.status_changed"], secret: secret)
                let reply = try await api.send(
                    tenant, ["sender": "Jansen", "text": "Hi", "recipients": ["31612345671"], "reference": "order-7"])
                try #require(reply.status == .created, "\(reply.json)")
                let messageID = try #require((reply["messages"] as? [[String: Any]])?.first?["id"] as? String)
                let batchID = try #require(reply.string("batchId"))
                try await eventually("submitted") {
                    try await api.pool.query("SELECT count(*) FROM webhook_delivery").first(as: Int.self) == 1
                }
                try await Self.withSender(api.pool) { sender in
                    try await Self.deliver(sender) { receiver.received.count == 1 }
                    let received = try #require(receiver.received.first)
                    #expect(Self.recipeVerifies(received, secret: secret))
                    #expect(!Self.recipeVerifies(received, secret: secret + "x"))
                    #expect(
                        WebhookSignature.verify(
                            header: received.headers[HTTPField.Name("Webhook-Signature")!]!, secret: secret,
                            id: received.headers[HTTPField.Name("Webhook-Id")!]!,
                            timestamp: received.headers[HTTPField.Name("Webhook-Timestamp")!]!,
                            body: received.body))
                    let event = try #require(
                        try JSONSerialization.jsonObject(with: Data(received.body.utf8)) as? [String: Any])
                    #expect(event["type"] as? String == "message.status_changed")
                    #expect(event["id"] as? String == received.headers[HTTPField.Name("Webhook-Id")!])
                    let data = try #require(event["data"] as? [String: Any])
                    #expect(data["messageId"] as? String == messageID && data["batchId"] as? String == batchID)
                    #expect(data["status"] as? String == "submitted" && data["previousStatus"] as? String == "queued")
                    #expect(data["reference"] as? String == "order-7")
                    #expect(
                        try await api.pool.query("SELECT state FROM webhook_delivery").first(as: String.self)
                            == "delivered")
                    #expect(
                        try await api.pool.query("SELECT count(*) FROM webhook_attempt WHERE status_code = 200").first(
                            as: Int.self) == 1)

                    // Settlement by a delivery report reports too, in the report's transaction.
                    let connection = try #require(
                        try await api.call(.get, "/upstream-connections", key: api.adminKey).items.first)
                    let callbackPath = try #require(connection["callbackPath"] as? String)
                    let upstreamID = try #require(
                        try await api.pool.query(
                            "SELECT upstream_id FROM message WHERE id = \(UUID(uuidString: messageID)!)"
                        ).first(as: String.self))
                    let report = try await DeliveryReportTests.report(
                        api, callbackPath, smsID: upstreamID, status: "DELIVERED", reference: messageID)
                    #expect(report.status == .ok)
                    try await Self.deliver(sender) { receiver.received.count == 2 }
                    let settled = try #require(
                        try JSONSerialization.jsonObject(with: Data(receiver.received[1].body.utf8)) as? [String: Any])
                    let settledData = try #require(settled["data"] as? [String: Any])
                    #expect(
                        settledData["status"] as? String == "delivered"
                            && settledData["previousStatus"] as? String == "submitted", "\(settledData)")
                    #expect(Self.recipeVerifies(receiver.received[1], secret: secret))
                }
            }
        }
    }

    @Test func failedAttemptsAreRetriedOn500AndTimeoutsUntilASuccessThenStop() async throws {
        let receiver = WebhookReceiver()
        try await receiver.run { port in
            try await TenancyHarness.run(configure: Self.stopSenders) { api in
                try await Self.allow(api, ["127.0.0.0/8"])
                let tenant = try await api.onboard("Retries")
                try await Self.endpoint(
                    api, reseller: tenant.resellerID, subAccount: nil, url: "http://127.0.0.1:\(port)/hook",
                    types: ["account.blocked"])
                receiver.plan([.status(500), .slow(.seconds(3)), .status(503), .status(204)])
                let blocked = try await api.call(
                    .post, "/sub-accounts/\(tenant.subAccountID)/block", key: tenant.resellerKey,
                    body: ["status": "blocked", "reason": "unpaid"])
                try #require(blocked.status == .ok, "\(blocked.json)")
                try await Self.withSender(api.pool, timeout: .milliseconds(500)) { sender in
                    try await Self.deliver(sender) {
                        try await api.pool.query("SELECT state FROM webhook_delivery").first(as: String.self)
                            == "delivered"
                    }
                    let attempts = try await api.pool.query(
                        "SELECT status_code, error FROM webhook_attempt ORDER BY id"
                    ).decode((Int?, String?).self)
                    #expect(attempts.map(\.0) == [500, nil, 503, 204], "\(attempts)")
                    #expect(attempts[1].1?.contains("no answer within") == true, "\(attempts)")
                    // Delivered: no further requests.
                    for _ in 0..<3 { await sender.runOnce() }
                    try await Task.sleep(for: .seconds(3))
                    #expect(receiver.received.count == 4)
                    let ids = Set(receiver.received.compactMap { $0.headers[HTTPField.Name("Webhook-Id")!] })
                    #expect(ids.count == 1, "every attempt carries the same event id")
                    let event = try #require(
                        try JSONSerialization.jsonObject(with: Data(receiver.received[0].body.utf8)) as? [String: Any])
                    #expect(event["type"] as? String == "account.blocked")
                    #expect((event["data"] as? [String: Any])?["subAccountId"] as? String == tenant.subAccountID)
                    #expect(Set(receiver.received.map(\.body)).count == 1, "the same body at every attempt")

                    // Past its give-up time a failing delivery fails for good; after three days of failures the endpoint
                    // is disabled and its owner's other endpoints hear of it.
                    try await Self.endpoint(
                        api, reseller: tenant.resellerID, subAccount: nil, url: "http://127.0.0.1:\(port)/target",
                        types: ["sender_name.approved"])
                    try await api.pool.query(
                        "UPDATE webhook_endpoint SET event_types = '{account.unblocked}' WHERE url LIKE '%/hook'")
                    receiver.plan([.status(500)])
                    _ = try await api.call(
                        .post, "/sub-accounts/\(tenant.subAccountID)/unblock", key: tenant.resellerKey, body: [:])
                    try await api.pool.query(
                        """
                        UPDATE webhook_delivery SET give_up_at = now() - interval '1 second' WHERE state = 'pending';
                        """)
                    try await api.pool.query(
                        "UPDATE webhook_endpoint SET failing_since = now() - interval '4 days' WHERE url LIKE '%/hook'")
                    try await Self.deliver(sender) {
                        try await api.pool.query("SELECT count(*) FROM webhook_delivery WHERE state = 'failed'").first(
                            as: Int.self) == 1
                    }
                    #expect(
                        try await api.pool.query("SELECT status FROM webhook_endpoint WHERE url LIKE '%/hook'").first(
                            as: String.self) == "disabled")
                    try await Self.deliver(sender) { receiver.received.contains { $0.path == "/target" } }
                    let notice = try #require(receiver.received.first { $0.path == "/target" })
                    #expect(notice.body.contains("webhook.endpoint_disabled"))
                }
            }
        }
    }

    /// The worked example of docs/webhooks.md ("Verifying a request"): these exact values.
    @Test func theDocumentedExampleSignatureIsRight() {
        let id = "5f0c2a9e-8d4b-4c1a-9e3f-2b7d6a1c0e48"
        let body =
            #"{"id": "5f0c2a9e-8d4b-4c1a-9e3f-2b7d6a1c0e48", "data": {"status": "delivered", "messageId": "9a1e4c7b-3f2d-4e8a-b6c5-0d9f8e7a6b54", "previousStatus": "submitted"}, "type": "message.status_changed", "occurredAt": "2026-11-26T14:00:00.000000Z"}"#
        let secret = "whsec_example_0123456789abcdef0123456789"
        let signature = WebhookSignature.hex(secret: secret, id: id, timestamp: 1_795_651_200, body: body)
        #expect(signature == "7ddfdf881047ce31eb2c2e8cc727853202dedd085da8c6422153320c1c0a9c36")
        let received = WebhookReceiver.Received(
            path: "/hook",
            headers: [
                HTTPField.Name("Webhook-Id")!: id, HTTPField.Name("Webhook-Timestamp")!: "1795651200",
                HTTPField.Name("Webhook-Signature")!: "v1=\(signature)",
            ],
            body: body)
        #expect(Self.recipeVerifies(received, secret: secret, now: Date(timeIntervalSince1970: 1_795_651_260)))
        #expect(
            !Self.recipeVerifies(received, secret: secret, now: Date(timeIntervalSince1970: 1_795_651_200 + 600)),
            "too old")
    }

    @Test func forbiddenAddressesAreRecognisedInEveryForm() async throws {
        let guardrail = WebhookAddressGuard()
        let refused = [
            "http://127.0.0.1/", "http://[::1]/", "http://169.254.169.254/latest/meta-data/", "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/", "http://127.1/", "http://localhost/", "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://10.1.2.3/", "http://192.168.1.1/", "http://172.16.0.1/", "http://100.64.0.1/", "http://0.0.0.0/",
            "http://[::]/",
            "http://[fe80::1]/", "http://[fc00::1]/", "http://224.0.0.1/", "http://255.255.255.255/",
            "http://[2002:7f00:1::]/",
            "http://127.0.0.1./", "http://4294967296/", "ftp://93.184.216.34/", "http://user:pw@93.184.216.34/",
        ]
        for url in refused {
            await #expect(throws: WebhookAddressRefusal.self, "\(url)") { try await guardrail.check(url: url) }
        }
        #expect(IPAddress.parseV4("2130706433") == IPAddress(bytes: [127, 0, 0, 1]))
        #expect(IPAddress.parseV4("0x7f.1") == IPAddress(bytes: [127, 0, 0, 1]))
        #expect(IPAddress.parseV4("0177.0.0.01") == IPAddress(bytes: [127, 0, 0, 1]))
        #expect(IPAddress.parseV4("example.com") == nil)
        let (_, addresses) = try await guardrail.check(url: "https://93.184.216.34:8443/hooks?x=1")
        #expect(addresses == [IPAddress(bytes: [93, 184, 216, 34])])
        _ = try await guardrail.check(url: "http://[2606:4700::1111]/")
        // Allowed ranges lift the rule for what they hold only.
        let onPremise = WebhookAddressGuard(allowed: ["127.0.0.0/8", "10.0.0.0/8"].compactMap(IPRange.init))
        _ = try await onPremise.check(url: "http://0x7f.1:8080/")
        _ = try await onPremise.check(url: "http://10.9.8.7/")
        await #expect(throws: WebhookAddressRefusal.self) { try await onPremise.check(url: "http://[::1]/") }
        await #expect(throws: WebhookAddressRefusal.self) { try await onPremise.check(url: "http://169.254.169.254/") }
    }

    @Test func theSenderRefusesForbiddenAddressesAtDeliveryUnlessAllowedAndNeverFollowsRedirects() async throws {
        let receiver = WebhookReceiver()
        try await receiver.run { port in
            try await TenancyHarness.run(configure: Self.stopSenders) { api in
                let tenant = try await api.onboard("Guarded")
                let hosts = ["127.0.0.1", "[::1]", "169.254.169.254", "2130706433", "0x7f.1", "localhost"]
                var endpoints: [String: UUID] = [:]
                for host in hosts {
                    endpoints[host] = try await Self.endpoint(
                        api, reseller: tenant.resellerID, subAccount: tenant.subAccountID,
                        url: "http://\(host):\(port)/hook", types: ["account.blocked"])
                }
                let redirect = try await Self.endpoint(
                    api, reseller: tenant.resellerID, subAccount: tenant.subAccountID,
                    url: "http://127.0.0.1:\(port)/redirect", types: ["account.blocked"])
                receiver.plan([])
                _ = try await api.call(
                    .post, "/sub-accounts/\(tenant.subAccountID)/block", key: tenant.resellerKey,
                    body: ["status": "blocked", "reason": "x"])
                #expect(try await api.count("webhook_delivery") == hosts.count + 1)
                try await Self.withSender(api.pool) { sender in
                    // Nothing allowed: every one refused before any connection.
                    try await Self.deliver(sender, rounds: 5) { false }
                    #expect(receiver.received.isEmpty)
                    let errors = try await api.pool.query("SELECT DISTINCT error FROM webhook_attempt").decode(
                        String?.self)
                    #expect(errors.allSatisfy { $0?.hasPrefix("refused: ") == true }, "\(errors)")

                    // The admin allows loopback IPv4: the numeric forms reach it (they are 127.0.0.1); IPv6 loopback and
                    // the metadata address stay refused; a redirect is an answer, not followed.
                    try await Self.allow(api, ["127.0.0.0/8"])
                    try await api.pool.query(
                        "UPDATE webhook_endpoint SET url = replace(url, 'localhost', '127.0.0.1') WHERE url LIKE '%localhost%'"
                    )
                    try await Self.deliver(sender) {
                        try await api.pool.query("SELECT count(*) FROM webhook_delivery WHERE state = 'delivered'")
                            .first(as: Int.self) == 4
                    }
                    let delivered = try await api.pool.query(
                        "SELECT endpoint_id FROM webhook_delivery WHERE state = 'delivered'"
                    ).decode(UUID.self)
                    #expect(
                        Set(delivered)
                            == Set(["127.0.0.1", "2130706433", "0x7f.1", "localhost"].map { endpoints[$0]! }))
                    for host in ["[::1]", "169.254.169.254"] {
                        let last = try await api.pool.query(
                            "SELECT state, last_error FROM webhook_delivery WHERE endpoint_id = \(endpoints[host]!)"
                        )
                        .first(as: (String, String?).self)
                        #expect(
                            last?.0 == "pending" && last?.1?.hasPrefix("refused: ") == true,
                            "\(host): \(String(describing: last))")
                    }
                    #expect(!receiver.received.contains { $0.path == "/target" })
                    let redirected = try await api.pool.query(
                        "SELECT min(status_code) FROM webhook_attempt a JOIN webhook_delivery d ON d.id = a.delivery_id WHERE d.endpoint_id = \(redirect)"
                    )
                    .first(as: Int?.self)
                    #expect(redirected == 302)
                    // The Host header names the host as registered.
                    #expect(receiver.received.contains { $0.authority == "0x7f.1:\(port)" })
                }
            }
        }
    }

    @Test func anEventCommittedBeforeACrashIsDeliveredLater() async throws {
        let receiver = WebhookReceiver()
        try await receiver.run { port in
            try await TenancyHarness.run(configure: Self.stopSenders) { api in
                try await Self.allow(api, ["127.0.0.0/8"])
                let tenant = try await api.onboard("Crash")
                try await Self.endpoint(
                    api, reseller: tenant.resellerID, subAccount: tenant.subAccountID,
                    url: "http://127.0.0.1:\(port)/hook", types: ["account.blocked"])
                // The change commits with its event; no sender runs.
                _ = try await api.call(
                    .post, "/sub-accounts/\(tenant.subAccountID)/block", key: tenant.resellerKey,
                    body: ["status": "blocked", "reason": "x"])
                #expect(try await api.count("webhook_event") == 1)
                // A sender claims it and dies before sending (its lease ends at once here).
                let dead = WebhookDeliveryRepository(pool: api.pool)
                let claimed = try await dead.claim(limit: 10, lease: .zero, worker: "dead")
                #expect(claimed.count == 1 && receiver.received.isEmpty)
                // Another sender, started later as the service it is, delivers it.
                var settings = WebhookSenderSettings()
                settings.pollInterval = .milliseconds(50)
                let http = WebhookHTTPClient(timeout: settings.timeout)
                let sender = WebhookSender(
                    pool: api.pool, client: http.client, settings: settings, logger: HTTPSkeletonTests.logger)
                let group = ServiceGroup(
                    services: [http, sender], gracefulShutdownSignals: [], logger: HTTPSkeletonTests.logger)
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    tasks.addTask { try await group.run() }
                    try await eventually("delivered") { receiver.received.count == 1 }
                    await group.triggerGracefulShutdown()
                    try await tasks.waitForAll()
                }
                // The dead sender's late result is ignored.
                let late = WebhookAttemptResult(
                    deliveryID: claimed[0].deliveryID, attempt: claimed[0].attempt, attemptedAt: Date(),
                    statusCode: 500, latencyMilliseconds: 1,
                    error: "answered 500", retryDelay: .seconds(1))
                #expect(try await dead.record(late, worker: "dead", disableAfter: .seconds(1)) == .stale)
                #expect(
                    try await api.pool.query("SELECT state, attempts FROM webhook_delivery").first(
                        as: (String, Int).self)! == ("delivered", 2))
            }
        }
    }

    @Test func eventsComeFromBalancesSenderNamesAndResellersToTheirOwnersOnly() async throws {
        try await TenancyHarness.run(configure: Self.stopSenders) { api in
            let tenant = try await api.onboard("Sources")
            let other = try await api.onboard("Others")
            let all = [
                "message.status_changed", "balance.low", "balance.recovered", "account.blocked", "account.unblocked",
                "sender_name.approved", "sender_name.rejected",
            ]
            let resellerWide = try await Self.endpoint(
                api, reseller: tenant.resellerID, subAccount: nil, url: "http://93.184.216.34/r", types: all)
            let own = try await Self.endpoint(
                api, reseller: tenant.resellerID, subAccount: tenant.subAccountID, url: "http://93.184.216.34/s",
                types: all)
            let foreign = try await Self.endpoint(
                api, reseller: other.resellerID, subAccount: nil, url: "http://93.184.216.34/o", types: all)

            try await api.approvedSender("Jansen", for: tenant)
            _ = try await api.call(
                .post, "/resellers/\(tenant.resellerID)/block", key: api.adminKey,
                body: ["status": "blocked", "reason": "x"])
            let types = try await api.pool.query("SELECT type FROM webhook_event ORDER BY occurred_at").decode(
                String.self)
            #expect(types == ["sender_name.approved", "account.blocked"], "\(types)")
            // The sub-account's name reaches both of its owner's endpoints; the reseller's own block only the reseller-wide one.
            let fanOut = try await api.pool.query(
                """
                SELECT e.type, array_agg(d.endpoint_id ORDER BY d.endpoint_id)::text FROM webhook_event e JOIN webhook_delivery d ON d.event_id = e.id
                GROUP BY e.type ORDER BY e.type
                """
            ).decode((String, String).self)
            let pair = "{\([resellerWide, own].map { $0.uuidString.lowercased() }.sorted().joined(separator: ","))}"
            #expect(fanOut.map(\.0) == ["account.blocked", "sender_name.approved"])
            #expect(fanOut[0].1 == "{\(resellerWide.uuidString.lowercased())}" && fanOut[1].1 == pair, "\(fanOut)")
            #expect(
                try await api.pool.query("SELECT count(*) FROM webhook_delivery WHERE endpoint_id = \(foreign)").first(
                    as: Int.self) == 0)

            // Low balance: a threshold set above the balance is crossed at once (the ledger's own event), amounts as
            // decimal strings.
            let wallet = try #require(
                try await LedgerAPITests.wallet(api, key: tenant.subAccountKey, kind: "sub_account_wallet")["id"]
                    as? String)
            let set = try await api.call(
                .put, "/accounts/\(wallet)/low-balance-threshold", key: tenant.subAccountKey, body: ["threshold": "5"])
            #expect(set.status == .ok, "\(set.json)")
            let payload = try await api.pool.query("SELECT payload::text FROM webhook_event WHERE type = 'balance.low'")
                .first(as: String.self)
            #expect(
                payload?.contains("\"available\": \"0.0000\"") == true
                    && payload?.contains("\"threshold\": \"5.0000\"") == true, "\(payload ?? "")")
        }
    }

    @Test func historyPastTheRetentionIsForgottenButPendingDeliveriesStay() async throws {
        try await TenancyHarness.run(configure: Self.stopSenders) { api in
            let tenant = try await api.onboard("Purge")
            try await Self.endpoint(
                api, reseller: tenant.resellerID, subAccount: nil, url: "http://93.184.216.34/h",
                types: ["account.blocked", "account.unblocked"])
            _ = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/block", key: tenant.resellerKey,
                body: ["status": "blocked", "reason": "x"])
            _ = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/unblock", key: tenant.resellerKey, body: [:])
            // Both 40 days old; the block's delivery finished long ago, the unblock's is still pending.
            try await api.pool.query("UPDATE webhook_event SET occurred_at = now() - interval '40 days'")
            try await api.pool.query(
                """
                UPDATE webhook_delivery d SET state = 'delivered', finished_at = now() - interval '31 days'
                FROM webhook_event e WHERE e.id = d.event_id AND e.type = 'account.blocked'
                """)
            try await api.pool.query(
                """
                INSERT INTO webhook_attempt (delivery_id, attempt, attempted_at, status_code, latency_ms)
                SELECT id, 1, now() - interval '31 days', 200, 5 FROM webhook_delivery
                """)
            try await Self.withSender(api.pool) { sender in
                await sender.purge()
            }
            #expect(
                try await api.pool.query("SELECT type FROM webhook_event").decode(String.self) == ["account.unblocked"])
            #expect(try await api.pool.query("SELECT state FROM webhook_delivery").decode(String.self) == ["pending"])
            #expect(try await api.count("webhook_attempt") == 1)
        }
    }

    @Test func theAPIRegistersRotatesListsRedeliversReplaysAndKeepsTenantsApart() async throws {
        let receiver = WebhookReceiver()
        try await receiver.run { port in
            try await TenancyHarness.run(configure: Self.stopSenders) { api in
                let tenant = try await api.onboard("Hooked")
                let other = try await api.onboard("Elsewhere")
                let url = "http://127.0.0.1:\(port)/hook"
                let base = "/sub-accounts/\(tenant.subAccountID)/webhooks"
                // Loopback is refused at registration until the admin allows it.
                var reply = try await api.call(
                    .post, base, key: tenant.subAccountKey, body: ["url": url, "eventTypes": ["account.blocked"]])
                #expect(reply.status == .unprocessableContent, "\(reply.json)")
                for bad in [
                    "http://2130706433/x", "http://[::1]/", "http://169.254.169.254/", "http://localhost/",
                    "ftp://93.184.216.34/",
                ] {
                    reply = try await api.call(
                        .post, base, key: tenant.subAccountKey, body: ["url": bad, "eventTypes": ["account.blocked"]])
                    #expect(reply.status == .unprocessableContent, "\(bad): \(reply.json)")
                }
                #expect(
                    try await api.call(
                        .put, "/webhook-settings", key: tenant.resellerKey, body: ["allowedRanges": ["127.0.0.0/8"]]
                    ).status == .forbidden)
                reply = try await api.call(
                    .put, "/webhook-settings", key: api.adminKey, body: ["allowedRanges": ["127.0.0.1/8", "nonsense"]])
                #expect(reply.status == .unprocessableContent)
                reply = try await api.call(
                    .put, "/webhook-settings", key: api.adminKey, body: ["allowedRanges": ["127.0.0.0/8"]])
                #expect(reply.status == .ok && reply["allowedRanges"] as? [String] == ["127.0.0.0/8"], "\(reply.json)")
                #expect(try await api.auditCount(prefix: "webhook.settings") == 1)

                reply = try await api.call(
                    .post, base, key: tenant.subAccountKey,
                    body: ["url": url, "eventTypes": ["account.blocked", "account.unblocked"], "description": "ops"])
                #expect(reply.status == .created, "\(reply.json)")
                let secret = try #require(reply.string("secret"))
                let webhook = try #require(reply["webhook"] as? [String: Any])
                let id = try #require(webhook["id"] as? String)
                #expect(secret.hasPrefix("whsec_") && secret.count == 54 && webhook["status"] as? String == "active")
                #expect(webhook["subAccountId"] as? String == tenant.subAccountID && webhook["secret"] == nil)
                // A reseller-wide endpoint: the sub-account cannot see it; the reseller sees both.
                reply = try await api.call(
                    .post, "/resellers/\(tenant.resellerID)/webhooks", key: tenant.resellerKey,
                    body: ["url": url, "eventTypes": ["balance.low"]])
                #expect(reply.status == .created, "\(reply.json)")
                let wideID = try #require((reply["webhook"] as? [String: Any])?["id"] as? String)
                #expect(try await api.call(.get, "/webhooks/\(wideID)", key: tenant.subAccountKey).status == .notFound)
                #expect(try await api.call(.get, "/webhooks/\(wideID)", key: tenant.resellerKey).status == .ok)
                #expect(
                    try await api.call(.get, "/webhooks/\(id)", key: tenant.resellerKey).string("description") == "ops")
                #expect(
                    try await api.call(.get, base, key: tenant.resellerKey).items.map { $0["id"] as? String } == [id])
                #expect(
                    try await api.call(
                        .post, "/resellers/\(tenant.resellerID)/webhooks", key: tenant.subAccountKey,
                        body: ["url": url, "eventTypes": ["balance.low"]]
                    ).status == .forbidden)
                for path in ["/webhooks/\(id)", "/webhooks/\(wideID)", "/webhooks/\(id)/deliveries"] {
                    #expect(try await api.call(.get, path, key: other.resellerKey).status == .notFound)
                    #expect(try await api.call(.get, path, key: other.subAccountKey).status == .notFound)
                }
                #expect(
                    try await api.call(.get, "/resellers/\(tenant.resellerID)/webhooks", key: other.resellerKey).status
                        == .notFound)

                // Rotation: the new secret is shown once; both sign while the old one is valid.
                reply = try await api.call(
                    .post, "/webhooks/\(id)/rotate-secret", key: tenant.subAccountKey,
                    body: ["previousSecretValidHours": 1])
                #expect(reply.status == .ok, "\(reply.json)")
                let newSecret = try #require(reply.string("secret"))
                #expect(newSecret != secret && (reply["webhook"] as? [String: Any])?["previousSecretExpiresAt"] != nil)

                try await Self.withSender(api.pool) { sender in
                    receiver.plan([.status(500)])
                    _ = try await api.call(
                        .post, "/sub-accounts/\(tenant.subAccountID)/block", key: tenant.resellerKey,
                        body: ["status": "blocked", "reason": "x"])
                    try await Self.deliver(sender) { receiver.received.count == 2 }
                    let received = try #require(receiver.received.last)
                    #expect(
                        Self.recipeVerifies(received, secret: newSecret)
                            && Self.recipeVerifies(received, secret: secret))
                    #expect(received.headers[HTTPField.Name("Webhook-Signature")!]?.split(separator: ",").count == 2)

                    // The log: one delivery, two attempts (500, then 200).
                    reply = try await api.call(.get, "/webhooks/\(id)/deliveries", key: tenant.subAccountKey)
                    #expect(reply.status == .ok, "\(reply.json)")
                    let delivery = try #require(reply.items.first)
                    #expect(
                        reply.items.count == 1 && delivery["state"] as? String == "delivered"
                            && delivery["attempts"] as? Int == 2)
                    #expect(delivery["eventType"] as? String == "account.blocked" && delivery["nextAttemptAt"] == nil)
                    let log = try #require(delivery["log"] as? [[String: Any]])
                    #expect(
                        log.map { $0["statusCode"] as? Int } == [500, 200] && log.allSatisfy { $0["latencyMs"] is Int },
                        "\(log)")

                    // Redelivery: a new delivery of the same event.
                    let deliveryID = try #require(delivery["id"] as? String)
                    reply = try await api.call(
                        .post, "/webhooks/\(id)/deliveries/\(deliveryID)/redeliver", key: tenant.subAccountKey)
                    #expect(
                        reply.status == .accepted && reply.string("state") == "pending"
                            && reply["nextAttemptAt"] != nil, "\(reply.json)")
                    #expect(
                        try await api.call(
                            .post, "/webhooks/\(wideID)/deliveries/\(deliveryID)/redeliver", key: tenant.resellerKey
                        ).status == .notFound)
                    try await Self.deliver(sender) { receiver.received.count == 3 }
                    #expect(receiver.received[2].body == receiver.received[1].body)

                    // Replay of a period: the one stored event the endpoint wants.
                    _ = try await api.call(
                        .post, "/sub-accounts/\(tenant.subAccountID)/unblock", key: tenant.resellerKey, body: [:])
                    try await Self.deliver(sender) { receiver.received.count == 4 }
                    let now = Date()
                    reply = try await api.call(
                        .post, "/webhooks/\(id)/replay", key: tenant.subAccountKey,
                        body: [
                            "from": now.addingTimeInterval(-3600).formatted(.iso8601),
                            "to": now.addingTimeInterval(60).formatted(.iso8601),
                        ])
                    #expect(reply.status == .accepted && reply["queued"] as? Int == 2, "\(reply.json)")
                    try await Self.deliver(sender) { receiver.received.count == 6 }
                    let types = receiver.received.suffix(2).compactMap {
                        try? JSONSerialization.jsonObject(with: Data($0.body.utf8)) as? [String: Any]
                    }
                    .compactMap { $0["type"] as? String }
                    #expect(types.sorted() == ["account.blocked", "account.unblocked"], "\(types)")
                    reply = try await api.call(
                        .post, "/webhooks/\(id)/replay", key: tenant.subAccountKey,
                        body: ["from": now.formatted(.iso8601), "to": now.formatted(.iso8601)])
                    #expect(reply.status == .unprocessableContent)
                }

                // Disabled: nothing more is sent, redelivery is refused; changes are checked like a registration.
                reply = try await api.call(
                    .patch, "/webhooks/\(id)", key: tenant.subAccountKey, body: ["status": "disabled"])
                #expect(reply.status == .ok && reply.string("status") == "disabled", "\(reply.json)")
                reply = try await api.call(
                    .patch, "/webhooks/\(id)", key: tenant.subAccountKey, body: ["url": "http://169.254.169.254/"])
                #expect(reply.status == .unprocessableContent)
                reply = try await api.call(
                    .patch, "/webhooks/\(id)", key: tenant.subAccountKey,
                    body: ["status": "active", "eventTypes": ["account.blocked"]])
                #expect(
                    reply.status == .ok && reply["eventTypes"] as? [String] == ["account.blocked"]
                        && reply["failingSince"] == nil, "\(reply.json)")
                #expect(try await api.auditCount(prefix: "webhook.") == 6, "settings, 2 creates, a rotation, 2 updates")

                #expect(try await api.call(.delete, "/webhooks/\(id)", key: other.resellerKey).status == .notFound)
                #expect(try await api.call(.delete, "/webhooks/\(id)", key: tenant.subAccountKey).status == .noContent)
                #expect(try await api.call(.get, "/webhooks/\(id)", key: tenant.subAccountKey).status == .notFound)
                #expect(try await api.auditCount(prefix: "webhook.") == 7)
                #expect(
                    try await api.pool.query(
                        "SELECT count(*) FROM webhook_delivery WHERE endpoint_id = \(UUID(uuidString: id)!)"
                    ).first(as: Int.self) == 0)
            }
        }
    }
}
