import Foundation
import PostgresLibpq
import ResellerCore

/// Receives delivery reports: many arriving together share a transaction (`GroupCommitter`, one group at a time per
/// connection, up to 500 reports), and a group whose transaction fails is retried report by report, so a report that
/// breaks fails alone.
package final class DeliveryReports: Sendable {
    package let repository: DeliveryReportRepository
    private let committer: GroupCommitter<UUID, IncomingReport, ReportOutcome>

    package init(pool: PostgresPool) {
        let repository = DeliveryReportRepository(pool: pool)
        self.repository = repository
        committer = GroupCommitter(maximumInFlight: 1, maximumGroup: 500) { reports in
            do {
                return try await repository.apply(reports).map { .success($0) }
            } catch  where reports.count > 1 {
                var results: [Result<ReportOutcome, any Error>] = []
                for report in reports {
                    do { results.append(.success(try await repository.apply([report])[0])) } catch {
                        results.append(.failure(error))
                    }
                }
                return results
            } catch {
                return [.failure(error)]
            }
        }
    }

    /// Applies one report (with whatever else arrived at the same time); returns once it is committed.
    package func receive(_ report: IncomingReport) async throws -> ReportOutcome {
        try await committer.submit(report, key: report.connectionID)
    }
}
