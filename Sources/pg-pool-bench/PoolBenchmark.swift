import ArgumentParser
import Foundation
import Logging
import PostgresLibpq

/// Indexed single-row SELECTs through our pool, the same work `pgbench -S` does, for a
/// fixed time at a fixed concurrency. Prints transactions per second. `scripts/bench-db.sh`
/// runs it next to `pgbench -S` on the same server and prints the ratio.
@main
struct PoolBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pg-pool-bench",
        abstract:
            "pgbench -S's workload (SELECT abalance FROM pgbench_accounts WHERE aid = $1) through PostgresLibpq's pool."
    )

    @Option(help: "libpq URL of a database initialised by `pgbench -i` (env: DATABASE_URL).")
    var databaseURL: String?

    @Option(help: "Concurrent tasks, and pool size.")
    var concurrency = 8

    @Option(help: "Seconds to measure (after one second of warm-up).")
    var seconds = 10

    func run() async throws {
        guard let url = databaseURL ?? ProcessInfo.processInfo.environment["DATABASE_URL"] else {
            throw ValidationError("pass --database-url or set DATABASE_URL")
        }
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        var database = try PostgresConfiguration(url: url)
        database.applicationName = "pg-pool-bench"
        let pool = PostgresPool(
            configuration: database,
            poolConfiguration: .init(minimumConnections: concurrency, maximumConnections: concurrency),
            logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pool.run() }
            defer { group.cancelAll() }

            let scale = try await pool.query("SELECT count(*) FROM pgbench_branches").first(as: Int.self) ?? 0
            guard scale > 0 else { throw ValidationError("pgbench_branches is empty: run pgbench -i first") }
            let accounts = scale * 100_000

            _ = try await measure(pool: pool, accounts: accounts, for: .seconds(1))  // warm-up: connections, caches
            let (count, elapsed) = try await measure(pool: pool, accounts: accounts, for: .seconds(seconds))
            let rate =
                Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            print(
                "pg-pool-bench: concurrency=\(concurrency) seconds=\(seconds) queries=\(count) tps=\(String(format: "%.0f", rate))"
            )
        }
    }

    /// Runs `concurrency` loops of single-row SELECTs until `duration` has passed; returns the count and the time taken.
    func measure(pool: PostgresPool, accounts: Int, for duration: Duration) async throws -> (Int, Duration) {
        let started = ContinuousClock.now
        let deadline = started + duration
        let count = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var done = 0
                    // A cheap generator like pgbench's own, so randomness costs no system call.
                    var generator = SplitMix64(seed: UInt64.random(in: 1...UInt64.max))
                    while ContinuousClock.now < deadline {
                        let aid = Int.random(in: 1...accounts, using: &generator)
                        let balance = try await pool.query("SELECT abalance FROM pgbench_accounts WHERE aid = \(aid)")
                            .first(as: Int.self)
                        precondition(balance != nil, "account \(aid) missing")
                        done += 1
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
        return (count, ContinuousClock.now - started)
    }
}

/// SplitMix64: fast, statistically fine for picking benchmark keys.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
