import Foundation
import PostgresLibpq
import ResellerCore
import Ledger
import Pricing
import Contacts
import Webhooks

/// The send path as the API and the 1601-compatible endpoint use it: replay, plan, refuse or accept,
/// then wake the dispatcher.
package final class Sending: Sendable {
    package let planner: SendPlanner
    package let service: SendService
    package let coalescer: SendCoalescer
    /// Tells this instance's dispatcher that messages are due now.
    package let wakeDispatcher: @Sendable () -> Void

    /// Sends of at most this many messages go through group commit; larger ones are a transaction of their own
    /// (they gain nothing from sharing one, and would hold up the small sends grouped with them).
    package static let groupCommitLimit = 20

    package init(pool: PostgresPool, retryDeadline: Duration, wakeDispatcher: @escaping @Sendable () -> Void = {}) {
        planner = SendPlanner(pool: pool)
        service = SendService(pool: pool, retryDeadline: retryDeadline)
        coalescer = SendCoalescer(service: service)
        self.wakeDispatcher = wakeDispatcher
    }

    /// Plans `request` for `account` and accepts it unless refused. An earlier send under the same key is replayed
    /// without planning again, and without `check` (what the first answer already passed: the callback URL's
    /// addresses, which may resolve otherwise by now).
    package func send(
        account: SubAccountRecord, request: SendRequest, reference: String?, callbackURL: String?, skipInvalidRecipients: Bool,
        actor: AuditActor, idempotency: Idempotency.Request, check: () async throws -> Void = {}
    ) async throws -> SendOutcome {
        if let replayed = try await service.pool.withConnection({ try await SendService.replay(idempotency, on: $0) }) {
            return replayed
        }
        try await check()
        guard let plan = try await planner.plan(account: account, request: request) else {
            return .refused(.notFound("No sub-account \(account.id.apiString)."))
        }
        let submission = SendSubmission(
            plan: plan, request: request, reference: reference, callbackURL: callbackURL, skipInvalidRecipients: skipInvalidRecipients,
            actor: actor, idempotency: idempotency)
        if let problem = SendService.refusal(of: submission) { return .refused(problem) }
        return try await accept(submission)
    }

    /// Accepts a planned submission its plan does not refuse (the 1601-compatible endpoint checks its plan in the
    /// upstream's order first); the accounts' status and funds are decided again under their locks.
    package func accept(_ submission: SendSubmission) async throws -> SendOutcome {
        let plan = submission.plan
        let outcome: SendOutcome
        do {
            outcome = plan.messageCount <= Self.groupCommitLimit
                ? try await coalescer.accept(submission)
                : try await service.accept([submission])[0]
        } catch let error as PostgresError where error.isUniqueViolation && error.constraint == "idempotency_record_pkey" {
            // A duplicate committed between this send's key lookup and its key lock: answer what it stored.
            guard let idempotency = submission.idempotency,
                  let replayed = try await service.pool.withConnection({ try await SendService.replay(idempotency, on: $0) })
            else { throw error }
            return replayed
        }
        if case .accepted(let batch, replayed: false) = outcome, batch.status == .queued { wakeDispatcher() }
        return outcome
    }
}
