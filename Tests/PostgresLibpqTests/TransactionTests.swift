import Foundation
import PostgresTestSupport
import Synchronization
import Testing

@testable import PostgresLibpq

@Suite struct TransactionTests {
    struct Boom: Error {}

    @Test func aThrownErrorRollsBack() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(configuration) { pool in
                try await pool.query("CREATE TABLE entry (id int PRIMARY KEY)")
                await #expect(throws: Boom.self) {
                    try await pool.withTransaction { connection in
                        try await connection.query("INSERT INTO entry VALUES (1)")
                        throw Boom()
                    }
                }
                let value1 = try await pool.query("SELECT count(*) FROM entry").first(as: Int.self)
                #expect(value1 == 0)
                try await pool.withTransaction { connection in
                    _ = try await connection.query("INSERT INTO entry VALUES (2)")
                }
                let value2 = try await pool.query("SELECT array_agg(id) FROM entry").first(as: [Int].self)
                #expect(value2 == [2])
            }
        }
    }

    @Test func aSwallowedStatementErrorStillAbortsTheCommit() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(configuration) { pool in
                try await pool.query("CREATE TABLE entry (id int PRIMARY KEY)")
                let error = try await #require(throws: PostgresError.self) {
                    try await pool.withTransaction { connection in
                        try await connection.query("INSERT INTO entry VALUES (1)")
                        _ = try? await connection.query("INSERT INTO entry VALUES (1)")  // fails, error ignored
                    }
                }
                #expect(error.kind == .transactionAborted)
                let value3 = try await pool.query("SELECT count(*) FROM entry").first(as: Int.self)
                #expect(value3 == 0)
            }
        }
    }

    @Test func aSerializationFailureIsRetried() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(configuration, maximumConnections: 4) { pool in
                try await pool.query("CREATE TABLE duty (doctor text, on_call bool)")
                try await pool.query("INSERT INTO duty VALUES ('alice', true), ('bob', true)")
                let attempts = AttemptCounter()
                let readers = Barrier(parties: 2)
                // Classic write skew: each takes a different doctor off call after checking that
                // someone else is on call. Under SERIALIZABLE one of them must fail with 40001.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for doctor in ["alice", "bob"] {
                        group.addTask {
                            try await pool.withTransaction(isolation: .serializable) { connection in
                                let attempt = attempts.next()
                                let onCall =
                                    try await connection.query("SELECT count(*) FROM duty WHERE on_call").first(
                                        as: Int.self) ?? 0
                                if attempt <= 2 { await readers.arrive() }
                                if onCall > 1 {
                                    try await connection.query(
                                        "UPDATE duty SET on_call = false WHERE doctor = \(doctor)")
                                }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                // At least one retry. Under load PostgreSQL may abort both sides of the skew; each then retries, and
                // the retries may conflict again, so the exact count is not fixed, only the outcome below.
                #expect(attempts.count >= 3)
                let onCall = try await pool.query("SELECT count(*) FROM duty WHERE on_call").first(as: Int.self)
                #expect(onCall == 1)
            }
        }
    }

    @Test func retriesStopAfterMaxAttempts() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(configuration) { pool in
                let attempts = AttemptCounter()
                let error = try await #require(throws: PostgresError.self) {
                    try await pool.withTransaction(maxAttempts: 3) { connection in
                        _ = attempts.next()
                        try await connection.query(
                            "DO $$ BEGIN RAISE EXCEPTION 'forced' USING ERRCODE = '40001'; END $$")
                    }
                }
                #expect(error.sqlState == SQLState.serializationFailure)
                #expect(attempts.count == 3)
            }
        }
    }

    /// The `BEGIN` goes out with the first statement: whatever that statement is, it runs inside the transaction, with
    /// the transaction's settings; a body that sends nothing leaves the session as it was.
    @Test func theBeginTravelsWithTheFirstStatementAndTakesEffectForIt() async throws {
        struct Boom: Error {}
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(configuration, maximumConnections: 1) { pool in
                try await pool.query("CREATE TABLE entry (id int PRIMARY KEY)")
                // The first statement is already inside the block: now() is the transaction's start for both.
                let (first, second) = try await pool.withTransaction { connection in
                    let first = try await connection.query("SELECT now()").first(as: Date.self)
                    try await Task.sleep(for: .milliseconds(20))
                    return (first, try await connection.query("SELECT now()").first(as: Date.self))
                }
                #expect(first != nil && first == second)
                // READ ONLY applies to the first statement, which is a write.
                let readOnly = try await #require(throws: PostgresError.self) {
                    try await pool.withTransaction(readOnly: true) { connection in
                        try await connection.query("INSERT INTO entry VALUES (1)")
                    }
                }
                #expect(readOnly.sqlState == "25006")
                // A pipeline first, then an error: all of it rolled back.
                await #expect(throws: Boom.self) {
                    try await pool.withTransaction { connection in
                        _ = try await connection.pipeline([
                            "INSERT INTO entry VALUES (2)", "INSERT INTO entry VALUES (3)",
                        ])
                        throw Boom()
                    }
                }
                // A COPY first: the BEGIN is sent on its own before it, so the rollback undoes the rows.
                await #expect(throws: Boom.self) {
                    try await pool.withTransaction { connection in
                        try await connection.copyIn("COPY entry (id) FROM STDIN") { writer in
                            try await writer.writeRow(["4"])
                        }
                        throw Boom()
                    }
                }
                #expect(try await pool.query("SELECT count(*) FROM entry").first(as: Int.self) == 0)
                // Nothing sent: the body's result, and the session is outside any transaction afterwards.
                let nothing = try await pool.withTransaction { _ in 42 }
                #expect(nothing == 42)
                await #expect(throws: Boom.self) { try await pool.withTransaction { _ in throw Boom() } }
                let idle = try await pool.withConnection { connection in
                    try await connection.query("SELECT 1")
                    return connection.isIdleInTransactionTerms
                }
                #expect(idle, "no BEGIN was left behind for the next statement")
            }
        }
    }
}

final class AttemptCounter: Sendable {
    private let value = Mutex(0)
    func next() -> Int {
        value.withLock {
            $0 += 1
            return $0
        }
    }
    var count: Int { value.withLock { $0 } }
}

/// Lets `parties` tasks wait for each other.
actor Barrier {
    private let parties: Int
    private var arrived = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(parties: Int) { self.parties = parties }

    func arrive() async {
        arrived += 1
        if arrived >= parties {
            for continuation in waiting { continuation.resume() }
            waiting.removeAll()
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }
}
