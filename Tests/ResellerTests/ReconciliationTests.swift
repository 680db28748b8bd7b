import AsyncHTTPClient
import Finance
import Foundation
import Gateway1601
import HTTPTypes
import Logging
import Messaging
import NIOCore
import NIOHTTP1
import PostgresLibpq
import ResellerAPI
import ResellerApp
import ResellerCore
import SMSCore
import Testing
import Webhooks

/// Reconciliation against the upstream (docs/reconciliation.md): the service with its dispatcher, the built-in simulator
/// over real HTTP with drift injected through its control routes, real PostgreSQL.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ReconciliationTests {
    typealias Snapshot = Components.Schemas.CreditSnapshot
    typealias Day = Components.Schemas.ReconciliationDay
    typealias RunResult = Components.Schemas.ReconciliationRunResult

    /// The dispatcher on, messages in doubt looked up quickly, a drift threshold of half a credit.
    static let configure: @Sendable (inout AppConfiguration) -> Void = {
        DeliveryReportTests.dispatching(&$0)
        $0.dispatch.inDoubtSettle = .milliseconds(200)
        $0.reconciliation.driftThreshold = 5_000
        $0.reconciliation.quietPause = .milliseconds(50)
    }

    struct World {
        var api: TenancyHarness
        var connectionID: String
        var simulator: String
        var tenant: TenancyHarness.Tenant
    }

    /// A tenant that sends to the Netherlands, the connection, and the simulator charging what our upstream price list
    /// says (0.0100 per part; the sandbox's own price is 1 credit).
    static func world(_ api: TenancyHarness, _ name: String = "Recon") async throws -> World {
        let tenant = try await api.sendingTenant(name).tenant
        let connection = try #require(try await api.call(.get, "/upstream-connections", key: api.adminKey).items.first)
        let simulator = try #require(connection["baseUrl"] as? String)
        let id = try #require(connection["id"] as? String)
        #expect(
            try await DeliveryReportTests.simulator(
                simulator, .PATCH, "/_sim/accounts/sandbox", #"{"countryCosts":{"31":"0.01"}}"#) == .ok)
        return World(api: api, connectionID: id, simulator: simulator, tenant: tenant)
    }

    /// Sends one message and waits until it is submitted; its id.
    static func send(_ world: World, to number: String = "31612345671") async throws -> String {
        let reply = try await world.api.send(world.tenant, ["sender": "Jansen", "text": "Hi", "recipients": [number]])
        try #require(reply.status == .created, "\(reply.json)")
        let id = try #require((reply["messages"] as? [[String: Any]])?.first?["id"] as? String)
        try await eventually("submitted") {
            try await world.api.pool.query("SELECT status FROM message WHERE id = \(UUID(uuidString: id)!)")
                .first(as: String.self) == "submitted"
        }
        return id
    }

    static func reconcile(_ world: World) async throws -> RunResult {
        let reply = try await world.api.call(
            .post, "/upstream-connections/\(world.connectionID)/reconciliations", key: world.api.adminKey)
        try #require(reply.status == .created, "\(reply.json)")
        return try reply.decode(RunResult.self)
    }

    static func today(_ result: RunResult) throws -> Day {
        let day = Reconciliation.day(of: Date()).formatted(
            Date.ISO8601FormatStyle(timeZone: .gmt).year().month().day())
        return try #require(result.days.first { $0.day == day }, "\(result.days.map(\.day))")
    }

    static func faults(_ world: World, _ json: String) async throws {
        #expect(try await DeliveryReportTests.simulator(world.simulator, .PUT, "/_sim/faults", json) == .ok)
    }

    // MARK: - Clean runs

    @Test func aCleanRunFindsNothingAndDriftIsZeroWithAMessageInFlightOnAPausedConnection() async throws {
        try await TenancyHarness.run(configure: Self.configure) { api in
            let world = try await Self.world(api)
            let sent = [try await Self.send(world), try await Self.send(world, to: "31612345672")]
            let first = try await Self.reconcile(world)
            #expect(first.run.outcome == .ok, "\(first.run)")
            let baseline = try #require(first.snapshot)
            #expect(baseline.drift == "0.0000" && baseline.exact && baseline.baselineSnapshotId == baseline.id)
            // The upstream's million credits against a ledger that never recorded a purchase.
            #expect(baseline.upstreamCredits == "999999.9800" && baseline.ledgerBalance == "-0.0200")
            let day = try Self.today(first)
            #expect(day.differenceCount == 0 && day.matched == 2 && day.complete == false, "\(day)")
            #expect(day.coveredFrom == nil, "a table shorter than asked lists the whole account")

            // A message in flight: the connection is paused (nothing is claimed), a worker claims the message, calls
            // the upstream, which takes and charges it, and has not recorded the answer.
            let paused = try await api.call(
                .post, "/upstream-connections/\(world.connectionID)/pause", key: api.adminKey,
                body: ["reason": "reconciliation test"])
            #expect(paused.status == .ok, "\(paused.json)")
            let reply = try await api.send(
                world.tenant, ["sender": "Jansen", "text": "Hi", "recipients": ["31612345673"]])
            let flyingText = try #require((reply["messages"] as? [[String: Any]])?.first?["id"] as? String)
            let flying = try #require(UUID(uuidString: flyingText))
            try await api.pool.query(
                """
                UPDATE message_outbox SET leased_by = 'worker-in-flight', possibly_sent = true, attempts = attempts + 1,
                    attempted_at = now(), due_at = now() + interval '1 second'
                WHERE message_id = \(flying)
                """)
            let client = Gateway1601Client(
                configuration: Gateway1601Configuration(
                    baseURL: world.simulator, credentials: GatewayCredentials(username: "sandbox", password: "sandbox")),
                logger: HTTPSkeletonTests.logger)
            _ = try await client.send(
                SendRequest(
                    message: "Hi", recipients: .numbers(["31612345673"]), sender: "Jansen", deliveryReport: true,
                    reference: flying.apiString))
            let inFlight = try await Self.reconcile(world)
            let snapshot = try #require(inFlight.snapshot)
            #expect(
                snapshot.drift == "0.0000" && !snapshot.exact && snapshot.inFlightMessages == 1
                    && snapshot.inFlightCost == "0.0100" && snapshot.uncertainty == "0.0100", "\(snapshot)")
            let flyingDay = try Self.today(inFlight)
            #expect(flyingDay.differenceCount == 0 && flyingDay.inFlight == 1 && flyingDay.matched == 2, "\(flyingDay)")

            // Resumed, the dispatcher finds it in the table; then everything matches, exactly.
            _ = try await api.call(.post, "/upstream-connections/\(world.connectionID)/resume", key: api.adminKey)
            try await eventually("the message in doubt is submitted") {
                try await api.pool.query("SELECT status FROM message WHERE id = \(flying)").first(as: String.self)
                    == "submitted"
            }
            let settled = try await Self.reconcile(world)
            let last = try #require(settled.snapshot)
            #expect(last.drift == "0.0000" && last.exact && last.previousSnapshotId == snapshot.id, "\(last)")
            let lastDay = try Self.today(settled)
            #expect(lastDay.differenceCount == 0 && lastDay.matched == 3 && lastDay.inFlight == 0, "\(lastDay)")
            #expect(sent.count == 2)

            let snapshots = try await api.call(
                .get, "/upstream-connections/\(world.connectionID)/credit-snapshots?limit=2", key: api.adminKey)
            let page = try snapshots.decode(Components.Schemas.CreditSnapshotPage.self)
            #expect(page.items.map(\.id) == [last.id, snapshot.id] && page.nextCursor == snapshot.id)
            let rest = try await api.call(
                .get, "/upstream-connections/\(world.connectionID)/credit-snapshots?limit=2&cursor=\(snapshot.id)",
                key: api.adminKey)
            #expect(try rest.decode(Components.Schemas.CreditSnapshotPage.self).items.map(\.id) == [baseline.id])
        }
    }

    // MARK: - Injected drift

    @Test func eachInjectedDriftIsFoundAndExplainedAndRaisesPlatformEventsOnly() async throws {
        let receiver = WebhookReceiver()
        try await receiver.run { port in
            try await TenancyHarness.run(configure: Self.configure) { api in
                try await WebhookTests.allow(api, ["127.0.0.0/8"])
                let world = try await Self.world(api)
                let all = [
                    "upstream.credit_drift", "upstream.credit_drift_recovered", "upstream.reconciliation_mismatch",
                ]
                let platform = try await api.call(
                    .post, "/platform/webhooks", key: api.adminKey,
                    body: ["url": "http://127.0.0.1:\(port)/hook", "eventTypes": all])
                try #require(platform.status == .created, "\(platform.json)")
                let platformHook = try platform.decode(Components.Schemas.WebhookCreated.self)
                #expect(platformHook.webhook.resellerId == nil)
                // A tenant's endpoint wants everything a tenant may have, and may not have a platform event.
                let tenantTypes = [
                    "message.status_changed", "balance.low", "balance.recovered", "account.blocked",
                    "account.unblocked", "sender_name.approved", "sender_name.rejected", "webhook.endpoint_disabled",
                ]
                let tenantHook = try await api.call(
                    .post, "/resellers/\(world.tenant.resellerID)/webhooks", key: world.tenant.resellerKey,
                    body: ["url": "http://127.0.0.1:\(port)/target", "eventTypes": tenantTypes])
                #expect(tenantHook.status == .created, "\(tenantHook.json)")
                let refused = try await api.call(
                    .post, "/resellers/\(world.tenant.resellerID)/webhooks", key: world.tenant.resellerKey,
                    body: ["url": "http://127.0.0.1:\(port)/target", "eventTypes": ["upstream.credit_drift"]])
                #expect(refused.status == .unprocessableContent, "\(refused.json)")
                let adminTenantTypes = try await api.call(
                    .post, "/platform/webhooks", key: api.adminKey,
                    body: ["url": "http://127.0.0.1:\(port)/hook", "eventTypes": ["message.status_changed"]])
                #expect(adminTenantTypes.status == .unprocessableContent, "\(adminTenantTypes.json)")

                _ = try await Self.send(world)
                let baseline = try await Self.reconcile(world)
                #expect(baseline.snapshot?.drift == "0.0000")

                // 1. A purchase at 1601 that we record later: drift, until the purchase is recorded.
                #expect(
                    try await DeliveryReportTests.simulator(
                        world.simulator, .POST, "/_sim/accounts/sandbox/credits", #"{"add":"5"}"#) == .ok)
                let early = try #require(try await Self.reconcile(world).snapshot)
                #expect(early.drift == "5.0000" && early.exact && early.purchases.isEmpty, "\(early)")
                let bought = try await api.call(
                    .post, "/upstream-connections/\(world.connectionID)/purchases", key: api.adminKey,
                    body: ["credits": "5", "amountPaid": "4.5", "currency": "EUR", "invoiceReference": "1601-LATE"],
                    headers: LedgerAPITests.key("late-purchase"))
                #expect(bought.status == .created, "\(bought.json)")
                let recorded = try #require(try await Self.reconcile(world).snapshot)
                #expect(
                    recorded.drift == "0.0000" && recorded.purchasesSincePrevious == "5.0000"
                        && recorded.purchases.map(\.invoiceReference) == ["1601-LATE"], "\(recorded)")

                // 2. A message the upstream charged twice: listed twice, its id named, drift of its cost.
                try await Self.faults(world, #"{"chargeTwiceNext":1}"#)
                let twice = try await Self.send(world, to: "31612345672")
                let second = try await Self.reconcile(world)
                #expect(second.snapshot?.drift == "-0.0100", "\(String(describing: second.snapshot))")
                let twiceDay = try Self.today(second)
                #expect(twiceDay.listedTwice == 1 && twiceDay.differenceCount == 1, "\(twiceDay)")
                let listed = try #require(twiceDay.differences?.first)
                #expect(
                    listed.kind == .listedTwice && listed.messageId == twice && listed.listedUpstreamIds.count == 2
                        && listed.upstreamCost == "0.0100", "\(listed)")
                // Explained: the baseline moves (audited).
                let reset = try await api.call(
                    .post, "/upstream-connections/\(world.connectionID)/reconciliation-baseline", key: api.adminKey,
                    body: ["reason": "1601 credited the double charge on invoice 1601-CN-7"])
                #expect(reset.status == .ok, "\(reset.json)")
                #expect(
                    try await api.pool.query(
                        "SELECT count(*) FROM audit_log WHERE action = 'upstream.reconciliation_baseline'"
                    ).first(as: Int.self) == 1)

                // 3. A message answered OK that the upstream never recorded nor charged.
                try await Self.faults(world, #"{"unrecordedNext":1}"#)
                let lost = try await Self.send(world, to: "31612345673")
                let third = try await Self.reconcile(world)
                #expect(third.snapshot?.drift == "0.0100", "\(String(describing: third.snapshot))")
                let lostDay = try Self.today(third)
                let missing = try #require(lostDay.differences?.first { $0.kind == .missingUpstream }, "\(lostDay)")
                #expect(missing.messageId == lost && missing.upstreamCost == "-0.0100", "\(missing)")
                #expect(lostDay.missingUpstream == 1 && lostDay.listedTwice == 1)

                // The day report, alone, says the same.
                let fetched = try await api.call(
                    .get, "/upstream-connections/\(world.connectionID)/reconciliation-days/\(lostDay.day)",
                    key: api.adminKey)
                #expect(try fetched.decode(Day.self).differences?.count == 2, "\(fetched.json)")
                let days = try await api.call(
                    .get, "/upstream-connections/\(world.connectionID)/reconciliation-days", key: api.adminKey)
                #expect(days.items.count == 1 && days.items.first?["differences"] == nil, "\(days.json)")

                // The metric shows the drift.
                let metrics = try await api.call(.get, "/metrics", key: nil)
                let text = String(decoding: metrics.body, as: UTF8.self)
                let line = text.split(separator: "\n").first {
                    $0.hasPrefix("upstream_credit_drift{") && $0.contains(world.connectionID)
                }
                #expect(line?.hasSuffix(" 0.01") == true, "\(String(describing: line))")
                #expect(text.contains(#"upstream_credit_snapshot_age_seconds{connection="built-in simulator""#))
                #expect(
                    text.contains(
                        #"upstream_reconciliation_differences{connection="built-in simulator",connection_id="\#(world.connectionID)",kind="missing_upstream"} 1"#
                    ))

                // The events: one drift and one recovery for the purchase's crossing (the other drifts stay within
                // the threshold), a mismatch per changed day report; to the platform endpoint only.
                let types = try await api.pool.query(
                    """
                    SELECT ev.type FROM webhook_delivery d JOIN webhook_event ev ON ev.id = d.event_id
                    WHERE d.endpoint_id = \(UUID(uuidString: platformHook.webhook.id)!) ORDER BY ev.occurred_at
                    """
                ).decode(String.self)
                #expect(
                    types == [
                        "upstream.credit_drift", "upstream.credit_drift_recovered", "upstream.reconciliation_mismatch",
                        "upstream.reconciliation_mismatch",
                    ], "\(types)")
                try await WebhookTests.withSender(api.pool) { sender in
                    try await WebhookTests.deliver(sender) {
                        receiver.received.count { $0.path == "/hook" } == 4
                            && receiver.received.contains { $0.path == "/target" }
                    }
                }
                let log = try await api.pool.query(
                    "SELECT state || ' ' || attempts || ' ' || coalesce(last_error, '-') FROM webhook_delivery"
                ).decode(String.self)
                let platformBodies = receiver.received.filter { $0.path == "/hook" }
                #expect(platformBodies.allSatisfy { WebhookTests.recipeVerifies($0, secret: platformHook.secret) })
                #expect(
                    platformBodies.contains {
                        $0.body.contains(#""type": "upstream.credit_drift""#) && $0.body.contains(#""drift": "5.0000""#)
                    }, "\(platformBodies.map(\.body))")
                let tenantBodies = receiver.received.filter { $0.path == "/target" }
                #expect(!tenantBodies.isEmpty, "\(log)")
                #expect(!tenantBodies.isEmpty && !tenantBodies.contains { $0.body.contains("upstream.") })
            }
        }
    }

    // MARK: - The job

    @Test func twoInstancesRunningTheJobAtOnceWriteOneSnapshotPerInterval() async throws {
        try await TenancyHarness.run(configure: Self.configure) { api in
            let world = try await Self.world(api)
            _ = try await Self.send(world)
            var settings = ReconciliationSettings()
            settings.interval = .seconds(3_600)
            let services = (0..<2).map { index in
                ReconciliationService(
                    reconciler: Reconciler(
                        pool: api.pool,
                        upstream: APIHandlers.reconciliationUpstream(
                            connections: UpstreamConnectionRepository(pool: api.pool, cipher: .unencrypted),
                            clients: UpstreamClients(logger: HTTPSkeletonTests.logger)),
                        settings: settings, logger: HTTPSkeletonTests.logger, worker: "instance-\(index)"))
            }
            var ran = 0
            for _ in 0..<3 {
                async let first = services[0].runDue()
                async let second = services[1].runDue()
                ran += try await first + second
            }
            #expect(ran == 1)
            #expect(
                try await api.pool.query("SELECT count(*) FROM upstream_credit_snapshot").first(as: Int.self) == 1)
            #expect(
                try await api.pool.query("SELECT count(*) FROM upstream_reconciliation_run WHERE trigger = 'schedule'")
                    .first(as: Int.self) == 1)
        }
    }

    @Test func aFailingUpstreamIsAFailedRunWithItsReasonAndOnlyTheAdminSeesAnything() async throws {
        try await TenancyHarness.run(configure: Self.configure) { api in
            let world = try await Self.world(api)
            try await Self.faults(world, #"{"maintenance":true}"#)
            let failed = try await Self.reconcile(world)
            #expect(
                failed.run.outcome == .failed && failed.snapshot == nil && failed.run.error?.contains("150") == true,
                "\(failed.run)")
            try await Self.faults(world, #"{"maintenance":false}"#)
            #expect(try await Self.reconcile(world).run.outcome == .ok)

            let base = "/upstream-connections/\(world.connectionID)"
            for key in [world.tenant.resellerKey, world.tenant.subAccountKey] {
                #expect(try await api.call(.post, "\(base)/reconciliations", key: key).status == .notFound)
                #expect(try await api.call(.get, "\(base)/credit-snapshots", key: key).status == .notFound)
                #expect(try await api.call(.get, "\(base)/reconciliation-days", key: key).status == .notFound)
                #expect(
                    try await api.call(.post, "\(base)/reconciliation-baseline", key: key, body: ["reason": "x"]).status
                        == .notFound)
                #expect(try await api.call(.get, "/platform/webhooks", key: key).status == .forbidden)
            }
            let unknown = try await api.call(
                .post, "/upstream-connections/\(UUID().apiString)/reconciliations", key: api.adminKey)
            #expect(
                unknown.status == .notFound
                    && unknown.headers[.contentType]?.hasPrefix("application/problem+json") == true)
            let badDay = try await api.call(.get, "\(base)/reconciliation-days/2026-02-30", key: api.adminKey)
            #expect(badDay.status == .unprocessableContent, "\(badDay.json)")

            // A platform endpoint does not exist for a tenant; the admin changes it.
            try await WebhookTests.allow(api, ["127.0.0.0/8"])
            let created = try await api.call(
                .post, "/platform/webhooks", key: api.adminKey,
                body: ["url": "http://127.0.0.1:9/platform", "eventTypes": ["upstream.credit_drift"]])
            let id = try created.decode(Components.Schemas.WebhookCreated.self).webhook.id
            for key in [world.tenant.resellerKey, world.tenant.subAccountKey] {
                #expect(try await api.call(.get, "/webhooks/\(id)", key: key).status == .notFound)
                #expect(
                    try await api.call(.patch, "/webhooks/\(id)", key: key, body: ["description": "x"]).status
                        == .notFound)
                #expect(try await api.call(.delete, "/webhooks/\(id)", key: key).status == .notFound)
            }
            let listed = try await api.call(
                .get, "/resellers/\(world.tenant.resellerID)/webhooks", key: world.tenant.resellerKey)
            #expect(listed.items.isEmpty)
            let patched = try await api.call(
                .patch, "/webhooks/\(id)", key: api.adminKey,
                body: ["eventTypes": ["upstream.credit_drift", "upstream.reconciliation_mismatch"]])
            #expect(patched.status == .ok, "\(patched.json)")
            let wrong = try await api.call(
                .patch, "/webhooks/\(id)", key: api.adminKey, body: ["eventTypes": ["balance.low"]])
            #expect(wrong.status == .unprocessableContent)
            #expect(try await api.call(.get, "/platform/webhooks", key: api.adminKey).items.count == 1)
            #expect(try await api.call(.delete, "/webhooks/\(id)", key: api.adminKey).status == .noContent)
        }
    }

    // MARK: - The comparison's rules

    static let connection = UUID()

    static func message(_ upstreamID: String?, submitted: Date?, status: String = "submitted") -> ReconciledMessage {
        ReconciledMessage(
            id: UUID(), upstreamID: upstreamID, connectionID: connection, status: status,
            acceptedAt: submitted ?? Date(), submittedAt: submitted, upstreamCost: 100)
    }

    static func row(_ smsID: String, _ message: ReconciledMessage?) -> ReportEntry {
        ReportEntry(
            smsID: smsID, recipient: "31612345678", status: .delivered, updatedAt: nil,
            reference: message?.id.apiString ?? "")
    }

    @Test func aFullTableCoversFromItsOldestMessageOfOursOnAndOtherIdsAndStrangersAreNamed() async throws {
        let now = Date()
        // 120 messages of ours a minute apart, the newest first; the table lists the newest 100 (asked 100).
        let ours: [ReconciledMessage] = (0..<120).map { (index: Int) -> ReconciledMessage in
            let submitted: Date = now.addingTimeInterval(Double(-60 * (index + 1)))
            return Self.message(String(2_000_000 - index), submitted: submitted)
        }
        var rows = ours.prefix(100).map { Self.row($0.upstreamID!, $0) }
        rows[3] = Self.row("7777777", ours[3])  // (d): listed under another id
        rows.insert(Self.row("8888888", nil), at: 5)  // (a): a stranger
        rows.removeLast()  // still 100 rows; ours[99] is below the table's end
        let window: @Sendable (Date?) async throws -> [ReconciledMessage] = { start in
            ours.filter { message in start.map { message.submittedAt! > $0 } ?? true }
        }
        let comparison: ReportComparison = try await Reconciliation.compare(
            rows: rows, asked: 100, connectionID: Self.connection, known: ours, askedAt: now, margin: .seconds(60),
            windowMessages: window)
        // The oldest listed message of ours is ours[98]; the window starts a margin after it.
        #expect(comparison.windowStart == ours[98].submittedAt!.addingTimeInterval(60))
        let kinds: [String] = comparison.differences.map { $0.difference.kind.rawValue }.sorted()
        #expect(kinds == ["other_upstream_id", "unknown_upstream"], "\(kinds)")
        let differences: [ReconciliationDifference] = comparison.differences.map { $0.difference }
        let other = try #require(differences.first { $0.kind == ReconciliationDifferenceKind.otherUpstreamID })
        #expect(
            other.messageId == ours[3].id && other.listedUpstreamIds == ["7777777"] && other.upstreamId == "1999997")
        // Older messages are outside the window, not missing; a day the window begins in is not complete.
        let days = Reconciliation.days(of: comparison)
        #expect(days.allSatisfy { !$0.complete || $0.coveredFrom == $0.day })
        #expect(days.first?.coveredFrom == comparison.windowStart)

        // A message of ours submitted after the window's start and not listed is missing.
        var dropped = rows
        dropped.remove(at: 10)
        let missing: ReportComparison = try await Reconciliation.compare(
            rows: dropped, asked: 100, connectionID: Self.connection, known: ours, askedAt: now, margin: .seconds(60),
            windowMessages: window)
        let missingKinds: [ReconciliationDifferenceKind] = missing.differences.map { $0.difference.kind }
        #expect(missingKinds.contains(.missingUpstream))
    }

    @Test func theUpstreamsCreditsAreLedgerUnits() {
        #expect(Reconciliation.minorUnits(ofCredits: Decimal(string: "999997.5")!) == 9_999_975_000)
        #expect(Reconciliation.minorUnits(ofCredits: Decimal(string: "-3")!) == -30_000)
        #expect(Reconciliation.minorUnits(ofCredits: Decimal(string: "0.00005")!) == 0)
        #expect(Reconciliation.minorUnits(ofCredits: Decimal(string: "0.00015")!) == 2)
    }
}
