import Foundation
import Logging
import PostgresLibpq

/// A database of its own for one test, created from `TEST_DATABASE_URL` and dropped afterwards.
///
/// `scripts/test.sh` starts a throwaway PostgreSQL cluster and sets `TEST_DATABASE_URL` to a
/// superuser connection on it. Without it, database tests fail with a message that says so.
public enum TestDatabase {
    public struct MissingConfiguration: Error, CustomStringConvertible {
        public var description: String {
            "TEST_DATABASE_URL is not set: run the suite with scripts/test.sh, which starts a throwaway PostgreSQL"
        }
    }

    /// The admin (superuser) connection settings of the test cluster.
    public static func adminConfiguration() throws -> PostgresConfiguration {
        guard let url = ProcessInfo.processInfo.environment["TEST_DATABASE_URL"], !url.isEmpty else {
            throw MissingConfiguration()
        }
        var configuration = try PostgresConfiguration(url: url)
        configuration.connectTimeoutSeconds = 10
        return configuration
    }

    /// Creates an empty database, runs `body` with its settings, then drops it (even on failure).
    public static func withFreshDatabase<Result>(
        _ body: (PostgresConfiguration) async throws -> Result
    ) async throws -> Result {
        let admin = try adminConfiguration()
        let name = "test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
        try await withPool(admin, maximumConnections: 1) { pool in
            try await pool.query(PostgresQuery(unescaped: "CREATE DATABASE \(name)"))
        }
        var configuration = admin
        configuration.set("dbname", to: String(name))
        do {
            let result = try await body(configuration)
            try await drop(name, admin: admin)
            return result
        } catch {
            try? await drop(name, admin: admin)
            throw error
        }
    }

    private static func drop(_ name: String, admin: PostgresConfiguration) async throws {
        try await withPool(admin, maximumConnections: 1) { pool in
            try await pool.query(PostgresQuery(unescaped: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"))
        }
    }

    /// Runs a pool for the duration of `body`, then shuts it down.
    @discardableResult
    public static func withPool<Result>(
        _ configuration: PostgresConfiguration,
        minimumConnections: Int = 0,
        maximumConnections: Int = 4,
        acquireTimeout: Duration = .seconds(10),
        _ body: (PostgresPool) async throws -> Result
    ) async throws -> Result {
        var poolConfiguration = PostgresPoolConfiguration(
            minimumConnections: minimumConnections, maximumConnections: maximumConnections)
        poolConfiguration.acquireTimeout = acquireTimeout
        var logger = Logger(label: "test.postgres")
        logger.logLevel =
            ProcessInfo.processInfo.environment["TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        let pool = PostgresPool(configuration: configuration, poolConfiguration: poolConfiguration, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pool.run() }
            do {
                let result = try await body(pool)
                group.cancelAll()
                try await group.waitForAll()
                return result
            } catch {
                group.cancelAll()
                try? await group.waitForAll()
                throw error
            }
        }
    }
}
