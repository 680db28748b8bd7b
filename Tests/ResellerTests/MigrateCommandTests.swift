import Foundation
import PostgresLibpq
import PostgresTestSupport
import ResellerCore
import Testing

/// `sms-reseller migrate --dry-run` and `sms-reseller migrate status`, run as the operator runs them: the built binary
/// (`SMS_RESELLER_BIN`, else the one beside the test bundle) against a database of its own.
@Suite struct MigrateCommandTests {
    struct Run {
        let status: Int32
        let output: String
    }

    static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["SMS_RESELLER_BIN"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("sms-reseller")
    }

    /// The URL of a configuration, in libpq's `key=value` form.
    static func url(_ configuration: PostgresConfiguration) -> String {
        configuration.parameters.map { "\($0.keyword)='\($0.value)'" }.joined(separator: " ")
    }

    /// Runs the binary; `output` is its standard output, and its standard error too when `errors`.
    static func run(_ arguments: [String], database: PostgresConfiguration, errors: Bool = false) throws -> Run {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["DATABASE_URL"] = url(database)
        environment["LOG_LEVEL"] = "warning"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        if errors { process.standardError = pipe }
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self))
    }

    /// `verify-ledger` and `export` only read, so that they run on a standby: they migrate nothing, and refuse a
    /// database that lacks this build's migrations instead.
    @Test func theReadOnlyCommandsRefuseASchemaBehindAndMigrateNothing() async throws {
        let bundled = try BundledMigrations.load()
        try await TestDatabase.withFreshDatabase { database in
            try await TestDatabase.withPool(database, maximumConnections: 1) { pool in
                try await Migrator(pool: pool, migrations: Array(bundled.dropLast())).migrate()
            }
            let last = String(format: "%04d_", bundled[bundled.count - 1].version) + bundled[bundled.count - 1].name
            for arguments in [["verify-ledger"], ["export", "messages", "--from", "2026-01-01", "--to", "2026-02-01"]] {
                let run = try Self.run(arguments, database: database, errors: true)
                #expect(run.status != 0, "\(arguments): \(run.output)")
                #expect(
                    run.output.contains("the database's schema is not this build's (\(last) not applied"),
                    "\(run.output)")
            }
            let applied = try await TestDatabase.withPool(database) { pool in
                try await pool.query("SELECT count(*) FROM schema_migrations").first(as: Int.self)
            }
            #expect(applied == bundled.count - 1)
            let migrated = try Self.run(["migrate"], database: database)
            #expect(migrated.status == 0)
            let verified = try Self.run(["verify-ledger"], database: database)
            #expect(verified.status == 0 && verified.output.hasSuffix("invariants=ok\n"), "\(verified.output)")
        }
    }

    @Test func dryRunListsEveryPendingMigrationInOrderAndAppliesNothing() async throws {
        let bundled = try BundledMigrations.load()
        try await TestDatabase.withFreshDatabase { database in
            let run = try Self.run(["migrate", "--dry-run"], database: database)
            #expect(run.status == 0, "\(run.output)")
            let expected = bundled.map { "would apply \(String(format: "%04d", $0.version))_\($0.name) \($0.checksum)" }
            #expect(Array(run.output.split(separator: "\n").map(String.init).prefix(bundled.count)) == expected)
            #expect(run.output.contains("dry-run: pending=\(bundled.count) applied=0 refused=0"))
            try await TestDatabase.withPool(database) { pool in
                let tables = try await pool.query(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                ).first(as: Int.self)
                #expect(tables == 0)
            }
            // After the first migrations only the later ones are pending.
            try await TestDatabase.withPool(database, maximumConnections: 1) { pool in
                try await Migrator(pool: pool, migrations: Array(bundled.prefix(3))).migrate()
            }
            let later = try Self.run(["migrate", "--dry-run"], database: database)
            #expect(later.status == 0, "\(later.output)")
            #expect(
                later.output.hasPrefix("would apply \(String(format: "%04d", bundled[3].version))_\(bundled[3].name)"))
            #expect(later.output.contains("dry-run: pending=\(bundled.count - 3) applied=3 refused=0"))
            try await TestDatabase.withPool(database) { pool in
                let applied = try await pool.query("SELECT count(*) FROM schema_migrations").first(as: Int.self)
                #expect(applied == 3)
            }
        }
    }

    @Test func statusShowsEachMigrationAndFailsOnAChangedOrUnknownOne() async throws {
        let bundled = try BundledMigrations.load()
        try await TestDatabase.withFreshDatabase { database in
            try await TestDatabase.withPool(database, maximumConnections: 1) { pool in
                try await Migrator(pool: pool, migrations: Array(bundled.dropLast())).migrate()
            }
            let last = bundled[bundled.count - 1]
            let lastLabel = String(format: "%04d", last.version) + "_" + last.name
            let clean = try Self.run(["migrate", "status"], database: database)
            #expect(clean.status == 0, "\(clean.output)")
            let lines = clean.output.split(separator: "\n").map(String.init)
            let lastLine = try #require(lines.first { $0.contains(" \(lastLabel) ") })
            #expect(lastLine.hasPrefix("pending  ") && lastLine.hasSuffix(" \(last.checksum)"), "\(lastLine)")
            #expect(lines.filter { $0.hasPrefix("applied  ") }.count == bundled.count - 1)
            #expect(clean.output.contains("applied  0001_initial"))
            #expect(clean.output.contains("migrations: applied=\(bundled.count - 1) pending=1 changed=0 unknown=0"))

            // The first migration's recorded checksum no longer matches its file; a migration of a newer build.
            try await TestDatabase.withPool(database) { pool in
                try await pool.query("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
                try await pool.query(
                    "INSERT INTO schema_migrations (version, name, checksum, duration_ms) VALUES (9999, 'future', 'abc', 1)"
                )
            }
            let broken = try Self.run(["migrate", "status"], database: database)
            #expect(broken.status == 1, "\(broken.output)")
            #expect(broken.output.contains("changed  0001_initial"))
            #expect(broken.output.contains("applied edited: changed after it was applied"))
            #expect(broken.output.contains("unknown  9999_future"))
            #expect(broken.output.contains("changed=1 unknown=1"))
            // The dry run says migrating would be refused, and still applies nothing.
            let dryRun = try Self.run(["migrate", "--dry-run"], database: database)
            #expect(dryRun.status == 1, "\(dryRun.output)")
            #expect(dryRun.output.contains("would apply \(lastLabel)"))
            #expect(dryRun.output.contains("refused=2"))
            try await TestDatabase.withPool(database) { pool in
                let pending = try await pool.query(
                    "SELECT count(*) FROM schema_migrations WHERE version = \(last.version)"
                ).first(as: Int.self)
                #expect(pending == 0)
            }
        }
    }
}
