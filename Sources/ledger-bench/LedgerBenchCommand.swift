import ArgumentParser
import Foundation
import Logging
import PostgresLibpq

/// Prints ledger transfers per second for one scenario and concurrency; see scripts/bench-ledger.sh.
@main
struct LedgerBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger-bench",
        abstract: "Single-phase ledger transfers per second, from one hot account or spread over many.")

    @Option(help: "libpq URL of a scratch database (it is migrated and filled on first use).")
    var databaseURL: String

    @Option(help: "hot or spread.")
    var scenario: String = "hot"

    @Option(help: "Concurrent tasks, and pool size.")
    var concurrency = 8

    @Option(help: "Sub-accounts for the spread scenario.")
    var accounts = 1_000

    @Option(help: "Seconds to measure (after one second of warm-up).")
    var seconds = 10

    func run() async throws {
        guard let scenario = LedgerBenchmark.Scenario(rawValue: scenario) else {
            throw ValidationError("scenario must be hot or spread")
        }
        var logger = Logger(label: "ledger-bench")
        logger.logLevel = .warning
        var database = try PostgresConfiguration(url: databaseURL)
        database.applicationName = "ledger-bench"
        let pool = PostgresPool(
            configuration: database,
            poolConfiguration: .init(minimumConnections: concurrency, maximumConnections: concurrency), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pool.run() }
            defer { group.cancelAll() }
            try await LedgerBenchmark.prepare(pool: pool, accounts: accounts, logger: logger)
            _ = try await LedgerBenchmark.run(
                pool: pool, scenario: scenario, concurrency: concurrency, duration: .seconds(1))
            let result = try await LedgerBenchmark.run(
                pool: pool, scenario: scenario, concurrency: concurrency, duration: .seconds(seconds))
            print(
                "ledger-bench: scenario=\(scenario.rawValue) concurrency=\(concurrency) transfers=\(result.transfers) tps=\(String(format: "%.0f", result.rate))"
            )
        }
    }
}
