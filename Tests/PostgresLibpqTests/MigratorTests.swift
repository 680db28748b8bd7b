import Foundation
import PostgresTestSupport
import Testing

@testable import PostgresLibpq

@Suite struct MigratorTests {
    static let migrations = [
        Migration(version: 1, name: "create_log", sql: "CREATE TABLE log (note text); INSERT INTO log VALUES ('one');"),
        Migration(version: 2, name: "second", sql: "CREATE TABLE second (id int); INSERT INTO log VALUES ('two');"),
        Migration(version: 3, name: "slow", sql: "SELECT pg_sleep(0.2); INSERT INTO log VALUES ('three');"),
    ]

    /// What each of two migrators, each on a pool of its own, applied when started together.
    static func twoMigratorsAtOnce(
        _ configuration: PostgresConfiguration, migrations: [Migration] = MigratorTests.migrations
    ) async throws -> [[Migration]] {
        try await withThrowingTaskGroup(of: [Migration].self) { group in
            for _ in 0..<2 {
                group.addTask {
                    try await TestDatabase.withPool(configuration, maximumConnections: 1) { pool in
                        try await Migrator(pool: pool, migrations: migrations).migrate()
                    }
                }
            }
            var results: [[Migration]] = []
            for try await applied in group { results.append(applied) }
            return results
        }
    }

    @Test func twoMigratorsStartedTogetherApplyEachFileOnce() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            let results = try await Self.twoMigratorsAtOnce(configuration)
            // Each migration was applied by one of them (which one may differ from migration to migration).
            #expect(results.flatMap { $0.map(\.version) }.sorted() == [1, 2, 3])
            try await TestDatabase.withPool(configuration) { pool in
                let value1 = try await pool.query("SELECT note FROM log ORDER BY note").decode(String.self)
                #expect(value1 == ["one", "three", "two"])
                let value2 = try await pool.query("SELECT array_agg(version ORDER BY version) FROM schema_migrations")
                    .first(as: [Int].self)
                #expect(value2 == [1, 2, 3])
            }
        }
    }

    @Test func aChangedAppliedMigrationIsRefused() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(configuration, maximumConnections: 1) { pool in
                try await Migrator(pool: pool, migrations: Self.migrations).migrate()
                var edited = Self.migrations
                edited[1] = Migration(version: 2, name: "second", sql: "CREATE TABLE second (id int8);")
                let error = try await #require(throws: MigrationError.self) {
                    try await Migrator(
                        pool: pool,
                        migrations: edited + [Migration(version: 4, name: "later", sql: "CREATE TABLE later ()")]
                    ).migrate()
                }
                guard case .checksumMismatch(let version, _, _, _) = error else {
                    Issue.record("expected a checksum mismatch, got \(error)")
                    return
                }
                #expect(version == 2)
                // Nothing after the refusal was applied.
                let value3 = try await pool.query("SELECT to_regclass('later') IS NULL").first(as: Bool.self)
                #expect(value3 == true)
            }
        }
    }

    /// A session statement timeout (the service's `DB_STATEMENT_TIMEOUT_MS`) neither cuts a slow migration short nor
    /// the wait for the lock another migrator holds, and the session keeps it afterwards.
    @Test func theSessionStatementTimeoutLimitsNeitherAMigrationNorTheWaitForTheLock() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            // 1 s, so that the statements the timeout still covers (the BEGIN, the SET LOCAL) are never cut short on a
            // loaded machine: 100 ms once was, in CI.
            let limited = {
                var limited = configuration
                limited.statementTimeoutMilliseconds = 1_000
                return limited
            }()
            var migrations = Self.migrations
            migrations[2] = Migration(
                version: 3, name: "slow", sql: "SELECT pg_sleep(2.5); INSERT INTO log VALUES ('three');")
            let results = try await Self.twoMigratorsAtOnce(limited, migrations: migrations)
            // The slow migration sleeps 2.5 s, past the timeout, while the other migrator waits for the lock as long.
            #expect(results.flatMap { $0.map(\.version) }.sorted() == [1, 2, 3])
            try await TestDatabase.withPool(limited, maximumConnections: 1) { pool in
                let timeout = try await pool.query("SHOW statement_timeout").first(as: String.self)
                #expect(timeout == "1s")
                await #expect(throws: PostgresError.self) { try await pool.query("SELECT pg_sleep(3)") }
            }
        }
    }

    @Test func aFailingMigrationLeavesNoTrace() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(configuration, maximumConnections: 1) { pool in
                let broken =
                    Self.migrations + [
                        Migration(
                            version: 4, name: "broken", sql: "CREATE TABLE half (id int); SELECT * FROM missing_table;")
                    ]
                await #expect(throws: PostgresError.self) {
                    try await Migrator(pool: pool, migrations: broken).migrate()
                }
                let value4 = try await pool.query("SELECT to_regclass('half') IS NULL").first(as: Bool.self)
                #expect(value4 == true)
                let value5 = try await pool.query("SELECT max(version) FROM schema_migrations").first(as: Int.self)
                #expect(value5 == 3)
                // The advisory lock was released: another run can proceed.
                #expect(try await Migrator(pool: pool, migrations: Self.migrations).migrate().isEmpty)
            }
        }
    }

    @Test func migrationFilesAreLoadedInNumericOrderAndValidated() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("migrations-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "B".write(to: directory.appendingPathComponent("0010_ten.sql"), atomically: true, encoding: .utf8)
        try "A".write(to: directory.appendingPathComponent("0002_two.sql"), atomically: true, encoding: .utf8)
        try "ignored".write(to: directory.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        // The generated schema beside the migrations is for reading: not a migration, and no bad file name either.
        try "CREATE TABLE t ();".write(
            to: directory.appendingPathComponent("schema.sql"), atomically: true, encoding: .utf8)
        let loaded = try Migration.load(from: directory)
        #expect(loaded.map(\.version) == [2, 10])
        #expect(loaded.map(\.name) == ["two", "ten"])
        try "C".write(to: directory.appendingPathComponent("0010_again.sql"), atomically: true, encoding: .utf8)
        #expect(throws: MigrationError.duplicateVersion(10)) { try Migration.load(from: directory) }
        try FileManager.default.removeItem(at: directory.appendingPathComponent("0010_again.sql"))
        try "D".write(to: directory.appendingPathComponent("latest.sql"), atomically: true, encoding: .utf8)
        #expect(throws: MigrationError.badFileName("latest.sql")) { try Migration.load(from: directory) }
    }
}
