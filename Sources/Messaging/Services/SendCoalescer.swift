import Foundation
import ResellerCore

/// Group commit for sends: concurrent sends of one reseller share transactions.
///
/// Every send of a reseller locks the reseller's wallet and revenue rows (the wholesale leg), and every send of a
/// sub-account its wallet, so one transaction per send would make them queue one commit at a time. Instead sends are
/// grouped per reseller (`GroupCommitter`: one group of a reseller at a time, at most 64 sends each); sends of
/// different resellers never wait for each other. A group is decided send by send and, if its transaction provably
/// did not commit, retried send by send (`SendService`), so a send that fails inside a group fails alone. A group that
/// committed though its commit failed (a lost answer to `COMMIT`) answers what it committed, and a group whose fate
/// could not be found out fails as a whole: a retry could write its sends twice.
package final class SendCoalescer: Sendable {
    private let committer: GroupCommitter<UUID, SendSubmission, SendOutcome>

    package init(service: SendService, maximumInFlight: Int = 1, maximumGroup: Int = 64) {
        committer = GroupCommitter(maximumInFlight: maximumInFlight, maximumGroup: maximumGroup) { submissions in
            await Self.acceptGroup(submissions, service: service)
        }
    }

    /// One group: accepted in one transaction, else (when that provably wrote nothing) send by send.
    package static func acceptGroup(_ submissions: [SendSubmission], service: SendService) async -> [Result<
        SendOutcome, any Error
    >] {
        do {
            return try await service.accept(submissions).map { .success($0) }
        } catch let error as SendService.CommitOutcomeUnknown {
            return submissions.map { _ in .failure(error) }
        } catch  where submissions.count > 1 {
            return await service.acceptOneByOne(submissions)
        } catch {
            return [.failure(error)]
        }
    }

    /// Accepts one send (already planned and not refused by its plan) in a shared transaction.
    package func accept(_ submission: SendSubmission) async throws -> SendOutcome {
        try await committer.submit(submission, key: submission.plan.resellerID)
    }
}
