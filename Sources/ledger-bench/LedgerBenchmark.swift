import Foundation
import Ledger
import Logging
import PostgresLibpq
import ResellerCore

/// Ledger throughput: single-phase transfers, each its own transaction through
/// `ledger_apply_transfers`, from one hot sub-account or spread over many, at a given concurrency.
/// `scripts/bench-ledger.sh` runs it next to `pgbench`'s tpcb-like script on the same server.
public enum LedgerBenchmark {
    public enum Scenario: String, Sendable, CaseIterable {
        /// Every transfer debits the same sub-account wallet (one row lock for all).
        case hot
        /// Transfers debit one of `accounts` sub-account wallets at random, spread over 100 resellers (each
        /// transfer credits its own reseller's revenue account, as a send's retail leg does).
        case spread
    }

    public struct Result: Sendable {
        public var transfers: Int
        public var seconds: Double
        public var rate: Double { Double(transfers) / seconds }
    }

    /// Resellers the sub-accounts are spread over.
    static let resellers = 100

    /// Migrates the database and opens `resellers` resellers with `accounts` funded sub-accounts in all (once per database).
    public static func prepare(pool: PostgresPool, accounts: Int, logger: Logger) async throws {
        _ = try await Migrator(pool: pool, migrations: try BundledMigrations.load(), logger: logger).migrate()
        let existing = try await pool.query("SELECT count(*) FROM sub_account").first(as: Int.self) ?? 0
        guard existing < accounts else { return }
        try await pool.withTransaction { connection in
            try await connection.query(
                "INSERT INTO reseller (name) SELECT 'bench ' || n FROM generate_series(1, \(resellers)) n")
            try await connection.query(
                """
                INSERT INTO sub_account (reseller_id, name, username, password_salt, password_iterations, password_hash)
                SELECT r.id, 'bench ' || n, 'bench-' || n, '\\x00', 1, '\\x00'
                FROM generate_series(1, \(accounts)) n
                JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS slot FROM reseller) r ON r.slot = n % \(resellers)
                """)
            let pairs = try await connection.query(
                """
                SELECT i.id, w.id FROM ledger_account w
                JOIN ledger_account i ON i.kind = 'reseller_issuance' AND i.reseller_id = w.reseller_id
                WHERE w.kind = 'sub_account_wallet'
                """
            ).decode((UUID, UUID).self)
            _ = try await LedgerRepository.apply(
                pairs.map { .posted(from: $0.0, to: $0.1, amount: 100_000_000 * 10_000, code: "bench", by: "bench") },
                linked: false,
                on: connection)
        }
    }

    /// Runs transfers for `duration` at `concurrency` tasks (the pool should have as many connections).
    public static func run(pool: PostgresPool, scenario: Scenario, concurrency: Int, duration: Duration) async throws
        -> Result
    {
        // Each sub-account's wallet with its own reseller's revenue account.
        let pairs = try await pool.query(
            """
            SELECT w.id, r.id FROM ledger_account w
            JOIN ledger_account r ON r.kind = 'reseller_revenue' AND r.reseller_id = w.reseller_id
            WHERE w.kind = 'sub_account_wallet' ORDER BY w.id
            """
        ).decode((UUID, UUID).self)
        let sources = scenario == .hot ? [pairs[0]] : pairs
        let started = ContinuousClock.now
        let deadline = started + duration
        let count = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var done = 0
                    while ContinuousClock.now < deadline {
                        let (wallet, revenue) = sources.randomElement()!
                        _ = try await LedgerRepository(pool: pool).apply([
                            .posted(from: wallet, to: revenue, amount: 725, code: "bench", by: "bench")
                        ])
                        done += 1
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = ContinuousClock.now - started
        return Result(
            transfers: count,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
}
