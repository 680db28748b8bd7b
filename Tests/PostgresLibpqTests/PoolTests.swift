import Foundation
import Logging
import PostgresTestSupport
import ServiceLifecycle
import Testing

@testable import PostgresLibpq

@Suite struct PoolTests {
    @Test func sixtyFourConcurrentTasksShareAPoolOfEight() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(configuration, maximumConnections: 8) { pool in
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for task in 0..<64 {
                        group.addTask {
                            var sum = 0
                            for step in 0..<25 {
                                sum +=
                                    try await pool.query("SELECT \(task * 100 + step)::int8 + 0 FROM pg_sleep(0.001)")
                                    .first(as: Int.self) ?? 0
                            }
                            return sum
                        }
                    }
                    var total = 0
                    for try await sum in group { total += sum }
                    // Σ over tasks and steps of task*100+step.
                    #expect(total == 25 * 100 * (63 * 64 / 2) + 64 * (24 * 25 / 2))
                }
                let statistics = pool.statistics
                #expect(statistics.leased == 0)
                #expect(statistics.waiting == 0)
                #expect(statistics.open <= 8)
                #expect(statistics.open >= 1)
                let database = try #require(configuration.value(for: "dbname"))
                let serverSide = try await pool.query(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = \(database) AND backend_type = 'client backend'"
                ).first(as: Int.self)
                #expect(serverSide == statistics.open)
            }
        }
    }

    @Test func terminatedConnectionsAreReplacedBeforeTheNextQuery() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            let admin = try TestDatabase.adminConfiguration()
            try await TestDatabase.withPool(configuration, minimumConnections: 4, maximumConnections: 4) { pool in
                // Use every connection once so four sessions exist.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<4 { group.addTask { try await pool.query("SELECT pg_sleep(0.05)") } }
                    try await group.waitForAll()
                }
                let database = try #require(configuration.value(for: "dbname"))
                let before = try await TestDatabase.withPool(admin, maximumConnections: 1) { adminPool in
                    let killed = try await adminPool.query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = \(database) AND backend_type = 'client backend'"
                    ).count
                    // Wait until the server has really ended those sessions.
                    for _ in 0..<200 {
                        let left = try await adminPool.query(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = \(database) AND backend_type = 'client backend'"
                        ).first(as: Int.self)
                        if left == 0 { break }
                        try await Task.sleep(for: .milliseconds(10))
                    }
                    return killed
                }
                #expect(before == 4)
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for value in 0..<8 {
                        group.addTask { try await pool.query("SELECT \(value)::int8").first(as: Int.self) ?? -1 }
                    }
                    var answers: [Int] = []
                    for try await answer in group { answers.append(answer) }
                    #expect(answers.sorted() == Array(0..<8))
                }
                #expect(pool.statistics.open <= 4)
            }
        }
    }

    @Test func acquireTimesOutWhenEveryConnectionIsBusy() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(
                configuration, minimumConnections: 1, maximumConnections: 1, acquireTimeout: .milliseconds(200)
            ) { pool in
                // The one connection is opened in the background; a busy machine may take longer than 200 ms.
                for _ in 0..<500 where pool.statistics.idle == 0 { try await Task.sleep(for: .milliseconds(10)) }
                try await pool.withConnection { _ in
                    let error = try await #require(throws: PostgresError.self) { try await pool.query("SELECT 1") }
                    #expect(error.kind == .acquireTimeout)
                }
                #expect(pool.statistics.acquireTimeouts == 1)
                let value1 = try await pool.query("SELECT 1").first(as: Int.self)
                #expect(value1 == 1)
            }
        }
    }

    @Test func unreachableDatabaseFailsFastWithAConnectionError() async throws {
        var configuration = try TestDatabase.adminConfiguration()
        configuration.set("host", to: "127.0.0.1")
        configuration.set("port", to: "1")  // nothing listens there
        try await TestDatabase.withPool(configuration, maximumConnections: 2, acquireTimeout: .seconds(30)) { pool in
            let started = ContinuousClock.now
            let error = try await #require(throws: PostgresError.self) { try await pool.query("SELECT 1") }
            #expect(error.kind == .connection)
            #expect(ContinuousClock.now - started < .seconds(10))
            #expect(pool.statistics.connectFailures >= 1)
        }
    }

    @Test func cancellingATaskCancelsItsStatement() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(configuration, maximumConnections: 2) { pool in
                let started = ContinuousClock.now
                let task = Task { try await pool.query("SELECT pg_sleep(30) AS cancel_me") }
                // Cancel only once the backend is inside pg_sleep: once, on a loaded machine, a cancel sent while the
                // statement was merely reported active had no effect (it ran its full 30 s).
                var running = false
                for _ in 0..<500 where !running {
                    running =
                        try await pool.query(
                            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND wait_event = 'PgSleep' AND query LIKE '%AS cancel_me%' AND pid <> pg_backend_pid()"
                        ).first(as: Int.self) == 1
                    if !running { try await Task.sleep(for: .milliseconds(10)) }
                }
                try #require(running)
                task.cancel()
                let error = await #expect(throws: PostgresError.self) { try await task.value }
                #expect(error?.sqlState == SQLState.queryCanceled)
                #expect(ContinuousClock.now - started < .seconds(10))
                let after = try await pool.query("SELECT 2").first(as: Int.self)
                #expect(after == 2)
            }
        }
    }

    @Test func aTaskCancelledBeforeItsStatementStartsSendsNothing() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(configuration, maximumConnections: 1) { pool in
                try await pool.query("CREATE TABLE touched (id int)")
                try await pool.withConnection { connection in
                    let gate = Barrier(parties: 2)
                    let task = Task {
                        await gate.arrive()  // not a cancellation point: the task is already cancelled after it
                        return try await connection.query("INSERT INTO touched VALUES (1)")
                    }
                    task.cancel()
                    await gate.arrive()
                    await #expect(throws: CancellationError.self) { try await task.value }
                }
                let count = try await pool.query("SELECT count(*) FROM touched").first(as: Int.self)
                #expect(count == 0)
            }
        }
    }

    @Test func statementTimeoutFromTheConfigurationApplies() async throws {
        try await TestDatabase.withFreshDatabase { base in
            var configuration = base
            configuration.statementTimeoutMilliseconds = 100
            configuration.applicationName = "timeout-test"
            try await TestDatabase.withPool(configuration, maximumConnections: 1) { pool in
                let error = try await #require(throws: PostgresError.self) {
                    try await pool.query("SELECT pg_sleep(5)")
                }
                #expect(error.sqlState == SQLState.queryCanceled)
                let value3 = try await pool.query("SHOW application_name").first(as: String.self)
                #expect(value3 == "timeout-test")
                let value4 = try await pool.query("SHOW TimeZone").first(as: String.self)
                #expect(value4 == "UTC")
            }
        }
    }
}

@Suite struct PoolShutdownTests {
    @Test func gracefulShutdownLetsLeasedWorkFinishThenRefusesNewWork() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            let pool = PostgresPool(
                configuration: configuration, poolConfiguration: .init(minimumConnections: 1, maximumConnections: 2))
            let group = ServiceGroup(configuration: .init(services: [pool], logger: Logger(label: "test")))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                #expect(try await pool.query("SELECT 1").first(as: Int.self) == 1)
                let slow = Task { try await pool.query("SELECT 7 FROM pg_sleep(0.5)").first(as: Int.self) }
                try await Task.sleep(for: .milliseconds(100))
                await group.triggerGracefulShutdown()
                // The statement already running completes normally…
                let slowAnswer = try await slow.value
                #expect(slowAnswer == 7)
                try await tasks.waitForAll()
            }
            // …and once the pool has closed, nothing new is accepted.
            let error = try await #require(throws: PostgresError.self) { try await pool.query("SELECT 1") }
            #expect(error.kind == .poolClosed)
            let statistics = pool.statistics
            #expect(statistics.open == 0)
            #expect(statistics.closed == statistics.opened)
        }
    }
}
