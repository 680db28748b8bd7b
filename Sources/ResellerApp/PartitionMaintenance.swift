import Logging
import PostgresLibpq
import ResellerCore
import ServiceLifecycle

/// Keeps the monthly partitions made ahead and applies their retention (docs/partitioning.md): pg_partman's
/// `run_maintenance`, a minute after the start (`initialDelay`: out of the way of the migrations and of the start's
/// own work; months are made three ahead, nothing is urgent) and then every `interval`. Runs beside the ledger upkeep;
/// several instances may run it, pg_partman lets one at a time do the work. A failed round (a lock not granted within the timeout, a database
/// outage) is logged and tried again at the next: with three months made ahead, a day of failures costs nothing, and
/// the `partition_made_ahead_seconds` alert fires long before rows could reach the default partition.
struct PartitionMaintenance: Service {
    let repository: PartitionRepository
    let initialDelay: Duration
    let interval: Duration
    let logger: Logger

    init(pool: PostgresPool, initialDelay: Duration = .seconds(60), interval: Duration = .seconds(3600), logger: Logger)
    {
        self.repository = PartitionRepository(pool: pool)
        self.initialDelay = initialDelay
        self.interval = interval
        self.logger = logger
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            try? await Task.sleep(for: initialDelay)
            while !Task.isCancelled {
                await runOnce()
                try? await Task.sleep(for: interval)
            }
        }
    }

    func runOnce() async {
        do {
            let result = try await repository.maintain()
            if !result.made.isEmpty || !result.removed.isEmpty {
                logger.info(
                    "partition maintenance",
                    metadata: ["made": "\(result.made)", "retired": "\(result.removed)"])
            }
        } catch let error as PostgresError where ["42P01", "3F000"].contains(error.sqlState) {
            // undefined_table, invalid_schema_name: `serve --migrate` is still applying the schema.
            logger.debug("partition maintenance waits for the schema", metadata: ["error": "\(error)"])
        } catch {
            if Task.isCancelled || error is CancellationError { return }
            logger.warning("partition maintenance failed", metadata: ["error": "\(error)"])
        }
    }
}
