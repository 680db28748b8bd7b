import Foundation
import PostgresLibpq

/// How current the data of a read is, for reports and exports that may be served from a streaming replica
/// (`REPORTS_DATABASE_URL`, docs/operations.md "Read replica").
///
/// On the primary the data is current: `asOf` is the server's `now()` and the lag is zero. On a standby `asOf` is the
/// commit time of the last transaction it replayed (`pg_last_xact_replay_timestamp()`), and the lag is `now()` minus
/// that: an upper bound, since a quiet primary commits nothing newer while the standby is in fact current. A standby
/// that has replayed nothing yet answers the time it started.
package struct DataFreshness: Sendable, Equatable {
    package let asOf: Date
    package let lagSeconds: Double

    package init(asOf: Date, lagSeconds: Double) {
        self.asOf = asOf
        self.lagSeconds = lagSeconds
    }

    /// Read on one of the pool's connections, just before the read it describes (whose snapshot is then at least as
    /// new).
    package static func read(_ pool: PostgresPool) async throws -> DataFreshness {
        let row = try await pool.query(
            """
            SELECT t.as_of, greatest(extract(epoch FROM now() - t.as_of), 0)::float8
            FROM (SELECT CASE WHEN pg_is_in_recovery()
                              THEN coalesce(pg_last_xact_replay_timestamp(), pg_postmaster_start_time())
                              ELSE now() END AS as_of) t
            """
        ).first(as: (Date, Double).self)
        guard let (asOf, lag) = row else { return DataFreshness(asOf: Date(), lagSeconds: 0) }
        return DataFreshness(asOf: asOf, lagSeconds: lag)
    }
}
