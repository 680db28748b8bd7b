import Foundation
import PostgresLibpq

/// One table partitioned by month and managed by pg_partman (docs/partitioning.md), as the catalog shows it.
package struct PartitionSet: Sendable, Equatable {
    /// One month: `[from, to)` in UTC.
    package struct Partition: Sendable, Equatable {
        package var name: String
        package var from: Date
        package var to: Date
        /// PostgreSQL's estimate (`pg_class.reltuples`; -1 before the first ANALYZE).
        package var estimatedRows: Double
    }

    /// `public.message_event`.
    package var table: String
    package var partitions: [Partition]
    /// Rows in the default partition, which catches rows no month takes (none when maintenance keeps up).
    package var defaultRows: Int64
    /// What the retention keeps (a PostgreSQL interval, e.g. `3 mons`); nil: every month is kept.
    package var retention: String?
    /// Where detached months go (`archive`) when `keepTable`; nil with `keepTable`: detached in place.
    package var retentionSchema: String?
    /// The retention detaches a month (kept as a table) instead of dropping it.
    package var keepTable: Bool
    /// Months ahead of the current one that maintenance keeps made.
    package var premake: Int

    /// The end of the last month made.
    package var madeUntil: Date? { partitions.map(\.to).max() }
}

/// Whether a month the retention lets go is dropped or kept as a table in the `archive` schema.
package enum RetentionDisposal: String, Sendable, CaseIterable {
    case drop
    case archive
}

/// Reads and runs pg_partman's upkeep of the monthly partitions, and sets their retention.
///
/// Maintenance runs with `timezone = 'UTC'`: pg_partman cuts months in the session's zone, and the migration cut them
/// in UTC; another zone would compute months overlapping the ones that exist.
package struct PartitionRepository: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    /// What maintenance changed: the months it made and the ones it dropped or detached.
    package struct MaintenanceResult: Sendable, Equatable {
        package var made: [String]
        package var removed: [String]
    }

    /// Every partitioned table pg_partman manages, its months in order.
    package func sets() async throws -> [PartitionSet] {
        try await pool.withConnection { try await Self.sets(on: $0, exactDefaultCount: true) }
    }

    /// Makes the months that are due and applies the retention, as `partman.run_maintenance` does for every table
    /// whose automatic maintenance is on. Several instances may call it at once: pg_partman takes an advisory lock
    /// and the second call does nothing. `lockTimeout` bounds the wait for the brief exclusive lock that attaching or
    /// detaching a month takes on the table, so that the upkeep never queues the traffic behind a long transaction;
    /// a timeout throws and the next round tries again.
    package func maintain(lockTimeout: Duration = .seconds(5)) async throws -> MaintenanceResult {
        try await pool.withTransaction { connection in
            let before = Set(try await Self.sets(on: connection).flatMap { $0.partitions.map(\.name) })
            try await connection.query(
                """
                SELECT set_config('timezone', 'UTC', true),
                       set_config('lock_timeout', \(String(lockTimeout.components.seconds * 1000)), true)
                """)
            try await connection.query("SELECT partman.run_maintenance(p_jobmon := false)")
            let after = Set(try await Self.sets(on: connection).flatMap { $0.partitions.map(\.name) })
            return MaintenanceResult(
                made: after.subtracting(before).sorted(), removed: before.subtracting(after).sorted())
        }
    }

    /// The tables the retention detached into the `archive` schema, by name.
    package func archivedTables() async throws -> [String] {
        try await pool.query(
            "SELECT 'archive.' || tablename FROM pg_tables WHERE schemaname = 'archive' ORDER BY tablename"
        ).decode(String.self)
    }

    /// Sets how long `table`'s months are kept (`keep`, a PostgreSQL interval such as `13 months`; nil keeps them
    /// all) and what becomes of older ones. Throws ``PartitionError/unknownTable(_:)`` for a table pg_partman does
    /// not manage and ``PartitionError/invalidInterval(_:)`` for an interval PostgreSQL does not read or that is not
    /// positive.
    package func setRetention(table: String, keep: String?, disposal: RetentionDisposal) async throws {
        let parent = table.contains(".") ? table : "public." + table
        try await pool.withTransaction { connection in
            if let keep {
                let positive: Bool?
                do {
                    positive = try await connection.query("SELECT \(keep)::interval > interval '0'").first(
                        as: Bool.self)
                } catch let error as PostgresError where error.sqlState?.hasPrefix("22") == true {
                    throw PartitionError.invalidInterval(keep)
                }
                guard positive == true else { throw PartitionError.invalidInterval(keep) }
            }
            let updated = try await connection.query(
                """
                UPDATE partman.part_config
                SET retention = \(keep), retention_keep_table = \(disposal == .archive),
                    retention_schema = CASE WHEN \(disposal == .archive) THEN 'archive' END
                WHERE parent_table = \(parent)
                RETURNING 1
                """
            ).first(as: Int.self)
            guard updated != nil else { throw PartitionError.unknownTable(table) }
        }
    }

    /// The months of every managed table, read from the catalog: each month's bounds are its partition bound (a
    /// timestamp with its offset, whatever the session's zone), not its name. The default partition's rows are
    /// counted exactly, or (`exactDefaultCount` false, for each metrics scrape) as 1 when there is any.
    package static func sets(on connection: PostgresConnection, exactDefaultCount: Bool = false) async throws
        -> [PartitionSet]
    {
        let rows = try await connection.query(
            """
            SELECT c.parent_table, c.retention, c.retention_schema, c.retention_keep_table, c.premake,
                   n.nspname || '.' || k.relname,
                   substring(pg_get_expr(k.relpartbound, k.oid) FROM 'FROM \\(''([^'']*)''\\)')::timestamptz,
                   substring(pg_get_expr(k.relpartbound, k.oid) FROM 'TO \\(''([^'']*)''\\)')::timestamptz,
                   k.reltuples::float8
            FROM partman.part_config c
            LEFT JOIN pg_inherits h ON h.inhparent = c.parent_table::regclass
            LEFT JOIN pg_class k ON k.oid = h.inhrelid
            LEFT JOIN pg_namespace n ON n.oid = k.relnamespace
            ORDER BY 1, 7 NULLS FIRST
            """
        ).decode((String, String?, String?, Bool, Int, String?, Date?, Date?, Double?).self)
        let defaults = Dictionary(
            try await connection.query("SELECT default_table, count FROM partman.check_default(\(exactDefaultCount))")
                .decode((String, Int64).self),
            uniquingKeysWith: +)
        var sets: [PartitionSet] = []
        for (table, retention, schema, keepTable, premake, child, from, to, estimate) in rows {
            if sets.last?.table != table {
                sets.append(
                    PartitionSet(
                        table: table, partitions: [], defaultRows: defaults[table + "_default"] ?? 0,
                        retention: retention, retentionSchema: schema, keepTable: keepTable, premake: premake))
            }
            // The default partition has no bounds.
            if let child, let from, let to {
                sets[sets.count - 1].partitions.append(
                    .init(name: child, from: from, to: to, estimatedRows: estimate ?? -1))
            }
        }
        return sets
    }
}

package enum PartitionError: Error, Equatable, CustomStringConvertible {
    case unknownTable(String)
    case invalidInterval(String)

    package var description: String {
        switch self {
        case .unknownTable(let table): "\(table) is not a table partitioned by pg_partman here"
        case .invalidInterval(let value): "'\(value)' is not a positive PostgreSQL interval (e.g. '13 months')"
        }
    }
}
