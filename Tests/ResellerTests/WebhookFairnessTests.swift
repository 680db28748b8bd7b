import Foundation
import HTTPTypes
import PostgresLibpq
import ResellerCore
import Synchronization
import Testing
import Webhooks

/// Who may do what with webhooks, one receiver's trouble staying its own: the admin's reading, a stalled or endless
/// answer, a backlog, replays and redeliveries in bulk.
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
                // ends after the timeout, and the others' deliveries went out in it.
                try await Self.withSender(api.pool, timeout: .seconds(1)) { sender in
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
