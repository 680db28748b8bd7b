import Foundation
import HTTPTypes
import Ledger
import Messaging
import NIOHTTP1
import PostgresLibpq
import ResellerApp
import ResellerCore
import Testing
import Webhooks

/// The on-call figures of `/metrics` (docs/operations.md, "Metrics"): each situation made for real (a queued message, a
/// failing webhook endpoint, an upstream refusing calls), then read over HTTP from a live server on real PostgreSQL.
@Suite(.serialized, .timeLimit(.minutes(5))) struct OperationsMetricsTests {
    /// The text of `/metrics`.
    static func scrape(_ api: TenancyHarness) async throws -> String {
        let reply = try await api.call(.get, "/metrics", key: nil)
        try #require(reply.status == .ok)
        return String(decoding: reply.body, as: UTF8.self)
    }

    /// The value of the sample `name{labels}` (exactly those labels, in the order written), nil when absent.
    static func value(_ text: String, _ name: String, _ labels: [(String, String)] = []) -> Double? {
        let series =
            labels.isEmpty ? name : name + "{" + labels.map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",") + "}"
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    @Test func aQueuedMessageAnOverdueReservationAndAWaitingReportShowOnTheMetrics() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.sendingTenant("Queue").tenant
            let connection = try #require(
                try await api.call(.get, "/upstream-connections", key: api.adminKey).items.first)
            let id = try #require(connection["id"] as? String)
            let name = try #require(connection["name"] as? String)
            let labels = [("connection", name), ("connection_id", id)]

            // Nothing queued yet: the connection's gauges exist, at zero.
            var text = try await Self.scrape(api)
            #expect(Self.value(text, "dispatch_queue_messages", labels) == 0, "\(text)")
            #expect(Self.value(text, "dispatch_queue_oldest_due_age_seconds", labels) == 0)
            #expect(Self.value(text, "database_up") == 1)
            #expect(Self.value(text, "db_pool_max_connections") == 6)
            #expect((Self.value(text, "db_pool_acquire_wait_seconds_count") ?? 0) > 0, "\(text)")
            #expect(Self.value(text, "ledger_reservations_overdue") == 0)

            // A message queued (no dispatcher here), due for ten minutes: the queue and its age.
            let reply = try await api.send(tenant, ["sender": "Jansen", "text": "Hi", "recipients": ["31612345671"]])
            try #require(reply.status == .created, "\(reply.json)")
            try await api.pool.query("UPDATE message_outbox SET due_at = now() - interval '10 minutes'")
            text = try await Self.scrape(api)
            #expect(Self.value(text, "dispatch_queue_messages", labels) == 1, "\(text)")
            #expect(Self.value(text, "dispatch_queue_due_messages", labels) == 1)
            let age = try #require(Self.value(text, "dispatch_queue_oldest_due_age_seconds", labels))
            #expect(age >= 600 && age < 3600, "\(age)")

            // A reservation past its timeout with no upkeep running: the expiry backlog.
            try await Self.reserve(api, tenant, timeout: 0.2)
            try await Task.sleep(for: .seconds(1))
            text = try await Self.scrape(api)
            #expect(Self.value(text, "ledger_reservations_overdue") == 1, "\(text)")
            #expect((Self.value(text, "ledger_reservations_overdue_age_seconds") ?? 0) >= 0.5)

            // The idempotency record of the send and an older one: the oldest's age, and the table's size once
            // PostgreSQL's statistics have them.
            try await api.pool.query(
                """
                INSERT INTO idempotency_record (scope, key, operation, request_hash, status_code, response, created_at)
                VALUES ('admin', 'old', 'x', '\\x00', 201, '{}', now() - interval '1 hour')
                """)
            text = try await Self.scrape(api)
            #expect((Self.value(text, "idempotency_oldest_record_age_seconds") ?? 0) >= 3600, "\(text)")
            try await eventually("the statistics count the idempotency record") {
                (Self.value(try await Self.scrape(api), "idempotency_records") ?? 0) >= 1
            }

            // Submitted five minutes ago and no report since: the report lag.
            try await api.pool.query("DELETE FROM message_outbox")
            try await api.pool.query(
                """
                UPDATE message SET status = 'submitted', upstream_id = 'U1', upstream_connection_id = \(UUID(uuidString: id)!),
                    submitted_at = now() - interval '5 minutes'
                """)
            text = try await Self.scrape(api)
            #expect(Self.value(text, "dispatch_queue_messages", labels) == 0, "\(text)")
            #expect(Self.value(text, "delivery_reports_awaiting") == 1)
            let lag = try #require(Self.value(text, "delivery_report_oldest_awaiting_age_seconds"))
            #expect(lag >= 300 && lag < 3600, "\(lag)")
        }
    }

    /// A reservation of one credit on the sub-account's wallet that times out `timeout` seconds from now.
    static func reserve(_ api: TenancyHarness, _ tenant: TenancyHarness.Tenant, timeout: Double) async throws {
        let ledger = LedgerRepository(pool: api.pool)
        let wallet = try #require(try await ledger.wallet(subAccountID: UUID(uuidString: tenant.subAccountID)!))
        let revenue = try #require(
            try await ledger.account(kind: .resellerRevenue, resellerID: wallet.resellerID, subAccountID: nil))
        _ = try await ledger.apply([
            .pending(
                from: wallet.id, to: revenue.id, amount: 10_000, timeoutAt: Date().addingTimeInterval(timeout),
                code: "send_retail", by: "test")
        ])
    }

    @Test func theLedgerUpkeepCountsTheReservationsItExpires() async throws {
        try await TenancyHarness.run(configure: {
            $0.ledgerMaintenance = true
            $0.ledgerMaintenanceInterval = .milliseconds(100)
        }) { api in
            let tenant = try await api.sendingTenant("Upkeep").tenant
            #expect(Self.value(try await Self.scrape(api), "ledger_reservations_expired_total") == nil)
            try await Self.reserve(api, tenant, timeout: 0.3)
            try await eventually("the upkeep expired the reservation") {
                Self.value(try await Self.scrape(api), "ledger_reservations_expired_total") == 1
            }
            #expect(Self.value(try await Self.scrape(api), "ledger_reservations_overdue") == 0)
        }
    }

    @Test func aFailingWebhookEndpointShowsItsBacklogAndFailureThenGoesWhenDisabled() async throws {
        let receiver = WebhookReceiver()
        try await receiver.run { port in
            try await TenancyHarness.run(configure: WebhookTests.stopSenders) { api in
                try await WebhookTests.allow(api, ["127.0.0.0/8"])
                let tenant = try await api.onboard("Hooks")
                let endpoint = try await WebhookTests.endpoint(
                    api, reseller: tenant.resellerID, subAccount: nil, url: "http://127.0.0.1:\(port)/hook",
                    types: ["account.blocked"])
                let labels = [("endpoint_id", endpoint.uuidString.lowercased())]
                receiver.plan([.status(500), .status(500), .status(500)])
                let blocked = try await api.call(
                    .post, "/sub-accounts/\(tenant.subAccountID)/block", key: tenant.resellerKey,
                    body: ["status": "blocked", "reason": "unpaid"])
                try #require(blocked.status == .ok, "\(blocked.json)")

                var text = try await Self.scrape(api)
                #expect(Self.value(text, "webhook_deliveries_pending", labels) == 1, "\(text)")
                #expect(Self.value(text, "webhook_endpoints", [("status", "active")]) == 1)
                #expect(Self.value(text, "webhook_endpoint_failing_seconds", labels) == nil)

                // One attempt answered 500: the endpoint is failing, the delivery still pending.
                try await WebhookTests.withSender(
                    api.pool, configure: { $0.backoff = RetryBackoff(base: .seconds(600), cap: .seconds(600)) }
                ) { sender in
                    await sender.runOnce()
                }
                #expect(receiver.received.count == 1)
                text = try await Self.scrape(api)
                #expect(Self.value(text, "webhook_deliveries_pending", labels) == 1, "\(text)")
                #expect(Self.value(text, "webhook_endpoint_failing_seconds", labels) != nil, "\(text)")

                // Disabled by its owner: counted as disabled, no longer failing; its backlog drained, its gauges go.
                try await api.pool.query("UPDATE webhook_endpoint SET status = 'disabled' WHERE id = \(endpoint)")
                try await api.pool.query("UPDATE webhook_delivery SET state = 'failed', finished_at = now()")
                text = try await Self.scrape(api)
                #expect(Self.value(text, "webhook_endpoints", [("status", "disabled")]) == 1, "\(text)")
                #expect(Self.value(text, "webhook_endpoints", [("status", "active")]) == 0)
                #expect(Self.value(text, "webhook_endpoint_failing_seconds", labels) == nil)
                #expect(Self.value(text, "webhook_deliveries_pending", labels) == nil)
            }
        }
    }

    @Test func theReportPollersCallsAreTimedAndItsFailuresCountedByCode() async throws {
        try await TenancyHarness.run(configure: {
            DeliveryReportTests.dispatching(&$0)
            $0.reportPolling = true
            $0.reportPoll.interval = .milliseconds(100)
            $0.reportPoll.pollAfter = .milliseconds(200)
            $0.reportPoll.pollCap = .milliseconds(200)
        }) { api in
            let connection = try #require(
                try await api.call(.get, "/upstream-connections", key: api.adminKey).items.first)
            let simulator = try #require(connection["baseUrl"] as? String)
            let name = try #require(connection["name"] as? String)
            // No callbacks and no progress: the message stays submitted, so the poller keeps asking about it.
            #expect(
                try await DeliveryReportTests.simulator(simulator, .PUT, "/_sim/delivery", #"{"automatic":false}"#)
                    == .ok)
            _ = try await DeliveryReportTests.sent(api, "Polled", recipients: ["31612345671"])
            try await eventually("a poll answered") {
                (Self.value(
                    try await Self.scrape(api), "report_poll_call_duration_seconds_count",
                    [("connection", name), ("result", "ok")]) ?? 0) >= 1
            }
            // 150 to every call from now on: the polls fail, counted by that code.
            #expect(
                try await DeliveryReportTests.simulator(simulator, .PUT, "/_sim/faults", #"{"maintenance":true}"#)
                    == .ok)
            try await eventually("a failed poll counted by its code") {
                (Self.value(
                    try await Self.scrape(api), "report_poll_errors_total", [("connection", name), ("code", "150")])
                    ?? 0) >= 1
            }
            let text = try await Self.scrape(api)
            #expect(
                (Self.value(
                    text, "report_poll_call_duration_seconds_count", [("connection", name), ("result", "error")])
                    ?? 0) >= 1, "\(text)")
            // Not the dispatcher's: it had nothing to send meanwhile.
            #expect(Self.value(text, "dispatch_upstream_errors_total", [("connection", name), ("code", "150")]) == nil)
        }
    }

    @Test func anUpstreamRefusalIsCountedByItsCodeAndPausesTheConnection() async throws {
        try await TenancyHarness.run(configure: DeliveryReportTests.dispatching) { api in
            let tenant = try await api.sendingTenant("Refused").tenant
            let connection = try #require(
                try await api.call(.get, "/upstream-connections", key: api.adminKey).items.first)
            let simulator = try #require(connection["baseUrl"] as? String)
            let id = try #require(connection["id"] as? String)
            let name = try #require(connection["name"] as? String)
            // 115: the upstream account is blocked for payment, an account-level refusal.
            #expect(
                try await DeliveryReportTests.simulator(
                    simulator, .PATCH, "/_sim/accounts/sandbox", #"{"status":"blocked_payment"}"#) == .ok)
            let reply = try await api.send(tenant, ["sender": "Jansen", "text": "Hi", "recipients": ["31612345671"]])
            try #require(reply.status == .created, "\(reply.json)")
            try await eventually("the connection is paused") {
                Self.value(
                    try await Self.scrape(api), "upstream_connection_paused",
                    [("connection", name), ("connection_id", id)]) == 1
            }
            let text = try await Self.scrape(api)
            #expect(
                Self.value(text, "dispatch_upstream_errors_total", [("connection", name), ("code", "115")]) == 1,
                "\(text)")
            #expect(
                Self.value(text, "dispatch_queue_messages", [("connection", name), ("connection_id", id)]) == 1)
        }
    }
}
