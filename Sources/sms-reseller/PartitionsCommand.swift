import ArgumentParser
import Foundation
import ResellerCore

struct Partitions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show, maintain and set the retention of the monthly partitions (docs/partitioning.md).",
        subcommands: [Status.self, Maintain.self, Retention.self],
        defaultSubcommand: Status.self)

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List each partitioned table's months, its default partition and its retention.",
            discussion: """
                One block per table: its retention, how many months are made ahead, the rows in its default \
                partition, then one line per month (UTC bounds, PostgreSQL's row estimate); then the tables the \
                retention moved to the `archive` schema. Exits 1 when a default partition holds rows (months are \
                missing: run `partitions maintain`, then see docs/partitioning.md), else 0.
                """)

        @OptionGroup var common: CommonOptions

        func run() async throws {
            let logger = try common.bootstrapLogging()
            let (sets, archived) = try await common.withDatabase(
                applicationName: "sms-reseller partitions", logger: logger
            ) { pool in
                let repository = PartitionRepository(pool: pool)
                return (try await repository.sets(), try await repository.archivedTables())
            }
            let day = Date.ISO8601FormatStyle(timeZone: .gmt).year().month().day()
            for set in sets {
                let retention =
                    set.retention.map { "older than \($0): \(set.disposal)" } ?? "none"
                print(
                    "\(set.table): \(set.partitions.count) months, \(set.premake) made ahead, default partition \(set.defaultRows) rows, retention \(retention)"
                )
                for partition in set.partitions {
                    let rows = partition.estimatedRows < 0 ? "not analyzed" : "~\(Int64(partition.estimatedRows)) rows"
                    print(
                        "  \(partition.name)  \(partition.from.formatted(day)) .. \(partition.to.formatted(day))  \(rows)"
                    )
                }
            }
            print("archived: \(archived.isEmpty ? "none" : archived.joined(separator: " "))")
            if sets.contains(where: { $0.defaultRows > 0 }) { throw ExitCode(1) }
        }
    }

    struct Maintain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make the months that are due and apply the retention now (what the service does every hour).")

        @OptionGroup var common: CommonOptions

        func run() async throws {
            let logger = try common.bootstrapLogging()
            let result = try await common.withDatabase(applicationName: "sms-reseller partitions", logger: logger) {
                try await PartitionRepository(pool: $0).maintain()
            }
            print("made: \(result.made.isEmpty ? "none" : result.made.joined(separator: " "))")
            print("retired: \(result.removed.isEmpty ? "none" : result.removed.joined(separator: " "))")
        }
    }

    struct Retention: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Set how long a partitioned table's months are kept, and whether older ones are dropped or archived.",
            discussion: """
                `--keep '13 months'` keeps the months that hold rows younger than that; the next maintenance drops \
                older ones (`--dispose drop`) or detaches them into the `archive` schema (`--dispose archive`), where \
                they stay queryable until dumped and dropped. `--keep-all` keeps every month.
                """)

        @OptionGroup var common: CommonOptions

        @Argument(help: "The table: message_event or webhook_attempt.")
        var table: String

        @Option(help: "A PostgreSQL interval, e.g. '13 months' or '90 days'.")
        var keep: String?

        @Flag(help: "Keep every month (no retention).")
        var keepAll = false

        @Option(help: "What becomes of older months: drop or archive (default archive).")
        var dispose: String = RetentionDisposal.archive.rawValue

        func validate() throws {
            guard (keep != nil) != keepAll else { throw ValidationError("Give either --keep INTERVAL or --keep-all.") }
            guard RetentionDisposal(rawValue: dispose) != nil else {
                throw ValidationError("--dispose is drop or archive.")
            }
        }

        func run() async throws {
            let logger = try common.bootstrapLogging()
            let disposal = RetentionDisposal(rawValue: dispose) ?? .archive
            do {
                try await common.withDatabase(applicationName: "sms-reseller partitions", logger: logger) {
                    try await PartitionRepository(pool: $0).setRetention(table: table, keep: keep, disposal: disposal)
                }
            } catch let error as PartitionError {
                throw ValidationError(error.description)
            }
            print(
                keep.map { "\(table): months older than \($0) will be \(disposal == .drop ? "dropped" : "archived")" }
                    ?? "\(table): every month is kept")
        }
    }
}

extension PartitionSet {
    /// What the retention does with a month it retires.
    fileprivate var disposal: String {
        guard keepTable else { return "dropped" }
        return retentionSchema.map { "detached into schema \($0)" } ?? "detached"
    }
}
