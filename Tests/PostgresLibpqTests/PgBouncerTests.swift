import Foundation
import PostgresTestSupport
import Testing

@testable import PostgresLibpq

private let pgBouncerURL = ProcessInfo.processInfo.environment["PGBOUNCER_URL"].flatMap { $0.isEmpty ? nil : $0 }

/// The client behind a real PgBouncer in transaction pooling. `scripts/pgbouncer-check.sh` sets `PGBOUNCER_URL` to a
/// PgBouncer database with `pool_size = 1`: every client connection shares one server connection, as two client
/// connections sooner or later do behind any transaction pooler.
@Suite(.enabled(if: pgBouncerURL != nil, "PGBOUNCER_URL is not set (scripts/pgbouncer-check.sh sets it)"))
struct PgBouncerTests {
    static var url: String? { pgBouncerURL }

    static func configuration(preparedStatements: Bool) throws -> PostgresConfiguration {
        var configuration = try PostgresConfiguration(url: url ?? "")
        configuration.connectTimeoutSeconds = 10
        if !preparedStatements { configuration.preparedStatementCacheSize = 0 }
        return configuration
    }

    /// One transaction of two statements with parameters on a pool of one client connection.
    static func transaction(_ pool: PostgresPool, _ number: Int) async throws -> Int {
        try await pool.withTransaction { connection in
            let sum = try await connection.query("SELECT \(number)::int8 + \(1)::int8").first(as: Int.self) ?? 0
            return try await connection.query("SELECT \(sum)::int8 * \(2)::int8").first(as: Int.self) ?? 0
        }
    }

    @Test func namedPreparedStatementsCollideOnTheSharedServerConnection() async throws {
        let configuration = try Self.configuration(preparedStatements: true)
        try await TestDatabase.withPool(configuration, maximumConnections: 1) { first in
            #expect(try await Self.transaction(first, 1) == 4)
            // A second client connection prepares its first statement under the same name, on the server connection
            // where the first one's still exists: 42P05 (or, had it been sent elsewhere, 26000 on use).
            try await TestDatabase.withPool(configuration, maximumConnections: 1) { second in
                let error = try await #require(throws: PostgresError.self) {
                    _ = try await Self.transaction(second, 2)
                }
                #expect(["42P05", "26000"].contains(error.sqlState ?? ""), "\(error)")
            }
        }
    }

    @Test func unnamedStatementsWorkBehindTransactionPooling() async throws {
        let configuration = try Self.configuration(preparedStatements: false)
        try await TestDatabase.withPool(configuration, maximumConnections: 1) { first in
            #expect(try await Self.transaction(first, 1) == 4)
            let second = try await TestDatabase.withPool(configuration, maximumConnections: 1) { second in
                try await Self.transaction(second, 2)
            }
            #expect(second == 6)
        }
        // And many client connections at once, each running transactions, through the one server connection.
        try await TestDatabase.withPool(configuration, minimumConnections: 4, maximumConnections: 4) { pool in
            try await withThrowingTaskGroup(of: Int.self) { group in
                for task in 0..<4 {
                    group.addTask {
                        var total = 0
                        for step in 0..<25 { total += try await Self.transaction(pool, task * 100 + step) }
                        return total
                    }
                }
                var total = 0
                for try await part in group { total += part }
                // Σ over tasks and steps of 2 × (task*100 + step + 1).
                #expect(total == 2 * (25 * 100 * (0 + 1 + 2 + 3) + 4 * (24 * 25 / 2) + 100))
            }
        }
    }
}
