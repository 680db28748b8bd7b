import Foundation
import Gateway1601
import Gateway1601Simulator
import Logging
import PostgresLibpq
import PostgresTestSupport
import ServiceLifecycle
import Testing

@testable import Reseller

/// The dispatcher's SQL against a real database: claims and the lease guard of the recording.
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
        var sends: [ReceivedRequest] { simulator.receivedRequests().filter { $0.path == GatewayCall.gatewayPath } }
        /// Those it answered `OK …`.
        var accepted: [ReceivedRequest] { sends.filter { $0.answer?.hasPrefix("OK") == true } }

        func message(_ id: UUID) async throws -> MessageRow {
            try #require(try await pool.query("SELECT \(unescaped: MessageRow.columns) FROM message WHERE id = \(id)")
                .decodeRecords(MessageRow.self).first)
        }

        func statuses(_ ids: [UUID]) async throws -> [String] {
            try await pool.query("SELECT status FROM message WHERE id = ANY(\(ids)) ORDER BY status").decode(String.self)
        }

        func allSubmitted(_ ids: [UUID]) async throws -> Bool {
            try await statuses(ids).allSatisfy { $0 == "submitted" }
        }

        func events(_ id: UUID) async throws -> [(status: String, code: Int?, detail: String?, at: Date)] {
            try await pool.query("SELECT status, code, detail, occurred_at FROM message_event WHERE message_id = \(id) ORDER BY seq")
                .decode((String, Int?, String?, Date).self).map { (status: $0.0, code: $0.1, detail: $0.2, at: $0.3) }
        }

        /// A message's outbox row: attempts, possibly sent, who holds it, its due time; nil when gone.
        func outboxRow(_ id: UUID) async throws -> (attempts: Int, possiblySent: Bool, leasedBy: String?, dueAt: Date)? {
            try await pool.query("SELECT attempts, possibly_sent, leased_by, due_at FROM message_outbox WHERE message_id = \(id)")
                .first(as: (Int, Bool, String?, Date).self).map { (attempts: $0.0, possiblySent: $0.1, leasedBy: $0.2, dueAt: $0.3) }
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
            case statusCode = "status_code", statusDetail = "status_detail", upstreamID = "upstream_id"
            case upstreamConnectionID = "upstream_connection_id", scheduleAt = "schedule_at", submittedAt = "submitted_at"
            case retailReservationID = "retail_reservation_id", wholesaleReservationID = "wholesale_reservation_id"
        }
    }

    static let logger: Logger = {
        var logger = Logger(label: "test.dispatcher")
        logger.logLevel = ProcessInfo.processInfo.environment["TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return logger
    }()

    static let admin = AuditActor(actor: "test", role: "admin", requestID: nil)

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
                try await running([simulator]) {
                    let repository = UpstreamConnectionRepository(pool: pool)
                    let settings = UpstreamConnectionSettings(
                        name: "simulator", baseURL: try await simulator.baseURL(), username: "sandbox", password: "sandbox",
                        concurrency: concurrency, rateLimitPerSecond: ratePerSecond, requestTimeoutMilliseconds: requestTimeoutMilliseconds)
                    let connection = try #require(try await repository.create(settings, by: admin))
                    _ = try await repository.setDefault(connectionID: connection.id, by: admin)
                    let tenant = try await MessageFixtures.tenant(pool: pool)
                    try await body(World(pool: pool, simulator: simulator, connectionID: connection.id, tenant: tenant))
                }
            }
        }
    }

    /// Runs `services` for the duration of `body`, then shuts them down gracefully and waits for them.
    static func running<Result>(_ services: [any Service], _ body: () async throws -> Result) async throws -> Result {
        // Graceful shutdown, never cancellation, stops them: cancelling a NIO server mid-accept traps (apple/swift-nio#2813).
        let group = ServiceGroup(configuration: .init(services: services, logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                let result = try await body()
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return result
            } catch {
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                throw error
            }
        }
    }

    struct TimedOut: Error, CustomStringConvertible {
        var description: String
    }

    /// Polls `condition` until it holds; fails the test after `timeout` (generous: the machine may be loaded).
    static func eventually(
        _ what: String, timeout: Duration = .seconds(30), sourceLocation: SourceLocation = #_sourceLocation,
        _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out waiting until \(what)", sourceLocation: sourceLocation)
                throw TimedOut(description: what)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    // MARK: - The recording SQL

    @Test func aWorkerWhoseClaimWasTakenOverCannotOverwriteTheNewOwnerButItsOKIsKept() async throws {
        try await Self.run { world in
            let id = try #require(try await MessageFixtures.accept(pool: world.pool, tenant: world.tenant, recipients: ["31612345678"]).first)
            // A claims with a lease that ends at once; B takes the message over.
            let a = try await world.outbox.claim(connectionID: world.connectionID, limit: 1, lease: .zero, worker: "A")
            let b = try await world.outbox.claim(connectionID: world.connectionID, limit: 1, lease: .seconds(60), worker: "B")
            #expect(a.map(\.attempt) == [1] && b.map(\.attempt) == [2] && b.first?.wasPossiblySent == true)

            // A's failures are ignored: B owns the row.
            var recorded = try await world.outbox.record([
                DispatchResult(messageID: id, attempt: 1, outcome: .retry(code: 120, error: "ERROR 120", possiblySent: false, delay: .seconds(1))),
                DispatchResult(messageID: id, attempt: 1, outcome: .failed(code: 114, detail: "ERROR 114")),
            ], worker: "A")
            #expect(recorded == RecordedResults(stale: 2))
            var row = try #require(try await world.outboxRow(id))
            #expect(row.leasedBy == "B" && row.attempts == 2 && row.possiblySent)
            // Nor may B record under an attempt it does not hold.
            recorded = try await world.outbox.record([DispatchResult(messageID: id, attempt: 1, outcome: .discarded)], worker: "B")
            #expect(recorded == RecordedResults(stale: 1))
            #expect(try await world.outboxRow(id) != nil)

            // But A's OK is recorded: the upstream has the message.
            recorded = try await world.outbox.record(
                [DispatchResult(messageID: id, attempt: 1, outcome: .submitted(upstreamID: "7000001", connectionID: world.connectionID))], worker: "A")
            #expect(recorded == RecordedResults(submitted: 1))
            var message = try await world.message(id)
            #expect(message.status == "submitted" && message.upstreamID == "7000001")
            #expect(try await world.outboxRow(id) == nil)

            // B's later answers change nothing; its OK (a duplicate send) is kept as an event.
            recorded = try await world.outbox.record([
                DispatchResult(messageID: id, attempt: 2, outcome: .submitted(upstreamID: "7000002", connectionID: world.connectionID)),
                DispatchResult(messageID: id, attempt: 2, outcome: .failed(code: 114, detail: "ERROR 114")),
            ], worker: "B")
            #expect(recorded == RecordedResults(lateSubmissions: 1, stale: 1))
            message = try await world.message(id)
            #expect(message.status == "submitted" && message.upstreamID == "7000001")
            let events = try await world.events(id)
            #expect(events.map(\.status) == ["submitted", "late_submission"])
            #expect(events.last?.detail == "the upstream accepted attempt 2 as 7000002 after the message was already submitted")
            #expect(try await world.reservationStates(message) == ["pending", "pending"], "nothing was voided")

            // Releasing undoes an unattempted claim; retrying keeps the attempt and records why.
            let other = try #require(try await MessageFixtures.accept(pool: world.pool, tenant: world.tenant, recipients: ["31687654321"]).first)
            _ = try await world.outbox.claim(connectionID: world.connectionID, limit: 1, lease: .seconds(60), worker: "C")
            recorded = try await world.outbox.record(
                [DispatchResult(messageID: other, attempt: 1, outcome: .released(attempted: false, possiblySent: false, error: nil))], worker: "C")
            #expect(recorded == RecordedResults(released: 1))
            row = try #require(try await world.outboxRow(other))
            #expect(row.attempts == 0 && !row.possiblySent && row.leasedBy == nil)
            _ = try await world.outbox.claim(connectionID: world.connectionID, limit: 1, lease: .seconds(60), worker: "C")
            recorded = try await world.outbox.record(
                [DispatchResult(messageID: other, attempt: 1, outcome: .retry(code: nil, error: "gateway request timed out", possiblySent: true, delay: .seconds(30)))],
                worker: "C")
            #expect(recorded == RecordedResults(retried: 1))
            row = try #require(try await world.outboxRow(other))
            #expect(row.attempts == 1 && row.possiblySent && row.leasedBy == nil && row.dueAt > Date().addingTimeInterval(20))
            let retryEvent = try #require(try await world.events(other).last)
            #expect(retryEvent.status == "queued" && retryEvent.detail?.hasPrefix("attempt 1 failed: gateway request timed out; next attempt at ") == true)
        }
    }

    @Test func nothingIsClaimedThroughAPausedConnection() async throws {
        try await Self.run { world in
            let id = try #require(try await MessageFixtures.accept(pool: world.pool, tenant: world.tenant, recipients: ["31612345678"]).first)
            _ = try await world.connections.pause(id: world.connectionID, reason: "maintenance window", code: nil, by: Self.admin)
            #expect(try await world.outbox.claim(connectionID: world.connectionID, limit: 10, lease: .seconds(60), worker: "A").isEmpty)
            #expect(try await world.outboxRow(id)?.attempts == 0)
            _ = try await world.connections.resume(id: world.connectionID, by: Self.admin)
            #expect(try await world.outbox.claim(connectionID: world.connectionID, limit: 10, lease: .seconds(60), worker: "A").map(\.messageID) == [id])
        }
    }
}
