import Foundation
import PostgresTestSupport
import Testing

@testable import PostgresLibpq

/// `pipeline(_:)`: several statements in one round trip, their answers in order, errors and transactions as for single
/// statements, prepared statements reused and renewed.
@Suite struct PipelineTests {
    private static func withOneConnection(
        cacheSize: Int = 256, _ body: (PostgresPool) async throws -> Void
    ) async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            var configuration = configuration
            configuration.preparedStatementCacheSize = cacheSize
            try await TestDatabase.withPool(configuration, maximumConnections: 1) { pool in
                try await pool.query("CREATE TABLE entry (id int PRIMARY KEY, name text)")
                try await pool.query("INSERT INTO entry VALUES (1, 'one'), (2, 'two'), (3, 'three')")
                try await body(pool)
            }
        }
    }

    private static func name(_ id: Int) -> PostgresRead<String?> {
        PostgresRead("SELECT name FROM entry WHERE id = \(id)") { try $0.first(as: String.self) }
    }

    @Test(arguments: [256, 2, 0])
    func readsComeBackInOrderWithTheirValues(cacheSize: Int) async throws {
        try await Self.withOneConnection(cacheSize: cacheSize) { pool in
            // Several rounds on the one connection: prepared on the first, reused (or renewed when the cache is
            // small, or unprepared without a cache) on the others.
            for _ in 0..<4 {
                let (three, missing, constant, count, one) = try await pool.withConnection { connection in
                    try await connection.pipeline(
                        Self.name(3), Self.name(42), PostgresRead<Int>.constant(7),
                        PostgresRead("SELECT count(*) FROM entry") { try $0.first(as: Int.self) ?? -1 },
                        Self.name(1))
                }
                #expect(three == "three" && missing == nil && constant == 7 && count == 3 && one == "one")
            }
            let rows = try await pool.withConnection { connection in
                try await connection.pipeline([
                    "SELECT 1", "SELECT name FROM entry ORDER BY id", "SELECT $$a$$ || \("b")",
                ])
            }
            #expect(try rows.map { try $0.decode(String.self) } == [["1"], ["one", "two", "three"], ["ab"]])
        }
    }

    @Test func anErrorUndoesTheStatementsBeforeItAndSkipsTheOnesAfter() async throws {
        try await Self.withOneConnection { pool in
            let error = try await #require(throws: PostgresError.self) {
                try await pool.withConnection { connection in
                    try await connection.pipeline([
                        "INSERT INTO entry VALUES (10, 'ten')", "INSERT INTO entry VALUES (1, 'again')",
                        "INSERT INTO entry VALUES (11, 'eleven')",
                    ])
                }
            }
            #expect(error.isUniqueViolation && error.followedSuccess)
            // One implicit transaction: the insert before the error is gone too; the one after never ran.
            #expect(
                try await pool.query("SELECT array_agg(id ORDER BY id) FROM entry").first(as: [Int].self) == [1, 2, 3])
            // The connection is back in step for the next statement and the next pipeline.
            let (two, one) = try await pool.withConnection { try await $0.pipeline(Self.name(2), Self.name(1)) }
            #expect(two == "two" && one == "one")
        }
    }

    @Test func insideATransactionItBelongsToTheTransaction() async throws {
        struct Boom: Error {}
        try await Self.withOneConnection { pool in
            await #expect(throws: Boom.self) {
                try await pool.withTransaction { connection in
                    _ = try await connection.pipeline([
                        "INSERT INTO entry VALUES (20, 'twenty')", "INSERT INTO entry VALUES (21, 'twenty-one')",
                    ])
                    throw Boom()
                }
            }
            #expect(try await pool.query("SELECT count(*) FROM entry").first(as: Int.self) == 3)
            try await pool.withTransaction { connection in
                _ = try await connection.pipeline([
                    "INSERT INTO entry VALUES (20, 'twenty')", "UPDATE entry SET name = 'uno' WHERE id = 1",
                ])
                // The transaction sees its own pipeline's writes.
                #expect(try await connection.read(Self.name(1)) == "uno")
            }
            #expect(try await pool.query("SELECT count(*) FROM entry").first(as: Int.self) == 4)
            // A failed statement inside a transaction block fails its commit, as a single statement would.
            let error = try await #require(throws: PostgresError.self) {
                try await pool.withTransaction { connection in
                    _ = try? await connection.pipeline(["INSERT INTO entry VALUES (30, 'x')", "SELECT 1/0"])
                }
            }
            #expect(error.kind == .transactionAborted)
            #expect(try await pool.query("SELECT count(*) FROM entry WHERE id = 30").first(as: Int.self) == 0)
        }
    }

    @Test func aPreparedStatementInvalidatedUnderItRunsAfresh() async throws {
        try await Self.withOneConnection { pool in
            let everything = PostgresRead("SELECT * FROM entry WHERE id = \(1)") { $0.columns.count }
            let before = try await pool.withConnection { try await $0.pipeline(everything, Self.name(2)) }
            #expect(before.0 == 2 && before.1 == "two")
            // The cached plan's result type changes (0A000), then a statement vanishes altogether (26000).
            try await pool.query("ALTER TABLE entry ADD COLUMN note text")
            let after = try await pool.withConnection { try await $0.pipeline(everything, Self.name(2)) }
            #expect(after.0 == 3 && after.1 == "two")
            try await pool.query("DEALLOCATE ALL")
            let again = try await pool.withConnection { try await $0.pipeline(everything, Self.name(3)) }
            #expect(again.0 == 3 && again.1 == "three")
        }
    }

    @Test func aSessionTheServerEndedIsReplacedAndThePipelineRunsOnce() async throws {
        try await Self.withOneConnection { pool in
            let pid = try await pool.withConnection { $0.backendPID }
            try await TestDatabase.withPool(try TestDatabase.adminConfiguration(), maximumConnections: 1) { admin in
                try await admin.query("SELECT pg_terminate_backend(\(pid))")
            }
            try await Task.sleep(for: .milliseconds(200))
            let (one, two) = try await pool.withConnection { try await $0.pipeline(Self.name(1), Self.name(2)) }
            #expect(one == "one" && two == "two")
            #expect(try await pool.withConnection { $0.backendPID } != pid)
        }
    }
}
