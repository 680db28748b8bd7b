import Foundation
import HTTPTypes
import PostgresLibpq
import ResellerCore
import Testing
import Webhooks

/// Who may do what with webhooks, one receiver's trouble staying its own: the admin's reading, a stalled or endless
/// answer, a backlog, replays and redeliveries in bulk.
extension WebhookTests {
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
