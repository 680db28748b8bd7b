import Foundation
import Ledger
import PostgresLibpq
import ResellerCore
import Webhooks

/// What a send carries besides its request: what is kept with it and how its refusals are decided.
package struct SendOptions: Sendable {
    /// The client's reference (the 1601 `referentie`), kept on the batch.
    package var reference: String?
    /// Where this send's delivery notifications go instead of the sub-account's own 1601-format endpoints.
    package var callbackURL: String?
    /// The 1601 `delivery=ja`: the customer wants delivery notifications (always so through the REST API).
    package var deliveryReports: Bool = true
    /// The 1601 `logging`: `false` (`logging=nee`) keeps the messages out of the `action=rapport` table.
    package var logging: Bool = true
    /// Give the batch an outbox number though it is not scheduled: a 1601 `datum` in the current minute is sent at
    /// once but answered like any scheduled send.
    package var outboxNumber: Bool = false
    /// Accept the valid recipients and report the others, instead of refusing the whole send.
    package var skipInvalidRecipients: Bool = false

    package init(
        reference: String? = nil, callbackURL: String? = nil, deliveryReports: Bool = true, logging: Bool = true,
        outboxNumber: Bool = false,
        skipInvalidRecipients: Bool = false
    ) {
        self.reference = reference
        self.callbackURL = callbackURL
        self.deliveryReports = deliveryReports
        self.logging = logging
        self.outboxNumber = outboxNumber
        self.skipInvalidRecipients = skipInvalidRecipients
    }
}

/// Whether a send is only checked or also accepted.
package enum SendMode: Sendable {
    /// Every check a real send makes, with nothing written (the REST API's `test: true`, the 1601 `test=ja`).
    case preview
    /// Checked, then accepted; a send under a key already used answers what the first one got.
    case commit(Idempotency.Request?)
}

/// The send path, the one way every send goes (the REST API's sends and previews, the 1601-compatible endpoint):
/// replay, check the callback URL, plan, refuse in the caller's order or accept, then wake the dispatcher.
///
/// See docs/sending.md.
package final class Sending: Sendable {
    package let planner: SendPlanner
    package let service: SendService
    package let coalescer: SendCoalescer
    /// Checks a send's own callback URL as webhook deliveries will check it.
    package let callbackPolicy: WebhookURLPolicy
    /// Tells this instance's dispatcher that messages are due now.
    package let wakeDispatcher: @Sendable () -> Void

    /// Sends of at most this many messages go through group commit; larger ones are a transaction of their own
    /// (they gain nothing from sharing one, and would hold up the small sends grouped with them).
    package static let groupCommitLimit = 20

    package init(
        pool: PostgresPool, retryDeadline: Duration, callbackPolicy: WebhookURLPolicy,
        wakeDispatcher: @escaping @Sendable () -> Void = {}
    ) {
        planner = SendPlanner(pool: pool)
        service = SendService(pool: pool, retryDeadline: retryDeadline)
        coalescer = SendCoalescer(service: service)
        self.callbackPolicy = callbackPolicy
        self.wakeDispatcher = wakeDispatcher
    }

    /// Checks `request` for `account` and, in commit mode, accepts it unless refused (`order` picks the refusal).
    ///
    /// An earlier send under the same key is replayed: its record is looked up with the plan's reads, and it is answered
    /// without pricing and without checking the callback URL again (the first answer passed that check; its addresses
    /// may resolve otherwise by now). The accounts' status and funds are decided again under their locks when the send
    /// is written.
    package func send(
        account: SubAccountRecord, request: SendRequest, options: SendOptions, actor: AuditActor, mode: SendMode,
        order: RefusalOrder = .rest
    ) async throws -> SendOutcome {
        let replaying: Idempotency.Request? = if case .commit(let idempotency?) = mode { idempotency } else { nil }
        let plan: SendPlan
        switch try await planner.plan(account: account, request: request, replaying: replaying) {
        case .stored(let record):
            // `replaying` is set whenever a record is found.
            return try SendService.replay(record, for: replaying!)
        case .gone:
            return .refused(.notFound("No sub-account \(account.id.apiString)."))
        case .planned(let planned):
            plan = planned
        }
        if let url = options.callbackURL { try await callbackPolicy.check(url, field: "/callbackUrl") }
        if let refusal = order.refusal(of: plan, skipInvalidRecipients: options.skipInvalidRecipients) {
            return .refused(refusal)
        }
        guard case .commit(let idempotency) = mode else { return .checked(plan) }
        return try await accept(
            SendSubmission(plan: plan, request: request, options: options, actor: actor, idempotency: idempotency))
    }

    /// Accepts a planned submission its plan does not refuse; the accounts' status and funds are decided again under
    /// their locks.
    private func accept(_ submission: SendSubmission) async throws -> SendOutcome {
        let plan = submission.plan
        let outcome: SendOutcome
        do {
            outcome =
                plan.messageCount <= Self.groupCommitLimit
                ? try await coalescer.accept(submission)
                : try await service.accept([submission])[0]
        } catch let error as PostgresError
            where error.isUniqueViolation && error.constraint == "idempotency_record_pkey"
        {
            // A duplicate committed between this send's key lookup and its key lock: answer what it stored.
            guard let idempotency = submission.idempotency,
                let replayed = try await service.pool.withConnection({
                    try await SendService.replay(idempotency, on: $0)
                })
            else { throw error }
            return replayed
        }
        if case .accepted(let batch, replayed: false) = outcome, batch.status == .queued { wakeDispatcher() }
        return outcome
    }
}
