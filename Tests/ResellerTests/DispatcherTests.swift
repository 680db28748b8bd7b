import CompatibleGateway
import Foundation
import Gateway1601
import Gateway1601Simulator
import Ledger
import Logging
import Messaging
import PostgresLibpq
import PostgresTestSupport
import ResellerApp
import ResellerCore
import ServiceLifecycle
import ServiceTestSupport
import Testing

/// The dispatcher against a real database and the simulator over real HTTP: sending and recording, each disposition
/// (fail, pause, retry, deadline), several dispatchers at once, a dead worker's lease, scheduled messages, graceful
/// shutdown, and the lease guard of the recording SQL.
@Suite(.serialized, .timeLimit(.minutes(3))) struct DispatcherTests {
    /// A migrated database, the simulator running as the default upstream connection, a funded tenant.
    struct World: Sendable {
        let pool: PostgresPool
        let simulator: GatewaySimulator
        let connectionID: UUID
        let tenant: MessageFixtures.Tenant

        var connections: UpstreamConnectionRepository { UpstreamConnectionRepository(pool: pool) }
        var outbox: OutboxRepository { OutboxRepository(pool: pool) }

        /// Send calls the simulator received, oldest first.
        var sends: [ReceivedRequest] {
            simulator.receivedRequests().filter {
                $0.path == GatewayCall.gatewayPath && $0.parameters.value(of: "action") == nil
            }
        }
        /// Looks at the report table (`action=rapport`), oldest first.
        var reportLookups: [ReceivedRequest] {
            simulator.receivedRequests().filter { $0.parameters.value(of: "action") == "rapport" }
        }
        /// How many messages the simulator took with this message's id as `referentie`.
        func taken(_ id: UUID) -> Int { simulator.messages().count(where: { $0.reference == id.apiString }) }
        /// Those it answered `OK …`.
        var accepted: [ReceivedRequest] { sends.filter { $0.answer?.hasPrefix("OK") == true } }

        /// A dispatcher on this database with test timings: fast polls, short backoff, messages in doubt looked up
        /// after `settle`.
        func dispatcher(
            batchSize: Int = 100, settle: Duration = .milliseconds(200), reportRows: Int = 1_000,
            metrics: ServiceMetrics = ServiceMetrics()
        ) -> Dispatcher {
            var settings = DispatcherSettings()
            settings.pollInterval = .milliseconds(50)
            settings.batchSize = batchSize
            settings.inDoubtSettle = settle
            settings.inDoubtReportRows = reportRows
            settings.backoff = RetryBackoff(base: .milliseconds(50), cap: .milliseconds(200))
            return Dispatcher(
                connections: connections, clients: UpstreamClients(logger: DispatcherTests.logger),
                signal: DispatchSignal(),
                settings: settings, metrics: metrics, logger: DispatcherTests.logger)
        }

        func message(_ id: UUID) async throws -> MessageRow {
            try #require(
                try await pool.query("SELECT \(unescaped: MessageRow.columns) FROM message WHERE id = \(id)")
                    .decodeRecords(MessageRow.self).first)
        }

        func statuses(_ ids: [UUID]) async throws -> [String] {
            try await pool.query("SELECT status FROM message WHERE id = ANY(\(ids)) ORDER BY status").decode(
                String.self)
        }

        func allSubmitted(_ ids: [UUID]) async throws -> Bool {
            try await statuses(ids).allSatisfy { $0 == "submitted" }
        }

        func events(_ id: UUID) async throws -> [(status: String, code: Int?, detail: String?, at: Date)] {
            try await pool.query(
                "SELECT status, code, detail, occurred_at FROM message_event WHERE message_id = \(id) ORDER BY seq"
            )
            .decode((String, Int?, String?, Date).self).map { (status: $0.0, code: $0.1, detail: $0.2, at: $0.3) }
        }

        /// A message's outbox row: attempts, possibly sent, who holds it, its due time; nil when gone.
        func outboxRow(_ id: UUID) async throws -> (attempts: Int, possiblySent: Bool, leasedBy: String?, dueAt: Date)?
        {
            try await pool.query(
                "SELECT attempts, possibly_sent, leased_by, due_at FROM message_outbox WHERE message_id = \(id)"
            )
            .first(as: (Int, Bool, String?, Date).self).map {
                (attempts: $0.0, possiblySent: $0.1, leasedBy: $0.2, dueAt: $0.3)
            }
        }

        func reservationStates(_ row: MessageRow) async throws -> [String] {
            let ids = [row.retailReservationID, row.wholesaleReservationID].compactMap { $0 }
            return try await pool.query("SELECT state FROM ledger_transfer WHERE id = ANY(\(ids))").decode(String.self)
        }
    }

    struct MessageRow: Decodable {
        static let columns = """
            status, status_code, status_detail, upstream_id, upstream_connection_id, schedule_at, submitted_at,
            retail_reservation_id, wholesale_reservation_id
            """
        var status: String
        var statusCode: Int?
        var statusDetail: String?
        var upstreamID: String?
        var upstreamConnectionID: UUID?
        var scheduleAt: Date?
        var submittedAt: Date?
        var retailReservationID: UUID?
        var wholesaleReservationID: UUID?

        enum CodingKeys: String, CodingKey {
            case status
            case statusCode = "status_code"
            case statusDetail = "status_detail"
            case upstreamID = "upstream_id"
            case upstreamConnectionID = "upstream_connection_id"
            case scheduleAt = "schedule_at"
            case submittedAt = "submitted_at"
            case retailReservationID = "retail_reservation_id"
            case wholesaleReservationID = "wholesale_reservation_id"
        }
    }

    static let logger: Logger = {
        var logger = Logger(label: "test.dispatcher")
        logger.logLevel =
            ProcessInfo.processInfo.environment["TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return logger
    }()

    static let admin = AuditActor(actor: "test", role: .admin, requestID: nil)

    /// Runs `body` in a fresh world whose upstream connection has these limits.
    static func run(
        concurrency: Int = 4, ratePerSecond: Int = 1000, requestTimeoutMilliseconds: Int = 5000,
        _ body: @Sendable (World) async throws -> Void
    ) async throws {
        try await TestDatabase.withFreshDatabase { database in
            try await TestDatabase.withPool(database, maximumConnections: 16) { pool in
                try await Migrator(pool: pool, migrations: try BundledMigrations.load(), logger: logger).migrate()
                var configuration = SimulatorConfiguration.sandbox
                configuration.port = 0
                configuration.delivery.automatic = false
                let simulator = GatewaySimulator(configuration: configuration, logger: logger)
                try await withRunning([simulator]) {
                    let repository = UpstreamConnectionRepository(pool: pool)
                    let settings = UpstreamConnectionSettings(
                        name: "simulator", baseURL: try await simulator.baseURL(), username: "sandbox",
                        password: "sandbox",
                        concurrency: concurrency, rateLimitPerSecond: ratePerSecond,
                        requestTimeoutMilliseconds: requestTimeoutMilliseconds)
                    let connection = try #require(try await repository.create(settings, by: admin))
                    _ = try await repository.setDefault(connectionID: connection.id, by: admin)
                    let tenant = try await MessageFixtures.tenant(pool: pool)
                    try await body(World(pool: pool, simulator: simulator, connectionID: connection.id, tenant: tenant))
                }
            }
        }
    }

    // MARK: - Sending

    @Test func queuedMessagesReachTheUpstreamOnceAndAreSubmittedWithTheUpstreamID() async throws {
        try await Self.run { world in
            let short = try #require(
                try await MessageFixtures.accept(
                    pool: world.pool, tenant: world.tenant, recipients: ["31612345678"], text: "Hi there",
                    sender: "Shop"
                ).first)
            let longText = String(repeating: "Long message. ", count: 15)
            let long = try #require(
                try await MessageFixtures.accept(
                    pool: world.pool, tenant: world.tenant, recipients: ["4915112345678"], text: longText,
                    sender: "+31201234567", long: true
                ).first)
            try await withRunning([world.dispatcher()]) {
                try await eventually("both messages are submitted") { try await world.allSubmitted([short, long]) }
            }
            #expect(world.sends.count == 2, "each message is sent exactly once")
            for (id, request) in [(short, "31612345678"), (long, "4915112345678")] {
                let row = try await world.message(id)
                let sent = try #require(world.sends.first { $0.parameters.value(of: "referentie") == id.apiString })
                #expect(sent.parameters.value(of: "naar") == request)
                #expect(sent.parameters.value(of: "delivery") == "ja")
                #expect(sent.parameters.value(of: "klantuser") == "sandbox")
                let simulated = try #require(world.simulator.messages().first { $0.reference == id.apiString })
                #expect(row.upstreamID == simulated.id && sent.answer == "OK \(simulated.id)")
                #expect(row.upstreamConnectionID == world.connectionID && row.submittedAt != nil)
                #expect(try await world.events(id).map(\.status) == ["submitted"])
                #expect(try await world.outboxRow(id) == nil, "the outbox row is gone")
                // The reservations stay pending until the final delivery state (issue 7).
                #expect(try await world.reservationStates(row) == ["pending", "pending"])
            }
            let shortSent = try #require(world.sends.first { $0.parameters.value(of: "referentie") == short.apiString })
            #expect(
                shortSent.parameters.value(of: "bericht") == "Hi there"
                    && shortSent.parameters.value(of: "afzender") == "Shop")
            #expect(shortSent.parameters.value(of: "type") == nil)
            let longSent = try #require(world.sends.first { $0.parameters.value(of: "referentie") == long.apiString })
            #expect(
                longSent.parameters.value(of: "bericht") == longText && longSent.parameters.value(of: "type") == "long")
            #expect(longSent.parameters.value(of: "afzender") == "+31201234567")
        }
    }

    /// The pacer of a lane's starts, on a clock of its own: a greedy lane after a long idle starts its banked burst at
    /// once, then one call per token, and no second holds more than the rate plus the burst and one.
    @Test func thePacerKeepsStartsToTheRateWithABurstOfOnePercent() {
        for (rate, burst) in [(20, 1), (1_000, 10), (10_000, 100)] {
            let origin = ContinuousClock.now
            var pacer = StartPacer(ratePerSecond: rate, now: origin)
            // Idle for two seconds, then start 3 × rate calls as fast as the pacer lets.
            var now = origin + .seconds(2)
            var starts: [ContinuousClock.Instant] = []
            while starts.count < 3 * rate {
                if let wait = pacer.take(now: now) { now = wait } else { starts.append(now) }
            }
            // The bank (burst) and the token of the moment go at once, then one per spacing.
            #expect(starts.prefix { $0 == starts[0] }.count == burst + 1, "rate \(rate)")
            var windowStart = 0
            var most = 0
            for (index, start) in starts.enumerated() {
                while starts[windowStart] <= start - .seconds(1) { windowStart += 1 }
                most = max(most, index - windowStart + 1)
            }
            #expect(most <= rate + burst + 1, "rate \(rate): \(most) starts within one second")
            #expect(most >= rate, "rate \(rate): the pacer reaches its rate")
        }
    }

    /// End to end: 30 messages at 20 a second reach the upstream, each once, over about a second and a half.
    @Test func callsStartAtTheConnectionsRateLimit() async throws {
        try await Self.run(concurrency: 16, ratePerSecond: 20) { world in
            let ids = try await MessageFixtures.accept(
                pool: world.pool, tenant: world.tenant, recipients: (0..<30).map { "316123456\(10 + $0)" },
                text: "Paced", sender: "Shop")
            let started = ContinuousClock.now
            try await withRunning([world.dispatcher()]) {
                try await eventually("every message is submitted", timeout: .seconds(60)) {
                    try await world.allSubmitted(ids)
                }
            }
            #expect(world.sends.count == 30)
            // 30 starts at 20 a second with one token banked cannot take less than 1.4 s; load only slows them.
            #expect(ContinuousClock.now - started >= .milliseconds(1_400))
        }
    }

    @Test func aMessageTheUpstreamRefusesForGoodFailsWithItsCodeAndItsReservationsAreVoided() async throws {
        try await Self.run { world in
            let before = try await MessageFixtures.balances(pool: world.pool, world.tenant.accounts)
            // North Korea is forbidden at the simulator (114); the Dutch number goes through.
            let ids = try await MessageFixtures.accept(
                pool: world.pool, tenant: world.tenant, recipients: ["85012345678", "31687654321"])
            let (refused, fine) = (ids[0], ids[1])
            #expect(
                try await MessageFixtures.balances(pool: world.pool, world.tenant.accounts) != before,
                "the fixture reserved")
            try await withRunning([world.dispatcher()]) {
                try await eventually("the refused message fails and the other is submitted") {
                    try await world.statuses(ids) == ["failed", "submitted"]
                }
            }
            let row = try await world.message(refused)
            #expect(row.statusCode == 114 && row.statusDetail?.contains("114") == true && row.upstreamID == nil)
            let events = try await world.events(refused)
            #expect(events.map(\.status) == ["failed"] && events.first?.code == 114)
            #expect(try await world.outboxRow(refused) == nil)
            // Both legs voided exactly once.
            #expect(try await world.reservationStates(row) == ["voided", "voided"])
            let resolutions = try await world.pool.query(
                """
                SELECT count(*) FROM ledger_transfer WHERE pending_id = ANY(\([row.retailReservationID!, row.wholesaleReservationID!]))
                  AND kind = 'void_pending' AND code = 'message_failed' AND created_by = 'system:dispatcher'
                """
            ).first(as: Int.self)
            #expect(resolutions == 2)
            // What is left reserved is exactly the other message's: the refused one's reservations are fully released.
            let fineRow = try await world.message(fine)
            #expect(try await world.reservationStates(fineRow) == ["pending", "pending"])
            let after = try await MessageFixtures.balances(pool: world.pool, world.tenant.accounts)
            let t = world.tenant
            #expect(
                after[t.subAccountWallet]
                    == [725, 0, 0, 0].enumerated().map { $0.element + before[t.subAccountWallet]![$0.offset] })
            #expect(
                after[t.resellerRevenue]
                    == [0, 0, 725, 0].enumerated().map { $0.element + before[t.resellerRevenue]![$0.offset] })
            #expect(
                after[t.resellerWallet]
                    == [500, 0, 0, 0].enumerated().map { $0.element + before[t.resellerWallet]![$0.offset] })
            #expect(
                after[t.platformRevenue]
                    == [0, 0, 500, 0].enumerated().map { $0.element + before[t.platformRevenue]![$0.offset] })
            #expect(world.sends.count == 2)
        }
    }

    // MARK: - Pausing

    /// 116: the platform's upstream account is blocked; 108: it has no credits left.
    @Test(arguments: [116, 108])
    func anAccountLevelErrorPausesTheConnectionKeepsMessagesQueuedAndTheyDrainAfterResume(code: Int) async throws {
        // One call at a time, so exactly one call meets the error before the pause stops the lane.
        try await Self.run(concurrency: 1) { world in
            world.simulator.updateAccount("sandbox") { account in
                if code == 116 { account.status = .blocked } else { account.credits = 0 }
            }
            let ids = try await MessageFixtures.accept(
                pool: world.pool, tenant: world.tenant, recipients: ["31611111111", "31622222222", "31633333333"])
            try await withRunning([world.dispatcher()]) {
                try await eventually("the connection is paused and every claim handed back") {
                    let paused = try await world.connections.find(id: world.connectionID)?.status == .paused
                    let held = try await world.pool.query(
                        "SELECT count(*) FROM message_outbox WHERE leased_by IS NOT NULL"
                    ).first(as: Int.self)
                    return paused && held == 0
                }
                let connection = try #require(try await world.connections.find(id: world.connectionID))
                #expect(connection.pauseCode == code && connection.pausedBy == "system:dispatcher")
                #expect(connection.pauseReason?.hasPrefix("ERROR \(code): ") == true)
                let audited = try await world.pool.query(
                    "SELECT count(*) FROM audit_log WHERE action = 'upstream_connection.pause' AND actor = 'system:dispatcher'"
                ).first(as: Int.self)
                #expect(audited == 1)
                // Nothing failed: every message is still queued, due, not possibly sent; only the one call made counts.
                #expect(try await world.statuses(ids) == ["queued", "queued", "queued"])
                var attempts = 0
                for id in ids {
                    let row = try #require(try await world.outboxRow(id))
                    #expect(!row.possiblySent && row.leasedBy == nil)
                    attempts += row.attempts
                }
                #expect(attempts == 1)
                #expect(world.sends.count == 1, "the paused connection is not used again")
                #expect(world.sends.first?.answer == "ERROR \(code)")

                // The account is fixed and an admin resumes the connection: the messages drain.
                world.simulator.updateAccount("sandbox") { account in
                    account.status = .active
                    account.credits = 1_000
                }
                let resumed = try await world.connections.resume(id: world.connectionID, by: Self.admin)
                guard case .resumed = resumed else {
                    Issue.record("not resumed: \(resumed)")
                    return
                }
                try await eventually("every message is submitted after the resume") {
                    try await world.allSubmitted(ids)
                }
            }
            #expect(world.accepted.count == 3 && world.sends.count == 4)
        }
    }

    // MARK: - Retrying

    enum TransientFault: String, CaseIterable, Sendable {
        case gatewayProblem120, maintenance150, hangBeyondTheRequestTimeout

        var faults: FaultConfiguration {
            switch self {
            case .gatewayProblem120: FaultConfiguration(gatewayErrorRate: 1)
            case .maintenance150: FaultConfiguration(maintenance: true)
            case .hangBeyondTheRequestTimeout: FaultConfiguration(hangRate: 1, hangMilliseconds: 4_000)
            }
        }

        var code: Int? {
            switch self {
            case .gatewayProblem120: 120
            case .maintenance150: 150
            case .hangBeyondTheRequestTimeout: nil
            }
        }
    }

    @Test(arguments: TransientFault.allCases)
    func aTransientFailureIsRetriedWithBackoffUntilTheUpstreamTakesTheMessage(fault: TransientFault) async throws {
        // Long enough that an ERROR answer on a loaded machine is not taken for a timeout; shorter than the 4 s hang.
        try await Self.run(requestTimeoutMilliseconds: 2_000) { world in
            world.simulator.setFaults(fault.faults)
            let id = try #require(
                try await MessageFixtures.accept(pool: world.pool, tenant: world.tenant, recipients: ["31612345678"])
                    .first)
            try await withRunning([world.dispatcher()]) {
                // The row as a recorded retry left it (read once: a second read may already see the next claim,
                // which sets possibly_sent again, on a loaded machine).
                var recorded: (attempts: Int, possiblySent: Bool, leasedBy: String?, dueAt: Date)?
                try await eventually("a failed attempt is recorded for a retry") {
                    guard let row = try await world.outboxRow(id), row.attempts >= 1, row.leasedBy == nil else {
                        return false
                    }
                    recorded = row
                    return true
                }
                let row = try #require(recorded)
                // An ERROR answer proves the upstream did not take it; a timeout does not.
                #expect(row.possiblySent == (fault.code == nil))
                #expect(try await world.statuses([id]) == ["queued"])
                world.simulator.setFaults(.none)
                try await eventually("the message is submitted") { try await world.allSubmitted([id]) }
            }
            let events = try await world.events(id)
            #expect(events.last?.status == "submitted")
            let retries = events.dropLast()
            #expect(!retries.isEmpty && retries.allSatisfy { $0.status == "queued" && $0.code == fault.code })
            let first = try #require(retries.first?.detail)
            #expect(first.hasPrefix("attempt 1 failed: ") && first.contains("; next attempt at "), "\(first)")
            #expect(world.accepted.count == 1, "sent once successfully")
            // A timeout leaves the message in doubt: it is looked up before it is sent again.
            let lookedUp = retries.filter { $0.detail?.contains("not in the upstream's report table") == true }
            #expect(lookedUp.count == (fault.code == nil ? 1 : 0), "\(retries)")
            #expect(world.sends.count == retries.count - lookedUp.count + 1, "one call per attempt")
            #expect(world.reportLookups.count == lookedUp.count)
            #expect(world.simulator.messages().count == 1)
        }
    }

    @Test func aTransientFailurePastTheDeadlineFailsTheMessageAndVoidsItsReservations() async throws {
        try await Self.run { world in
            let before = try await MessageFixtures.balances(pool: world.pool, world.tenant.accounts)
            world.simulator.setFaults(FaultConfiguration(gatewayErrorRate: 1))
            let id = try #require(
                try await MessageFixtures.accept(
                    pool: world.pool, tenant: world.tenant, recipients: ["31612345678"], deadlineIn: .seconds(-1)
                ).first)
            try await withRunning([world.dispatcher()]) {
                try await eventually("the message fails") { try await world.statuses([id]) == ["failed"] }
            }
            let row = try await world.message(id)
            #expect(
                row.statusCode == 120 && row.statusDetail?.contains("retry deadline passed after 1 attempts") == true,
                "\(row)")
            #expect(try await world.reservationStates(row) == ["voided", "voided"])
            #expect(
                try await MessageFixtures.balances(pool: world.pool, world.tenant.accounts) == before,
                "every reservation released exactly")
            #expect(world.sends.count == 1 && world.accepted.isEmpty)
            #expect(try await world.outboxRow(id) == nil)
        }
    }

    // MARK: - Sends in doubt

    /// A client of the simulator's sandbox account, as another sender (or a worker that died) would use it.
    static func sandboxClient(_ world: World) async throws -> Gateway1601Client {
        Gateway1601Client(
            configuration: Gateway1601Configuration(
                baseURL: try await world.simulator.baseURL(),
                credentials: GatewayCredentials(username: "sandbox", password: "sandbox")),
            logger: logger)
    }

    /// Waits until the message's attempt is recorded as a retry in doubt, and returns its outbox row.
    static func recordedInDoubt(_ world: World, _ id: UUID) async throws {
        try await eventually("the attempt is recorded, in doubt") {
            guard let row = try await world.outboxRow(id) else { return false }
            return row.attempts >= 1 && row.leasedBy == nil && row.possiblySent
        }
    }

    @Test func aSendWhoseAnswerWasLostIsFoundInTheReportTableAndNotSentAgain() async throws {
        try await Self.run { world in
            // The upstream takes the message and the answer is lost on the way back.
            world.simulator.setFaults(FaultConfiguration(answerLossRate: 1))
            let id = try #require(
                try await MessageFixtures.accept(pool: world.pool, tenant: world.tenant, recipients: ["31612345678"])
                    .first)
            // What the upstream charges for it (the fixtures' messages are free).
            try await world.pool.query("UPDATE message SET upstream_cost = 400 WHERE id = \(id)")
            try await withRunning([world.dispatcher(settle: .seconds(2))]) {
                try await Self.recordedInDoubt(world, id)
                #expect(world.taken(id) == 1)
                // While the report table cannot be read, the message waits: asked again, never sent again.
                world.simulator.setFaults(FaultConfiguration(maintenance: true))
                try await eventually("a look at the report table fails", timeout: .seconds(20)) {
                    try await world.events(id).contains {
                        $0.detail?.contains("the upstream's report table could not be read") == true
                    }
                }
                #expect(try await world.statuses([id]) == ["queued"])
                world.simulator.setFaults(.none)
                try await eventually("the message is submitted") { try await world.allSubmitted([id]) }
            }
            let upstream = try #require(world.simulator.messages().first { $0.reference == id.apiString })
            #expect(world.taken(id) == 1, "the upstream took it once")
            #expect(world.sends.count == 1, "one send call")
            let row = try await world.message(id)
            #expect(row.upstreamID == upstream.id && row.upstreamConnectionID == world.connectionID)
            let submitted = try #require(try await world.events(id).last)
            #expect(
                submitted.status == "submitted"
                    && submitted.detail
                        == "in doubt; found in the upstream's report table as \(upstream.id)",
                "\(submitted)")
            #expect(try await world.reservationStates(row) == ["pending", "pending"])
            #expect(try await world.outboxRow(id) == nil)
            let costs = try await world.pool.query(
                "SELECT count(*) FROM ledger_transfer WHERE code = 'upstream_cost' AND reference = \(id.apiString)"
            ).first(as: Int.self)
            #expect(costs == 1, "the upstream's cost is posted once")
        }
    }

    @Test func aWorkerThatDiedAfterItsCallReachedTheUpstreamIsNotFollowedByASecondSend() async throws {
        try await Self.run { world in
            let ids = try await MessageFixtures.accept(
                pool: world.pool, tenant: world.tenant, recipients: ["31611111111", "31622222222"])
            // A worker claims both, sends the first, and dies before recording anything.
            let claimed = try await world.outbox.claim(
                connectionID: world.connectionID, limit: 10, lease: .seconds(1), worker: "dead-worker")
            #expect(claimed.count == 2)
            let client = try await Self.sandboxClient(world)
            let sent = try await client.send(
                SendRequest(
                    message: "Hello", recipients: .numbers(["31611111111"]), sender: "Shop", deliveryReport: true,
                    reference: ids[0].apiString))
            try await withRunning([world.dispatcher()]) {
                try await eventually("both are submitted after the lease") { try await world.allSubmitted(ids) }
            }
            #expect(world.taken(ids[0]) == 1 && world.taken(ids[1]) == 1, "each taken once")
            #expect(try await world.message(ids[0]).upstreamID == sent.messageIDs.first)
            #expect(world.sends.count == 2, "the dead worker's call and the other message's: nothing sent again")
            #expect(world.reportLookups.count == 1, "one look at the table for the claim's messages in doubt")
            let events = try await world.events(ids[1]).map(\.detail)
            #expect(
                events.contains(
                    "in doubt; not in the upstream's report table, which lists all 1 messages of the account: sent again"
                ), "\(events)")
        }
    }

    @Test func aMessageInDoubtThatADeliveryReportNamedIsSubmittedWithoutALookup() async throws {
        try await Self.run { world in
            let id = try #require(
                try await MessageFixtures.accept(pool: world.pool, tenant: world.tenant, recipients: ["31612345678"])
                    .first)
            // A worker sends it and dies; the upstream's SUBMITTED report gives the message its id meanwhile.
            _ = try await world.outbox.claim(
                connectionID: world.connectionID, limit: 1, lease: .seconds(1), worker: "dead-worker")
            try await world.pool.query("UPDATE message SET upstream_id = '7000123' WHERE id = \(id)")
            try await withRunning([world.dispatcher()]) {
                try await eventually("the message is submitted") { try await world.allSubmitted([id]) }
            }
            #expect(world.sends.isEmpty && world.reportLookups.isEmpty, "neither sent again nor looked up")
            let row = try await world.message(id)
            #expect(row.upstreamID == "7000123")
            #expect(
                try await world.events(id).last?.detail
                    == "in doubt; a delivery report from the upstream names it as 7000123")
        }
    }

    @Test func absenceIsProvenByAListedMessageOfOursSubmittedBeforeTheAttempt() async throws {
        try await Self.run(requestTimeoutMilliseconds: 1_000) { world in
            let earlier = try await MessageFixtures.accept(
                pool: world.pool, tenant: world.tenant, recipients: ["31611111111", "31622222222", "31633333333"])
            try await withRunning([world.dispatcher(reportRows: 3)]) {
                try await eventually("the earlier messages are submitted") { try await world.allSubmitted(earlier) }
                // This one's call hangs past the request timeout, unprocessed.
                world.simulator.setFaults(FaultConfiguration(hangRate: 1, hangMilliseconds: 3_000))
                let id = try #require(
                    try await MessageFixtures.accept(
                        pool: world.pool, tenant: world.tenant, recipients: ["31644444444"]
                    ).first)
                try await Self.recordedInDoubt(world, id)
                world.simulator.setFaults(.none)
                try await eventually("the message is submitted") { try await world.allSubmitted([id]) }
                #expect(world.taken(id) == 1)
                let events = try await world.events(id).map(\.detail)
                #expect(
                    events.contains(
                        "in doubt; not in the upstream's report table of its last 3 messages, which reaches back past the attempt: sent again"
                    ), "\(events)")
            }
        }
    }

    @Test func aMessageStaysInDoubtWhileTheTableDoesNotReachBackAndFailsUnsentAtItsDeadline() async throws {
        try await Self.run(requestTimeoutMilliseconds: 1_000) { world in
            let before = try await MessageFixtures.balances(pool: world.pool, world.tenant.accounts)
            // Three messages someone else sent fill the table: none is ours, so none proves how far back it reaches.
            let client = try await Self.sandboxClient(world)
            for number in ["31611111111", "31622222222", "31633333333"] {
                _ = try await client.send(
                    SendRequest(
                        message: "Not ours", recipients: .numbers([number]), sender: "Other", deliveryReport: true))
            }
            world.simulator.setFaults(FaultConfiguration(hangRate: 1, hangMilliseconds: 3_000))
            let id = try #require(
                try await MessageFixtures.accept(
                    pool: world.pool, tenant: world.tenant, recipients: ["31644444444"], deadlineIn: .seconds(8)
                ).first)
            try await withRunning([world.dispatcher(reportRows: 3)]) {
                try await Self.recordedInDoubt(world, id)
                world.simulator.setFaults(.none)
                try await eventually("the message fails at its deadline", timeout: .seconds(30)) {
                    try await world.statuses([id]) == ["failed"]
                }
            }
            let ours = world.sends.filter { $0.parameters.value(of: "referentie") == id.apiString }
            #expect(world.taken(id) == 0 && ours.count == 1, "never sent again")
            #expect(!world.reportLookups.isEmpty)
            let row = try await world.message(id)
            #expect(
                row.statusDetail?.contains(
                    "in doubt, not sent again: the upstream's report table of its last 3 messages does not reach back to the attempt"
                ) == true, "\(row)")
            #expect(try await world.reservationStates(row) == ["voided", "voided"])
            #expect(try await MessageFixtures.balances(pool: world.pool, world.tenant.accounts) == before)
        }
    }

    // MARK: - Several workers, dead workers, schedules, shutdown

    @Test func twoDispatchersOnOneDatabaseSendEveryMessageExactlyOnce() async throws {
        // 50 calls per second per instance: one instance alone would need 4 s, so both take part.
        try await Self.run(concurrency: 8, ratePerSecond: 50) { world in
            let recipients = (0..<200).map { "3161\(String(format: "%07d", $0))" }
            let ids = try await MessageFixtures.accept(pool: world.pool, tenant: world.tenant, recipients: recipients)
            let (firstMetrics, secondMetrics) = (ServiceMetrics(), ServiceMetrics())
            try await withRunning([
                world.dispatcher(batchSize: 10, metrics: firstMetrics),
                world.dispatcher(batchSize: 10, metrics: secondMetrics),
            ]) {
                try await eventually("all 200 messages are submitted", timeout: .seconds(60)) {
                    try await world.allSubmitted(ids)
                }
            }
            let references = world.sends.compactMap { $0.parameters.value(of: "referentie") }
            #expect(world.sends.count == 200 && world.accepted.count == 200, "one call per message")
            #expect(Set(references) == Set(ids.map(\.apiString)) && references.count == 200)
            let upstreamIDs = try await world.pool.query(
                "SELECT DISTINCT upstream_id FROM message WHERE id = ANY(\(ids))"
            ).decode(String.self)
            #expect(upstreamIDs.count == 200)
            let late = try await world.pool.query("SELECT count(*) FROM message_event WHERE status = 'late_submission'")
                .first(as: Int.self)
            #expect(late == 0)
            let submittedBy = [firstMetrics, secondMetrics].map {
                Self.counter(in: $0, #"dispatch_messages_total{outcome="submitted"}"#)
            }
            #expect(
                submittedBy.reduce(0, +) == 200 && submittedBy.allSatisfy { $0 > 0 },
                "both dispatchers sent: \(submittedBy)")
        }
    }

    /// The value of one sample line of the registry's exposition (0 when absent).
    static func counter(in metrics: ServiceMetrics, _ sample: String) -> Int {
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        let line = text.split(separator: "\n").first { $0.hasPrefix(sample + " ") }
        return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
    }

    @Test func aWorkerThatDiesAfterClaimingLeavesItsMessagesToBeSentAfterTheLease() async throws {
        try await Self.run { world in
            let ids = try await MessageFixtures.accept(
                pool: world.pool, tenant: world.tenant, recipients: ["31611111111", "31622222222", "31633333333"])
            // A worker claims them and is never heard of again.
            let claimed = try await world.outbox.claim(
                connectionID: world.connectionID, limit: 10, lease: .seconds(2), worker: "dead-worker")
            #expect(
                Set(claimed.map(\.messageID)) == Set(ids)
                    && claimed.allSatisfy { $0.attempt == 1 && !$0.wasPossiblySent })
            var leaseEnds: [UUID: Date] = [:]
            for id in ids { leaseEnds[id] = try #require(try await world.outboxRow(id)).dueAt }
            try await withRunning([world.dispatcher()]) {
                try await eventually("the messages are submitted after the lease") { try await world.allSubmitted(ids) }
            }
            for id in ids {
                let row = try await world.message(id)
                let submittedAt = try #require(row.submittedAt)
                #expect(submittedAt >= leaseEnds[id]!, "not sent before the dead worker's lease ended")
            }
            #expect(world.sends.count == 3)
        }
    }

    @Test func aScheduledMessageIsReleasedAndSentWhenDueNotBefore() async throws {
        try await Self.run { world in
            let id = try #require(
                try await MessageFixtures.accept(
                    pool: world.pool, tenant: world.tenant, recipients: ["31612345678"], scheduleIn: .seconds(2)
                ).first)
            let scheduledRow = try await world.message(id)
            let scheduleAt = try #require(scheduledRow.scheduleAt)
            #expect(scheduledRow.status == "scheduled")
            try await withRunning([world.dispatcher()]) {
                try await eventually("the scheduled message is submitted") { try await world.allSubmitted([id]) }
            }
            let row = try await world.message(id)
            #expect(try #require(row.submittedAt) >= scheduleAt)
            let events = try await world.events(id)
            #expect(events.map(\.status) == ["queued", "submitted"])
            #expect(events[0].at >= scheduleAt, "released when due")
            let sent = try #require(world.sends.first)
            #expect(sent.receivedAt >= scheduleAt, "not sent before its time")
            #expect(world.sends.count == 1)
        }
    }

    @Test func gracefulShutdownFinishesCallsInFlightAndHandsBackWhatItDidNotStart() async throws {
        try await Self.run(concurrency: 2) { world in
            // Slow answers, so that calls are in flight when the shutdown comes.
            world.simulator.setFaults(
                FaultConfiguration(latencyMinimumMilliseconds: 700, latencyMaximumMilliseconds: 700))
            let ids = try await MessageFixtures.accept(
                pool: world.pool, tenant: world.tenant, recipients: (1...6).map { "3161234560\($0)" })
            try await withRunning([world.dispatcher()]) {
                // The first answer is recorded while the second call (started with it) is still in flight.
                try await eventually("a message is submitted") {
                    try await world.statuses(ids).contains("submitted")
                }
            }
            // Stopped: nothing is left claimed, every OK is recorded, the rest is queued with its claim undone.
            #expect(
                try await world.pool.query("SELECT count(*) FROM message_outbox WHERE leased_by IS NOT NULL").first(
                    as: Int.self) == 0)
            let statuses = try await world.statuses(ids)
            let submitted = statuses.count(where: { $0 == "submitted" })
            #expect(
                submitted == world.accepted.count && submitted >= 2,
                "calls in flight finished and were recorded: \(statuses)")
            #expect(statuses.allSatisfy { $0 == "submitted" || $0 == "queued" })
            let attempts = try await world.pool.query("SELECT coalesce(sum(attempts), 0) FROM message_outbox").first(
                as: Int.self)
            #expect(attempts == 0, "messages never sent do not count an attempt")
        }
    }

    @Test func theServiceRunsTheDispatcherWhenSwitchedOn() async throws {
        try await TenancyHarness.run(configure: { configuration in
            configuration.dispatcher = true
            configuration.dispatch.pollInterval = .milliseconds(50)
        }) { api in
            // The first start made the built-in simulator the default connection; the dispatcher sends through it.
            let tenant = try await MessageFixtures.tenant(pool: api.pool)
            let id = try #require(
                try await MessageFixtures.accept(pool: api.pool, tenant: tenant, recipients: ["31612345678"]).first)
            try await eventually("the message is submitted") {
                try await api.pool.query(
                    "SELECT status = 'submitted' AND upstream_id IS NOT NULL FROM message WHERE id = \(id)"
                ).first(as: Bool.self) == true
            }
        }
    }

    // MARK: - The recording SQL

    /// The upstream costs of a batch of results are posted by one `ledger_post` call. It was once joined to the
    /// messages' legs, and a cached generic plan (what a prepared statement gets after five runs) ran it again for
    /// every leg: the second run failed on the transfer ids of the first, so every batch of two or more submitted
    /// results failed and the recorder fell back to one transaction per result (the dispatcher's drain rate).
    @Test func theUpstreamCostsOfABatchArePostedOnceEachUnderACachedGenericPlan() async throws {
        try await Self.run { world in
            let ids = try await MessageFixtures.accept(
                pool: world.pool, tenant: world.tenant, recipients: ["31612345671", "31612345672", "31612345673"])
            try await world.pool.query("UPDATE message SET upstream_cost = 100 WHERE id = ANY (\(ids))")
            let posted = try await world.pool.withTransaction { connection in
                try await connection.query("SET LOCAL plan_cache_mode = force_generic_plan")
                return try await OutboxRepository.postUpstreamCosts(
                    messages: ids, connections: ids.map { _ in world.connectionID }, on: connection)
            }
            #expect(posted == 3)
            let transfers = try await world.pool.query(
                """
                SELECT count(*) FROM message m JOIN ledger_transfer t ON t.id = m.upstream_cost_transfer_id
                WHERE m.id = ANY (\(ids)) AND t.kind = 'posted' AND t.amount = 100
                """
            ).first(as: Int.self)
            #expect(transfers == 3)
        }
    }

    @Test func aWorkerWhoseClaimWasTakenOverCannotOverwriteTheNewOwnerButItsOKIsKept() async throws {
        try await Self.run { world in
            let id = try #require(
                try await MessageFixtures.accept(pool: world.pool, tenant: world.tenant, recipients: ["31612345678"])
                    .first)
            // A claims with a lease that ends at once; B takes the message over.
            let a = try await world.outbox.claim(connectionID: world.connectionID, limit: 1, lease: .zero, worker: "A")
            let b = try await world.outbox.claim(
                connectionID: world.connectionID, limit: 1, lease: .seconds(60), worker: "B")
            #expect(a.map(\.attempt) == [1] && b.map(\.attempt) == [2] && b.first?.wasPossiblySent == true)

            // A's failures are ignored: B owns the row.
            var recorded = try await world.outbox.record(
                [
                    DispatchResult(
                        messageID: id, attempt: 1,
                        outcome: .retry(code: 120, error: "ERROR 120", possiblySent: false, delay: .seconds(1))),
                    DispatchResult(messageID: id, attempt: 1, outcome: .failed(code: 114, detail: "ERROR 114")),
                ], worker: "A")
            #expect(recorded == RecordedResults(stale: 2))
            var row = try #require(try await world.outboxRow(id))
            #expect(row.leasedBy == "B" && row.attempts == 2 && row.possiblySent)
            // Nor may B record under an attempt it does not hold.
            recorded = try await world.outbox.record(
                [DispatchResult(messageID: id, attempt: 1, outcome: .discarded)], worker: "B")
            #expect(recorded == RecordedResults(stale: 1))
            #expect(try await world.outboxRow(id) != nil)

            // But A's OK is recorded: the upstream has the message.
            recorded = try await world.outbox.record(
                [
                    DispatchResult(
                        messageID: id, attempt: 1,
                        outcome: .submitted(upstreamID: "7000001", connectionID: world.connectionID))
                ], worker: "A")
            #expect(recorded == RecordedResults(submitted: 1))
            var message = try await world.message(id)
            #expect(message.status == "submitted" && message.upstreamID == "7000001")
            #expect(try await world.outboxRow(id) == nil)

            // B's later answers change nothing; its OK (a duplicate send) is kept as an event.
            recorded = try await world.outbox.record(
                [
                    DispatchResult(
                        messageID: id, attempt: 2,
                        outcome: .submitted(upstreamID: "7000002", connectionID: world.connectionID)),
                    DispatchResult(messageID: id, attempt: 2, outcome: .failed(code: 114, detail: "ERROR 114")),
                ], worker: "B")
            #expect(recorded == RecordedResults(lateSubmissions: 1, stale: 1))
            message = try await world.message(id)
            #expect(message.status == "submitted" && message.upstreamID == "7000001")
            let events = try await world.events(id)
            #expect(events.map(\.status) == ["submitted", "late_submission"])
            #expect(
                events.last?.detail
                    == "the upstream accepted attempt 2 as 7000002 after the message was already submitted")
            #expect(try await world.reservationStates(message) == ["pending", "pending"], "nothing was voided")

            // Releasing undoes an unattempted claim; retrying keeps the attempt and records why.
            let other = try #require(
                try await MessageFixtures.accept(pool: world.pool, tenant: world.tenant, recipients: ["31687654321"])
                    .first)
            _ = try await world.outbox.claim(
                connectionID: world.connectionID, limit: 1, lease: .seconds(60), worker: "C")
            recorded = try await world.outbox.record(
                [
                    DispatchResult(
                        messageID: other, attempt: 1,
                        outcome: .released(attempted: false, possiblySent: false, error: nil))
                ], worker: "C")
            #expect(recorded == RecordedResults(released: 1))
            row = try #require(try await world.outboxRow(other))
            #expect(row.attempts == 0 && !row.possiblySent && row.leasedBy == nil)
            _ = try await world.outbox.claim(
                connectionID: world.connectionID, limit: 1, lease: .seconds(60), worker: "C")
            recorded = try await world.outbox.record(
                [
                    DispatchResult(
                        messageID: other, attempt: 1,
                        outcome: .retry(
                            code: nil, error: "gateway request timed out", possiblySent: true, delay: .seconds(30)))
                ],
                worker: "C")
            #expect(recorded == RecordedResults(retried: 1))
            row = try #require(try await world.outboxRow(other))
            #expect(
                row.attempts == 1 && row.possiblySent && row.leasedBy == nil
                    && row.dueAt > Date().addingTimeInterval(20))
            let retryEvent = try #require(try await world.events(other).last)
            #expect(
                retryEvent.status == "queued"
                    && retryEvent.detail?.hasPrefix("attempt 1 failed: gateway request timed out; next attempt at ")
                        == true
            )
        }
    }

    @Test func nothingIsClaimedThroughAPausedConnection() async throws {
        try await Self.run { world in
            let id = try #require(
                try await MessageFixtures.accept(pool: world.pool, tenant: world.tenant, recipients: ["31612345678"])
                    .first)
            _ = try await world.connections.pause(
                id: world.connectionID, reason: "maintenance window", code: nil, by: Self.admin)
            #expect(
                try await world.outbox.claim(
                    connectionID: world.connectionID, limit: 10, lease: .seconds(60), worker: "A"
                ).isEmpty)
            #expect(try await world.outboxRow(id)?.attempts == 0)
            _ = try await world.connections.resume(id: world.connectionID, by: Self.admin)
            #expect(
                try await world.outbox.claim(
                    connectionID: world.connectionID, limit: 10, lease: .seconds(60), worker: "A"
                ).map(\.messageID) == [id])
        }
    }

    @Test func backoffDoublesPerAttemptUpToTheCapWithFullJitter() {
        let backoff = RetryBackoff(base: .milliseconds(100), cap: .seconds(1))
        #expect(
            (1...6).map { backoff.ceiling(afterAttempt: $0) } == [
                .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1),
                .seconds(1),
            ])
        #expect(backoff.ceiling(afterAttempt: 10_000) == .seconds(1))
        let delays = (0..<200).map { _ in backoff.delay(afterAttempt: 3) }
        #expect(delays.allSatisfy { $0 >= .zero && $0 <= .milliseconds(400) })
        #expect(Set(delays).count > 100, "jittered, not fixed")
    }

    @Test func theLeaseCoversTwiceTheRequestTimeoutAndCallsStartWithinItsFirstHalf() {
        var settings = DispatcherSettings()
        settings.lease = .seconds(60)
        #expect(settings.lease(requestTimeout: .seconds(15)) == .seconds(60))
        #expect(settings.startWindow(requestTimeout: .seconds(15)) == .milliseconds(22_500))
        #expect(settings.lease(requestTimeout: .seconds(120)) == .seconds(240))
        #expect(settings.startWindow(requestTimeout: .seconds(120)) == .seconds(60))
    }

    @Test func aWakeReachesWaitersAndIsNotLostBetweenLookingAndWaiting() async throws {
        let signal = DispatchSignal()
        // Woken while waiting.
        let generation = signal.generation
        let started = ContinuousClock.now
        async let waited: Void = signal.wait(since: generation, timeout: .seconds(30))
        try await Task.sleep(for: .milliseconds(50))
        signal.wake()
        await waited
        #expect(ContinuousClock.now - started < .seconds(20))
        // Woken before the wait began (after the look): returns at once.
        let looked = signal.generation
        signal.wake()
        let again = ContinuousClock.now
        await signal.wait(since: looked, timeout: .seconds(30))
        #expect(ContinuousClock.now - again < .seconds(20))
        // Not woken: the timeout.
        await signal.wait(since: signal.generation, timeout: .milliseconds(20))
    }
}
