import Crypto
import Foundation
import Logging

/// One numbered SQL migration (`Migrations/0001_initial.sql`).
public struct Migration: Sendable, Equatable {
    public let version: Int
    public let name: String
    public let sql: String
    /// SHA-256 of the file's bytes, lowercase hex.
    public let checksum: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
        self.checksum = SHA256.hash(data: Data(sql.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Reads every `NNNN_name.sql` file of a folder, ordered by number. Other files are ignored;
    /// a malformed `.sql` name or a number used twice is an error.
    public static func load(from directory: URL) throws -> [Migration] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        var migrations: [Migration] = []
        // `schema.sql` beside the migrations is the schema they produce, kept for reading; it is never applied.
        for file in names where file.hasSuffix(".sql") && file != "schema.sql" {
            let stem = file.dropLast(4)
            guard let underscore = stem.firstIndex(of: "_"), let version = Int(stem[..<underscore]), version > 0,
                stem[..<underscore].allSatisfy(\.isASCII)
            else {
                throw MigrationError.badFileName(file)
            }
            let sql = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            migrations.append(
                Migration(version: version, name: String(stem[stem.index(after: underscore)...]), sql: sql))
        }
        migrations.sort { $0.version < $1.version }
        for (previous, next) in zip(migrations, migrations.dropFirst()) where previous.version == next.version {
            throw MigrationError.duplicateVersion(next.version)
        }
        return migrations
    }
}

/// One migration as `Migrator.status()` finds it.
public struct MigrationStatus: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        /// Applied, with the file's checksum.
        case applied
        /// Not applied yet: `migrate()` would apply it.
        case pending
        /// Applied, but the file changed since (`migrate()` refuses to run).
        case changed(appliedChecksum: String)
        /// Applied in the database, unknown to this build (a newer build migrated it; `migrate()` refuses to run).
        case unknown
    }

    public let version: Int
    public let name: String
    /// The file's checksum; for an unknown migration the one recorded when it was applied.
    public let checksum: String
    public let state: State

    /// Whether `migrate()` would refuse to run because of this migration.
    public var blocksMigration: Bool {
        switch state {
        case .applied, .pending: false
        case .changed, .unknown: true
        }
    }
}

public enum MigrationError: Error, Equatable, CustomStringConvertible {
    case badFileName(String)
    case duplicateVersion(Int)
    /// An applied migration's file changed since it was applied.
    case checksumMismatch(version: Int, name: String, applied: String, file: String)
    /// The database has a migration this build does not know (a newer build migrated it).
    case unknownAppliedMigration(version: Int, name: String)

    public var description: String {
        switch self {
        case .badFileName(let file): "migration file \(file) is not named NNNN_name.sql"
        case .duplicateVersion(let version): "two migration files have number \(version)"
        case .checksumMismatch(let version, let name, let applied, let file):
            "migration \(version)_\(name) was changed after it was applied (applied checksum \(applied.prefix(12))…, file \(file.prefix(12))…); add a new migration instead of editing an applied one"
        case .unknownAppliedMigration(let version, let name):
            "the database has migration \(version)_\(name), which this build does not have; refusing to run an older build against a newer schema"
        }
    }
}

/// Applies migrations in order, each in its own transaction under a transaction-scoped PostgreSQL advisory lock, so
/// several instances starting together apply each migration exactly once, and a transaction-pooling proxy
/// (PgBouncer) in between is fine: no lock outlives its transaction. No statement timeout applies inside those
/// transactions, whatever the session's.
public struct Migrator: Sendable {
    /// The advisory lock key (an arbitrary constant: "smsmigr" in ASCII).
    public static let lockKey: Int64 = 0x736D_736D_6967_72
    let pool: PostgresPool
    let migrations: [Migration]
    let logger: Logger

    public init(pool: PostgresPool, migrations: [Migration], logger: Logger = Logger(label: "migrator")) {
        self.pool = pool
        self.migrations = migrations
        self.logger = logger
    }

    /// Applies what is pending and returns what this call applied; verifies checksums of what was applied before.
    ///
    /// Each step is one transaction that first takes the advisory lock (`pg_advisory_xact_lock`): creating the
    /// `schema_migrations` table and checking what it records, then each pending migration, which is applied only
    /// if, under the lock, it is still not recorded (another instance may have applied it meanwhile). Migrations are
    /// taken in version order, so they are applied in that order whoever applies them.
    @discardableResult
    public func migrate() async throws -> [Migration] {
        try await pool.withConnection { connection in
            try await connection.withTransaction { connection in
                try await Self.lock(connection)
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        version     integer PRIMARY KEY,
                        name        text NOT NULL,
                        checksum    text NOT NULL,
                        applied_at  timestamptz NOT NULL DEFAULT now(),
                        duration_ms integer NOT NULL
                    )
                    """)
                try verify(try await Self.readApplied(connection))
            }
            var done: [Migration] = []
            for migration in migrations {
                if try await apply(migration, on: connection) { done.append(migration) }
            }
            return done
        }
    }

    /// The first statements of each of the migrator's transactions: no statement timeout for the rest of it, then the
    /// advisory lock. The session's statement timeout (`DB_STATEMENT_TIMEOUT_MS`, meant for requests) would otherwise
    /// cut short a migration that takes longer, such as one that copies a large table, and the wait for the lock while
    /// another instance applies one; the service would not start. `SET LOCAL` ends with the transaction, so a
    /// connection handed back to the pool, or to a transaction-pooling proxy, keeps its own setting.
    private static func lock(_ connection: PostgresConnection) async throws {
        try await connection.execute(
            script: "SET LOCAL statement_timeout = 0; SELECT pg_advisory_xact_lock(\(lockKey))")
    }

    /// The migrations already recorded in the database, by version.
    public func appliedMigrations() async throws -> [Int: (name: String, checksum: String)] {
        try await pool.withConnection { try await Self.readApplied($0) }
    }

    /// Each migration of this build and of the database, in version order, compared: what `migrate()` would do,
    /// read without the lock and without applying anything (`sms-reseller migrate --dry-run` and `migrate status`).
    public func status() async throws -> [MigrationStatus] {
        let applied = try await appliedMigrations()
        var result: [MigrationStatus] = []
        for migration in migrations {
            let state: MigrationStatus.State
            if let record = applied[migration.version] {
                state = record.checksum == migration.checksum ? .applied : .changed(appliedChecksum: record.checksum)
            } else {
                state = .pending
            }
            result.append(
                MigrationStatus(
                    version: migration.version, name: migration.name, checksum: migration.checksum, state: state))
        }
        let known = Set(migrations.map(\.version))
        for (version, record) in applied where !known.contains(version) {
            result.append(
                MigrationStatus(version: version, name: record.name, checksum: record.checksum, state: .unknown))
        }
        return result.sorted { $0.version < $1.version }
    }

    /// Refuses an applied migration whose file changed, and one this build does not know.
    private func verify(_ applied: [Int: (name: String, checksum: String)]) throws {
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for (version, record) in applied.sorted(by: { $0.key < $1.key }) {
            guard let migration = known[version] else {
                throw MigrationError.unknownAppliedMigration(version: version, name: record.name)
            }
            guard migration.checksum == record.checksum else {
                throw MigrationError.checksumMismatch(
                    version: version, name: migration.name, applied: record.checksum, file: migration.checksum)
            }
        }
    }

    /// Applies `migration` in one transaction under the lock, unless it is recorded already (then its checksum is
    /// checked); returns whether this call applied it.
    private func apply(_ migration: Migration, on connection: PostgresConnection) async throws -> Bool {
        let started = ContinuousClock.now
        let applied = try await connection.withTransaction { connection in
            try await Self.lock(connection)
            if let checksum = try await connection.query(
                "SELECT checksum FROM schema_migrations WHERE version = \(migration.version)"
            ).first(as: String.self) {
                guard checksum == migration.checksum else {
                    throw MigrationError.checksumMismatch(
                        version: migration.version, name: migration.name, applied: checksum,
                        file: migration.checksum)
                }
                return false
            }
            try await connection.execute(script: migration.sql)
            let elapsed = ContinuousClock.now - started
            let milliseconds = Int(
                elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
            try await connection.query(
                """
                INSERT INTO schema_migrations (version, name, checksum, duration_ms)
                VALUES (\(migration.version), \(migration.name), \(migration.checksum), \(milliseconds))
                """)
            return true
        }
        if applied {
            logger.info(
                "applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
        }
        return applied
    }

    private static func readApplied(_ connection: PostgresConnection) async throws -> [Int: (
        name: String, checksum: String
    )] {
        let exists =
            try await connection.query("SELECT to_regclass('schema_migrations') IS NOT NULL").first(as: Bool.self)
            ?? false
        guard exists else { return [:] }
        let rows = try await connection.query("SELECT version, name, checksum FROM schema_migrations").decode(
            (Int, String, String).self)
        var applied: [Int: (name: String, checksum: String)] = [:]
        for (version, name, checksum) in rows { applied[version] = (name, checksum) }
        return applied
    }
}
