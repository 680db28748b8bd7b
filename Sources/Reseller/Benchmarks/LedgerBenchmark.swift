import Foundation
import Logging
import PostgresLibpq

/// Ledger throughput: single-phase transfers, each its own transaction through
/// `ledger_apply_transfers`, from one hot sub-account or spread over many, at a given concurrency.
/// `scripts/bench-ledger.sh` runs it next to `pgbench`'s tpcb-like script on the same server.
public enum LedgerBenchmark {
    public enum Scenario: String, Sendable, CaseIterable {
        /// Every transfer debits the same sub-account wallet (one row lock for all).
        case hot
        /// Transfers debit one of `accounts` sub-account wallets at random.
        case spread
    }

    public struct Result: Sendable {
        public var transfers: Int
        public var seconds: Double
        public var rate: Double { Double(transfers) / seconds }
    }

    /// Migrates the database and opens one reseller with `accounts` funded sub-accounts (once per database).
    public static func prepare(pool: PostgresPool, accounts: Int, logger: Logger) async throws {
        _ = try await Migrator(pool: pool, migrations: try BundledMigrations.load(), logger: logger).migrate()
        let existing = try await pool.query("SELECT count(*) FROM sub_account").first(as: Int.self) ?? 0
        guard existing < accounts else { return }
        try await pool.withTransaction { connection in
            let reseller = try await connection.query("INSERT INTO reseller (name) VALUES ('bench') RETURNING id").first(as: UUID.self)!
            try await connection.query("""
                INSERT INTO sub_account (reseller_id, name, username, password_salt, password_iterations, password_hash)
                SELECT \(reseller), 'bench ' || n, 'bench-' || n, '\\x00', 1, '\\x00' FROM generate_series(1, \(accounts)) n
                """)
            let issuance = try await LedgerRepository.account(kind: .resellerIssuance, resellerID: reseller, subAccountID: nil, on: connection)!
            let wallets = try await connection.query("SELECT id FROM ledger_account WHERE kind = 'sub_account_wallet'").decode(UUID.self)
            _ = try await LedgerRepository.apply(
                wallets.map { .posted(from: issuance.id, to: $0, amount: 100_000_000 * 10_000, code: "bench", by: "bench") }, linked: false,
                on: connection)
        }
    }

    /// Runs transfers for `duration` at `concurrency` tasks (the pool should have as many connections).
    public static func run(pool: PostgresPool, scenario: Scenario, concurrency: Int, duration: Duration) async throws -> Result {
        let wallets = try await pool.query("SELECT id FROM ledger_account WHERE kind = 'sub_account_wallet' ORDER BY id").decode(UUID.self)
        let revenue = try await pool.query("SELECT id FROM ledger_account WHERE kind = 'reseller_revenue' LIMIT 1").first(as: UUID.self)!
        let sources = scenario == .hot ? [wallets[0]] : wallets
        let started = ContinuousClock.now
        let deadline = started + duration
        let count = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var done = 0
                    while ContinuousClock.now < deadline {
                        let source = sources.randomElement()!
                        _ = try await LedgerRepository(pool: pool).apply([
                            .posted(from: source, to: revenue, amount: 725, code: "bench", by: "bench")
                        ])
                        done += 1
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = ContinuousClock.now - started
        return Result(transfers: count, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
}
