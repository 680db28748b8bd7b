import Foundation
import HTTPTypes
import Logging
import PostgresLibpq
import PostgresTestSupport
import ResellerApp
import ResellerCore
import Testing

/// The monthly partitions of `message_event` and `webhook_attempt` (docs/partitioning.md), on real PostgreSQL with
/// pg_partman: what the migration makes, what maintenance adds and retires, what the metrics show. The month rollover
/// itself, with the clock crossing midnight under a running service, is `scripts/partition-rollover.sh`. The app runs
/// without its upkeep here, so that only the tests' own calls maintain the partitions.
@Suite(.serialized, .timeLimit(.minutes(5))) struct PartitioningTests {
    /// The partition a row of `table` stored at `at` lands in (by inserting it and reading `tableoid`).
    static func partition(
        of table: String, at: String, _ pool: PostgresPool
    ) async throws -> String? {
        switch table {
        case "message_event":
            try await pool.query(
                """
                INSERT INTO message_event (reseller_id, message_id, status, occurred_at)
                VALUES (gen_random_uuid(), gen_random_uuid(), 'queued', \(at)::timestamptz)
                RETURNING tableoid::regclass::text
                """
            ).first(as: String.self)
        default:
            nil
        }
    }

    @Test func theMigrationMakesThisMonthAndThreeAheadAndTheMetricsShowThem() async throws {
        try await TenancyHarness.run(configure: { $0.ledgerMaintenance = false }) { api in
            let sets = try await PartitionRepository(pool: api.pool).sets()
            #expect(sets.map(\.table) == ["public.message_event", "public.webhook_attempt"])
            let now = Date()
            for set in sets {
                #expect(set.premake == 3)
                #expect(set.defaultRows == 0)
                // This month is made, and the three after it, each a month long and adjacent.
                let current = try #require(set.partitions.firstIndex { $0.from <= now && now < $0.to }, "\(set)")
                #expect(set.partitions.count - current == 4, "\(set.partitions.map(\.name))")
                for (earlier, later) in zip(set.partitions, set.partitions.dropFirst()) {
                    #expect(earlier.to == later.from)
                    let days = later.from.timeIntervalSince(earlier.from) / 86_400
                    #expect(days >= 28 && days <= 31, "\(earlier.name): \(days) days")
                }
            }
            #expect(sets[0].retention == nil)
            #expect(sets[1].retention == "90 days" && !sets[1].keepTable)

            // The send path writes neither table (what the dispatcher and the reports write comes later): its
            // speed cannot depend on them.
            let tenant = try await api.sendingTenant("Partitions").tenant
            let sent = try await api.send(
                tenant, ["sender": "Jansen", "text": "Hi", "recipients": ["31612345671", "31612345672"]])
            try #require(sent.status == .created, "\(sent.json)")
            #expect(
                try await api.pool.query(
                    "SELECT (SELECT count(*) FROM message_event) + (SELECT count(*) FROM webhook_attempt)"
                ).first(as: Int64.self) == 0)

            // Rows go to their month, a row past the months made to the default partition.
            let month = sets[0].partitions[sets[0].partitions.count - 2]
            #expect(
                try await Self.partition(of: "message_event", at: "now()", api.pool)
                    == sets[0].partitions.first { $0.from <= now && now < $0.to }?.name.replacingOccurrences(
                        of: "public.", with: ""))
            #expect(
                try await Self.partition(
                    of: "message_event", at: month.from.formatted(.iso8601), api.pool)
                    == month.name.replacingOccurrences(of: "public.", with: ""))

            var text = try await OperationsMetricsTests.scrape(api)
            let labels = [("table", "public.message_event")]
            let ahead = try #require(
                OperationsMetricsTests.value(text, "partition_made_ahead_seconds", labels), "\(text)")
            #expect(ahead > 85 * 86_400 && ahead < 124 * 86_400, "\(ahead)")
            #expect(OperationsMetricsTests.value(text, "partition_default_rows", labels) == 0)
            #expect(
                OperationsMetricsTests.value(text, "partition_default_rows", [("table", "public.webhook_attempt")]) == 0
            )

            #expect(
                try await Self.partition(of: "message_event", at: "2099-01-01T00:00:00Z", api.pool)
                    == "message_event_default")
            text = try await OperationsMetricsTests.scrape(api)
            #expect(OperationsMetricsTests.value(text, "partition_default_rows", labels) == 1)
            #expect(try await PartitionRepository(pool: api.pool).sets()[0].defaultRows == 1)
        }
    }

    @Test func maintenanceMakesMissingMonthsAndTheRetentionArchivesOrDropsOldOnes() async throws {
        try await TenancyHarness.run(configure: { $0.ledgerMaintenance = false }) { api in
            let repository = PartitionRepository(pool: api.pool)
            var events = try await repository.sets()[0]

            // Time moved on (as if maintenance had not run for two months): the last two months are missing.
            let missing = events.partitions.suffix(2).map(\.name)
            for name in missing {
                try await api.pool.query(PostgresQuery(unescaped: "DROP TABLE \(name)"))
            }
            #expect(try await repository.sets()[0].partitions.count == events.partitions.count - 2)
            var result = try await repository.maintain()
            // In the second half of a month pg_partman also makes the month after (it counts from now).
            #expect(Array(result.made.prefix(missing.count)) == missing, "\(result)")
            #expect(result.made.count - missing.count <= 1, "\(result)")
            #expect(result.removed.isEmpty)
            let remade = try await repository.sets()[0].partitions
            #expect(
                remade.prefix(events.partitions.count).map { "\($0.name) \($0.from) \($0.to)" }
                    == events.partitions.map { "\($0.name) \($0.from) \($0.to)" })
            // Nothing is due: a second round changes nothing.
            result = try await repository.maintain()
            #expect(result.made.isEmpty && result.removed.isEmpty, "\(result)")

            // Three old months with a row each, and a row today.
            try await api.pool.query(
                """
                SELECT partman.create_partition_time('public.message_event', ARRAY[
                    date_trunc('month', now() - interval '16 months'), date_trunc('month', now() - interval '15 months'),
                    date_trunc('month', now() - interval '14 months')])
                """)
            let old = try await api.pool.query(
                """
                INSERT INTO message_event (reseller_id, message_id, status, occurred_at)
                SELECT gen_random_uuid(), gen_random_uuid(), 'queued', date_trunc('month', now() - m * interval '1 month')
                       + interval '3 days'
                FROM unnest(ARRAY[16, 15, 14]) m
                RETURNING tableoid::regclass::text
                """
            ).decode(String.self)
            #expect(old.count == 3 && !old.contains("message_event_default"), "\(old)")
            let today = try await Self.partition(of: "message_event", at: "now()", api.pool)
            events = try await repository.sets()[0]
            #expect(events.partitions.count == remade.count + 3, "\(events.partitions.map(\.name))")

            // Archive what is older than 15 months: the oldest month leaves the table for the archive schema, rows
            // and all.
            try await repository.setRetention(table: "message_event", keep: "15 months", disposal: .archive)
            let archiving = try await repository.sets()[0]
            #expect(
                archiving.retention == "15 months" && archiving.keepTable && archiving.retentionSchema == "archive")
            result = try await repository.maintain()
            #expect(result.removed == ["public." + old[0]], "\(result)")
            #expect(try await repository.archivedTables() == ["archive." + old[0]])
            #expect(
                try await api.pool.query(PostgresQuery(unescaped: "SELECT count(*)::bigint FROM archive.\(old[0])"))
                    .first(as: Int64.self) == 1)
            #expect(
                try await api.pool.query("SELECT count(*)::bigint FROM message_event").first(as: Int64.self) == 3)

            // Drop what is older than 14 months (rounded to whole months: a month goes when all of it is older).
            try await repository.setRetention(table: "message_event", keep: "14 months", disposal: .drop)
            let dropping = try await repository.sets()[0]
            #expect(!dropping.keepTable && dropping.retentionSchema == nil)
            result = try await repository.maintain()
            #expect(result.removed == ["public." + old[1]], "\(result)")
            #expect(try await repository.archivedTables() == ["archive." + old[0]])
            #expect(
                try await api.pool.query("SELECT to_regclass(\("public." + old[1]))::text").first(as: String?.self)
                    == .some(nil))
            let left = try await api.pool.query(
                "SELECT tableoid::regclass::text FROM message_event ORDER BY occurred_at"
            ).decode(String.self)
            #expect(left == [old[2], try #require(today)], "\(left)")

            // Keeping everything again stops the retention.
            try await repository.setRetention(table: "message_event", keep: nil, disposal: .archive)
            #expect(try await repository.maintain().removed.isEmpty)
            #expect(try await repository.sets()[0].retention == nil)

            // Refusals change nothing.
            await #expect(throws: PartitionError.unknownTable("message")) {
                try await repository.setRetention(table: "message", keep: "1 year", disposal: .drop)
            }
            for bad in ["bogus", "-1 month", "0 days"] {
                await #expect(throws: PartitionError.invalidInterval(bad)) {
                    try await repository.setRetention(table: "message_event", keep: bad, disposal: .drop)
                }
            }
            #expect(try await repository.sets()[0].retention == nil)
        }
    }

    @Test func theMigrationMovesExistingRowsIntoTheirMonthsAndKeepsTheKeysAndReferences() async throws {
        try await TestDatabase.withFreshDatabase { database in
            try await TestDatabase.withPool(database) { pool in
                let all = try BundledMigrations.load()
                let partitioning = try #require(all.firstIndex { $0.name == "time_partitions" })
                let logger = Logger(label: "test.migrator")
                try await Migrator(pool: pool, migrations: Array(all[..<partitioning]), logger: logger).migrate()

                // Rows written by the previous release: events over three months, one webhook attempt.
                try await pool.query(
                    """
                    INSERT INTO message_event (reseller_id, message_id, status, occurred_at)
                    SELECT gen_random_uuid(), gen_random_uuid(), 'queued',
                           date_trunc('month', now()) - interval '70 days' + d * interval '1 day'
                    FROM generate_series(0, 69) d
                    """)
                let delivery = try #require(
                    try await pool.query(
                        """
                        WITH event AS (
                            INSERT INTO webhook_event (type, reseller_id, payload) VALUES ('upstream.credit_low', NULL, '{}')
                            RETURNING id
                        )
                        INSERT INTO webhook_delivery (event_id, url, message_id)
                        SELECT id, 'https://example.test/', gen_random_uuid() FROM event RETURNING id
                        """
                    ).first(as: UUID.self))
                try await pool.query(
                    """
                    INSERT INTO webhook_attempt (delivery_id, attempt, attempted_at, status_code, latency_ms)
                    VALUES (\(delivery), 1, now() - interval '40 days', 500, 12)
                    """)
                let before = try await pool.query(
                    "SELECT message_id, seq, occurred_at FROM message_event ORDER BY seq"
                ).decode((UUID, Int64, Date).self)

                try await Migrator(pool: pool, migrations: all, logger: logger).migrate()

                // Every row kept with its key, each in the partition of its month; none in the default.
                let after = try await pool.query(
                    """
                    SELECT message_id, seq, occurred_at,
                           tableoid::regclass::text = 'message_event_p' || to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY_MM')
                    FROM message_event ORDER BY seq
                    """
                ).decode((UUID, Int64, Date, Bool).self)
                #expect(after.map { "\($0.0) \($0.1) \($0.2)" } == before.map { "\($0.0) \($0.1) \($0.2)" })
                #expect(after.allSatisfy { $0.3 })
                let months = try await PartitionRepository(pool: pool).sets()[0].partitions
                #expect(months.count == 3 + 4, "\(months.map(\.name))")
                // The identity goes on after the copied rows.
                let next = try await Self.partition(of: "message_event", at: "now()", pool)
                #expect(next != nil)
                #expect(
                    try await pool.query("SELECT max(seq) FROM message_event").first(as: Int64.self)
                        == (before.last?.1 ?? 0) + 1)

                // The attempt moved, and the foreign key to its delivery holds: unknown deliveries are refused, and
                // deleting the delivery deletes its attempts.
                #expect(
                    try await pool.query("SELECT count(*)::bigint FROM webhook_attempt").first(as: Int64.self) == 1)
                await #expect(throws: PostgresError.self) {
                    try await pool.query(
                        """
                        INSERT INTO webhook_attempt (delivery_id, attempt, attempted_at, latency_ms)
                        VALUES (gen_random_uuid(), 1, now(), 1)
                        """)
                }
                try await pool.query("DELETE FROM webhook_delivery WHERE id = \(delivery)")
                #expect(
                    try await pool.query("SELECT count(*)::bigint FROM webhook_attempt").first(as: Int64.self) == 0)
            }
        }
    }
}
