import Foundation
import HTTPTypes
import PostgresLibpq
import ResellerCore
import Synchronization
import Testing
import Webhooks

/// One receiver's trouble stays its own: a stalled or endless answer, a backlog, replays and redeliveries in bulk.
extension WebhookTests {
    /// `body` on a task of its own; an issue (and the task cancelled) when it has not ended within `timeout`.
    static func finishes(
        _ what: String, within timeout: Duration, _ body: @escaping @Sendable () async -> Void
    ) async throws {
        let done = Atomic<Bool>(false)
        let task = Task {
            await body()
            done.store(true, ordering: .relaxed)
        }
        do {
            try await eventually(what, timeout: timeout) { done.load(ordering: .relaxed) }
        } catch {
            task.cancel()
            throw error
        }
    }

    static func deliveryState(_ api: TenancyHarness, endpoint: UUID) async throws -> [(String, Int, String?)] {
        try await api.pool.query(
            "SELECT state, attempts, last_error FROM webhook_delivery WHERE endpoint_id = \(endpoint) ORDER BY created_at"
        ).decode((String, Int, String?).self)
    }

    @Test func aReceiverThatStallsAfterItsHeadersIsATimedOutAttemptAndHoldsNoOtherEndpointBack() async throws {
        let receiver = WebhookReceiver()
        try await receiver.run { port in
            try await TenancyHarness.run(configure: Self.stopSenders) { api in
                try await Self.allow(api, ["127.0.0.0/8"])
                let tenant = try await api.onboard("Stalled")
                var endpoints: [String: UUID] = [:]
                for path in ["/stall", "/trickle", "/flood", "/hook"] {
                    endpoints[path] = try await Self.endpoint(
                        api, reseller: tenant.resellerID, subAccount: nil, url: "http://127.0.0.1:\(port)\(path)",
                        types: ["account.blocked", "account.unblocked"])
                }
                let blocked = try await api.call(
                    .post, "/sub-accounts/\(tenant.subAccountID)/block", key: tenant.resellerKey,
                    body: ["status": "blocked", "reason": "unpaid"])
                try #require(blocked.status == .ok, "\(blocked.json)")

                // One round: the headers of /stall and /trickle come at once, their bodies never end; the round still
                // ends after the timeout, and the others' deliveries went out in it (3 s: under a loaded machine's
                // scheduling /flood's answer once took longer than 1 s to be read).
                try await Self.withSender(api.pool, timeout: .seconds(3)) { sender in
                    try await Self.finishes("the round with stalled receivers ended", within: .seconds(30)) {
                        await sender.runOnce()
                    }
                }
                for path in ["/stall", "/trickle"] {
                    let state = try await Self.deliveryState(api, endpoint: try #require(endpoints[path]))
                    #expect(state.count == 1 && state[0].0 == "pending" && state[0].1 == 1, "\(path): \(state)")
                    #expect(state.first?.2?.contains("no answer within") == true, "\(path): \(state)")
                }
                // A body far beyond what is read: the answer counts by its status; the rest is not read.
                for path in ["/flood", "/hook"] {
                    let state = try await Self.deliveryState(api, endpoint: try #require(endpoints[path]))
                    #expect(state.map(\.0) == ["delivered"], "\(path): \(state)")
                }

                // The running sender: while attempts at /stall and /trickle hang for their whole (long) timeout,
                // another endpoint's new event goes out well before that.
                try await Self.withSender(
                    api.pool, timeout: .seconds(60), configure: { $0.pollInterval = .milliseconds(50) }
                ) { sender in
                    let running = Task { try await sender.run() }
                    defer { running.cancel() }
                    try await eventually("both stalled receivers are being retried") {
                        receiver.received.filter { $0.path == "/stall" }.count == 2
                            && receiver.received.filter { $0.path == "/trickle" }.count == 2
                    }
                    let unblocked = try await api.call(
                        .post, "/sub-accounts/\(tenant.subAccountID)/unblock", key: tenant.resellerKey, body: [:])
                    try #require(unblocked.status == .ok, "\(unblocked.json)")
                    // Generous, yet a third of the stalled attempts' timeout.
                    try await eventually("the other endpoint's new event is delivered", timeout: .seconds(20)) {
                        receiver.received.filter { $0.path == "/hook" && $0.body.contains("account.unblocked") }
                            .count == 1
                    }
                }
            }
        }
    }

    @Test func oneEndpointsBacklogBehindASlowReceiverDoesNotDelayAnotherEndpointsNewEvent() async throws {
        let receiver = WebhookReceiver()
        try await receiver.run { port in
            try await TenancyHarness.run(configure: Self.stopSenders) { api in
                try await Self.allow(api, ["127.0.0.0/8"])
                let tenant = try await api.onboard("Backlog")
                let slow = try await Self.endpoint(
                    api, reseller: tenant.resellerID, subAccount: nil, url: "http://127.0.0.1:\(port)/slow",
                    types: ["account.blocked"])
                let prompt = try await Self.endpoint(
                    api, reseller: tenant.resellerID, subAccount: nil, url: "http://127.0.0.1:\(port)/hook",
                    types: ["account.unblocked"])
                _ = try await api.call(
                    .post, "/sub-accounts/\(tenant.subAccountID)/block", key: tenant.resellerKey,
                    body: ["status": "blocked", "reason": "x"])
                // 2 000 deliveries to the slow receiver, due for an hour already (a replay, an outage's backlog).
                try await api.pool.query(
                    """
                    INSERT INTO webhook_delivery (reseller_id, endpoint_id, event_id, due_at)
                    SELECT d.reseller_id, d.endpoint_id, d.event_id, now() - interval '1 hour'
                    FROM webhook_delivery d, generate_series(1, 2000)
                    WHERE d.endpoint_id = \(slow)
                    """)
                _ = try await api.call(
                    .post, "/sub-accounts/\(tenant.subAccountID)/unblock", key: tenant.resellerKey, body: [:])
                try await Self.withSender(api.pool, timeout: .seconds(5)) { sender in
                    let perEndpoint = sender.settings.perEndpoint
                    for _ in 0..<2 {
                        await sender.runOnce()
                        if try await Self.deliveryState(api, endpoint: prompt).map(\.0) == ["delivered"] { break }
                    }
                    #expect(
                        try await Self.deliveryState(api, endpoint: prompt).map(\.0) == ["delivered"],
                        "the new event waited behind the backlog")
                    let attempted = try await api.pool.query(
                        "SELECT count(*) FROM webhook_delivery WHERE endpoint_id = \(slow) AND attempts > 0"
                    ).first(as: Int.self)
                    #expect(
                        (attempted ?? 0) <= 2 * perEndpoint,
                        "at most \(perEndpoint) of one endpoint's deliveries at a time: \(attempted ?? 0)")
                }
            }
        }
    }

    @Test func replayAndRedeliveryAreRateLimitedAndRefusedOverAnEndpointsPendingCap() async throws {
        try await TenancyHarness.run(configure: Self.stopSenders) { api in
            try await Self.allow(api, ["127.0.0.0/8"])
            let tenant = try await api.onboard("Replays")
            var ids: [String] = []
            for path in ["/a", "/b"] {
                let reply = try await api.call(
                    .post, "/sub-accounts/\(tenant.subAccountID)/webhooks", key: tenant.subAccountKey,
                    body: ["url": "http://127.0.0.1:9\(path)", "eventTypes": ["account.blocked"]])
                try #require(reply.status == .created, "\(reply.json)")
                ids.append(try #require((reply["webhook"] as? [String: Any])?["id"] as? String))
            }
            _ = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/block", key: tenant.resellerKey,
                body: ["status": "blocked", "reason": "x"])
            let delivery = try #require(
                try await api.call(.get, "/webhooks/\(ids[0])/deliveries", key: tenant.subAccountKey).items.first?[
                    "id"] as? String)
            let now = Date()
            let period: [String: Any] = [
                "from": now.addingTimeInterval(-3600).formatted(.iso8601),
                "to": now.addingTimeInterval(60).formatted(.iso8601),
            ]

            // Redelivery: so many calls per endpoint in a window, then 429 with Retry-After.
            let redeliver = WebhookEndpointRepository.redeliverRate
            for call in 0..<redeliver.calls {
                let reply = try await api.call(
                    .post, "/webhooks/\(ids[0])/deliveries/\(delivery)/redeliver", key: tenant.subAccountKey)
                try #require(reply.status == .accepted, "call \(call): \(reply.json)")
            }
            var reply = try await api.call(
                .post, "/webhooks/\(ids[0])/deliveries/\(delivery)/redeliver", key: tenant.subAccountKey)
            #expect(reply.status == .tooManyRequests, "\(reply.json)")
            #expect(
                reply.headers[.contentType]?.hasPrefix("application/problem+json") == true
                    && reply.string("code") == "rate_limited")
            let wait = Int(reply.headers[.retryAfter] ?? "")
            #expect(wait.map { $0 >= 1 && $0 <= Int(redeliver.window.inSeconds) } == true, "\(reply.headers)")

            // Replay likewise, counted apart from redelivery.
            let replay = WebhookEndpointRepository.replayRate
            for call in 0..<replay.calls {
                reply = try await api.call(.post, "/webhooks/\(ids[0])/replay", key: tenant.subAccountKey, body: period)
                try #require(reply.status == .accepted && reply["queued"] as? Int == 1, "call \(call): \(reply.json)")
            }
            reply = try await api.call(.post, "/webhooks/\(ids[0])/replay", key: tenant.subAccountKey, body: period)
            #expect(reply.status == .tooManyRequests && reply.string("code") == "rate_limited", "\(reply.json)")
            #expect(Int(reply.headers[.retryAfter] ?? "").map { $0 >= 1 } == true, "\(reply.headers)")
            // The other endpoint's calls are its own.
            reply = try await api.call(.post, "/webhooks/\(ids[1])/replay", key: tenant.subAccountKey, body: period)
            #expect(reply.status == .accepted, "\(reply.json)")

            // The cap on pending deliveries: a replay or redelivery that would pass it is refused, 409.
            let cap = WebhookEndpointRepository.pendingCap
            let second = try #require(UUID(uuidString: ids[1]))
            try await api.pool.query(
                """
                INSERT INTO webhook_delivery (reseller_id, endpoint_id, event_id, due_at)
                SELECT d.reseller_id, d.endpoint_id, d.event_id, now() + interval '1 hour'
                FROM (SELECT * FROM webhook_delivery WHERE endpoint_id = \(second) LIMIT 1) d,
                     generate_series(1, \(cap) - (SELECT count(*) FROM webhook_delivery WHERE endpoint_id = \(second) AND state = 'pending')::int)
                """)
            let secondDelivery = try #require(
                try await api.call(.get, "/webhooks/\(ids[1])/deliveries?limit=1", key: tenant.subAccountKey).items
                    .first?["id"] as? String)
            reply = try await api.call(.post, "/webhooks/\(ids[1])/replay", key: tenant.subAccountKey, body: period)
            #expect(reply.status == .conflict, "\(reply.json)")
            #expect(reply.string("detail")?.contains("\(cap)") == true, "\(reply.json)")
            reply = try await api.call(
                .post, "/webhooks/\(ids[1])/deliveries/\(secondDelivery)/redeliver", key: tenant.subAccountKey)
            #expect(reply.status == .conflict, "\(reply.json)")
            #expect(try await Self.pending(api, second) == cap)
            // A live event is never refused: it is queued beyond the cap (docs/webhooks.md).
            _ = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/unblock", key: tenant.resellerKey, body: [:])
            _ = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/block", key: tenant.resellerKey,
                body: ["status": "blocked", "reason": "again"])
            #expect(try await Self.pending(api, second) == cap + 1)
        }
    }

    static func pending(_ api: TenancyHarness, _ endpoint: UUID) async throws -> Int? {
        try await api.pool.query(
            "SELECT count(*) FROM webhook_delivery WHERE endpoint_id = \(endpoint) AND state = 'pending'"
        ).first(as: Int.self)
    }

    @Test func theAdminReadsTenantsWebhooksButCannotRegisterChangeOrResendThem() async throws {
        try await TenancyHarness.run(configure: Self.stopSenders) { api in
            try await Self.allow(api, ["127.0.0.0/8"])
            let tenant = try await api.onboard("Watched")
            var reply = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/webhooks", key: tenant.subAccountKey,
                body: ["url": "http://127.0.0.1:9/hook", "eventTypes": ["account.blocked"]])
            try #require(reply.status == .created, "\(reply.json)")
            let id = try #require((reply["webhook"] as? [String: Any])?["id"] as? String)
            reply = try await api.call(
                .post, "/resellers/\(tenant.resellerID)/webhooks", key: tenant.resellerKey,
                body: ["url": "http://127.0.0.1:9/wide", "eventTypes": ["account.blocked"]])
            try #require(reply.status == .created, "\(reply.json)")
            let wideID = try #require((reply["webhook"] as? [String: Any])?["id"] as? String)
            _ = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/block", key: tenant.resellerKey,
                body: ["status": "blocked", "reason": "x"])
            let delivery = try #require(
                try await api.call(.get, "/webhooks/\(id)/deliveries", key: api.adminKey).items.first?["id"] as? String)

            // Reads.
            for path in [
                "/sub-accounts/\(tenant.subAccountID)/webhooks", "/resellers/\(tenant.resellerID)/webhooks",
                "/webhooks/\(id)", "/webhooks/\(wideID)", "/webhooks/\(id)/deliveries",
            ] {
                reply = try await api.call(.get, path, key: api.adminKey)
                #expect(reply.status == .ok, "\(path): \(reply.json)")
            }

            // Every write: 403, and nothing changed.
            let before = try await api.pool.query(
                "SELECT count(*), string_agg(secret || url || status || array_to_string(event_types, ','), ';' ORDER BY id) FROM webhook_endpoint"
            ).first(as: (Int, String).self)
            let deliveriesBefore = try await api.count("webhook_delivery")
            let auditBefore = try await api.auditCount(prefix: "webhook.")
            let now = Date()
            let period: [String: Any] = [
                "from": now.addingTimeInterval(-3600).formatted(.iso8601),
                "to": now.addingTimeInterval(60).formatted(.iso8601),
            ]
            let writes: [(HTTPRequest.Method, String, [String: Any]?)] = [
                (
                    .post, "/sub-accounts/\(tenant.subAccountID)/webhooks",
                    ["url": "http://127.0.0.1:9/admin", "eventTypes": ["account.blocked"]]
                ),
                (
                    .post, "/resellers/\(tenant.resellerID)/webhooks",
                    ["url": "http://127.0.0.1:9/admin", "eventTypes": ["account.blocked"]]
                ),
                (.patch, "/webhooks/\(id)", ["status": "disabled"]),
                (.patch, "/webhooks/\(wideID)", ["description": "admin was here"]),
                (.delete, "/webhooks/\(id)", nil),
                (.delete, "/webhooks/\(wideID)", nil),
                (.post, "/webhooks/\(id)/rotate-secret", ["previousSecretValidHours": 0]),
                (.post, "/webhooks/\(id)/deliveries/\(delivery)/redeliver", nil),
                (.post, "/webhooks/\(id)/replay", period),
                (.post, "/webhooks/\(wideID)/replay", period),
            ]
            for (method, path, body) in writes {
                reply = try await api.call(method, path, key: api.adminKey, body: body)
                #expect(reply.status == .forbidden, "\(method) \(path): \(reply.status) \(reply.json)")
                #expect(
                    reply.headers[.contentType]?.hasPrefix("application/problem+json") == true
                        && reply.string("code") == "forbidden",
                    "\(method) \(path): \(reply.json)")
            }
            let after = try await api.pool.query(
                "SELECT count(*), string_agg(secret || url || status || array_to_string(event_types, ','), ';' ORDER BY id) FROM webhook_endpoint"
            ).first(as: (Int, String).self)
            #expect(before?.0 == after?.0 && before?.1 == after?.1, "the endpoints are as they were")
            #expect(try await api.count("webhook_delivery") == deliveriesBefore)
            #expect(try await api.auditCount(prefix: "webhook.") == auditBefore)
        }
    }
}
