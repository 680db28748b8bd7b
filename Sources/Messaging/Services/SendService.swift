import Foundation
import Ledger
import Logging
import PostgresLibpq
import ResellerCore
import SMSCore
import Synchronization

/// One send to accept: the request, its plan, who asked, and its idempotency key.
package struct SendSubmission: Sendable {
    package var plan: SendPlan
    package var request: SendRequest
    package var options: SendOptions
    package var actor: AuditActor
    package var idempotency: Idempotency.Request?
    /// The id of the batch this send writes, made before any transaction: whether a send committed can be told by
    /// looking for its batch.
    package var batchID: UUID

    package init(
        plan: SendPlan, request: SendRequest, options: SendOptions, actor: AuditActor,
        idempotency: Idempotency.Request?,
        batchID: UUID = .timeOrdered()
    ) {
        self.plan = plan
        self.request = request
        self.options = options
        self.actor = actor
        self.idempotency = idempotency
        self.batchID = batchID
    }
}

/// What became of a send.
package enum SendOutcome: Sendable {
    /// A preview passed every check a real send makes; nothing was written.
    case checked(SendPlan)
    /// Accepted now, or earlier under the same `Idempotency-Key` (`replayed`).
    case accepted(AcceptedBatch, replayed: Bool)
    /// Refused as a whole; nothing was written.
    case refused(DomainError)
}

/// Accepts sends: checks them (`SendPlanner`), then writes each accepted send's batch, messages, reservations and
/// outbox rows in one transaction, under the locks of the ledger accounts it touches.
///
/// Many sends share a transaction: `accept(_:on:)` takes a list, and `SendCoalescer` gathers concurrent small sends
/// into such lists (group commit), so a hot account's row is locked and written once per group instead of once per
/// message. Each send in a group is decided on its own (balance, status, idempotency key) before anything is
/// written, so one refusal does not refuse the others; a group whose transaction provably did not commit is retried
/// send by send, so a send that breaks fails alone (see `accept(_:)` for a failure at commit).
package struct SendService: Sendable {
    package let pool: PostgresPool
    /// Transient upstream failures are retried until this long after a message is due; then it fails.
    package var retryDeadline: Duration
    /// Tests only: called around the commit of each transaction of `accept(_:)`; a throw stands for a failure there
    /// (`beforeCommit`: the transaction is rolled back; `afterCommit`: it committed but its answer was lost).
    package var faultInjection: (@Sendable (FaultPoint, [SendSubmission]) async throws -> Void)?

    /// Where `faultInjection` is called.
    package enum FaultPoint: Sendable {
        case beforeCommit, afterCommit
    }

    package init(
        pool: PostgresPool, retryDeadline: Duration,
        faultInjection: (@Sendable (FaultPoint, [SendSubmission]) async throws -> Void)? = nil
    ) {
        self.pool = pool
        self.retryDeadline = retryDeadline
        self.faultInjection = faultInjection
    }

    /// The stored answer under the submission's key, if any: a replay, or 422 when the key was used for another request.
    package static func replay(_ request: Idempotency.Request, on connection: PostgresConnection) async throws
        -> SendOutcome?
    {
        guard let stored = try await IdempotencyRepository.find(scope: request.scope, key: request.key, on: connection)
        else { return nil }
        return try replay(stored, for: request)
    }

    /// The outcome `stored` answers for `request`: a replay, or 422 when the key was used for another request.
    package static func replay(_ stored: IdempotencyRecord, for request: Idempotency.Request) throws -> SendOutcome {
        guard stored.operation == request.operation, stored.requestHash == request.hash else {
            return .refused(
                DomainError(
                    .unprocessable, code: "idempotency_key_reused",
                    detail: "This Idempotency-Key was used for a different request; use a new key for a new request."))
        }
        return .accepted(
            try JSONDecoder.api.decode(AcceptedBatch.self, from: Data(stored.response.utf8)), replayed: true)
    }

    /// Accepts `submissions` (already planned, none refused by its plan) in one transaction: one outcome per
    /// submission, in order.
    ///
    /// When the transaction fails after its statements were all written (at `COMMIT`, or as its answer is lost with
    /// the connection) it may have committed: its sends' batches, whose ids were made before it, are looked for in a
    /// new transaction, after waiting for the locks the failed one held (so a commit still in flight has ended). Found:
    /// the outcomes it committed are answered. Not found: the original error is thrown, and nothing was written for
    /// any of them. `CommitOutcomeUnknown` when that could not be found out: nothing may then be retried.
    package func accept(_ submissions: [SendSubmission]) async throws -> [SendOutcome] {
        let decided = Mutex<[SendOutcome]?>(nil)
        do {
            let outcomes = try await pool.withTransaction { connection in
                decided.withLock { $0 = nil }
                let outcomes = try await Self.write(submissions, retryDeadline: retryDeadline, on: connection)
                decided.withLock { $0 = outcomes }
                try await faultInjection?(.beforeCommit, submissions)
                return outcomes
            }
            try await faultInjection?(.afterCommit, submissions)
            return outcomes
        } catch {
            // No outcomes: a statement failed, so the transaction was rolled back before its COMMIT was sent.
            guard let outcomes = decided.withLock({ $0 }) else { throw error }
            let written = outcomes.compactMap { outcome -> UUID? in
                if case .accepted(let batch, replayed: false) = outcome { return batch.batchID }
                return nil
            }
            // Nothing written (every send refused or replayed): there is nothing a retry could write twice.
            guard !written.isEmpty else { throw error }
            let committed: Bool
            do {
                committed = try await self.committed(submissions, batchIDs: written)
            } catch {
                throw CommitOutcomeUnknown(underlying: error)
            }
            // One transaction: its batches are all there or none is.
            guard committed else { throw error }
            return outcomes
        }
    }

    /// Whether any of `batchIDs` is stored, read after locking the accounts `submissions` lock (as the write does), so
    /// that a transaction still holding them (committing, or not yet rolled back) has ended first.
    private func committed(_ submissions: [SendSubmission], batchIDs: [UUID]) async throws -> Bool {
        try await pool.withTransaction { connection in
            _ = try await connection.read(
                SendRepository.lockAccounts(
                    subAccountIDs: Array(Set(submissions.map(\.plan.subAccountID))),
                    resellerIDs: Array(Set(submissions.map(\.plan.resellerID)))))
            return try await connection.query(
                "SELECT EXISTS (SELECT 1 FROM message_batch WHERE id = ANY (\(batchIDs)))"
            ).first(as: Bool.self) ?? false
        }
    }

    /// A transaction of sends failed at its commit and whether it committed could not be found out.
    package struct CommitOutcomeUnknown: Error, CustomStringConvertible {
        package var underlying: any Error
        package var description: String {
            "whether the sends committed is unknown (the check after a failed commit failed: \(underlying))"
        }
    }

    /// Accepts each submission in a transaction of its own (a group's fallback, once the group provably did not
    /// commit): a failure is that send's alone, and a send whose commit fails is checked as `accept(_:)` checks.
    package func acceptOneByOne(_ submissions: [SendSubmission]) async -> [Result<SendOutcome, any Error>] {
        var results: [Result<SendOutcome, any Error>] = []
        for submission in submissions {
            do {
                results.append(.success(try await accept([submission])[0]))
            } catch {
                results.append(.failure(error))
            }
        }
        return results
    }

    // MARK: - The write

    private struct Accounts {
        var id: [String: UUID] = [:]
        var spendable: [UUID: Int64] = [:]
        var restricted: Set<UUID> = []

        static func key(_ kind: LedgerAccountKind, _ owner: UUID) -> String { "\(kind.rawValue):\(owner)" }
        func id(_ kind: LedgerAccountKind, _ owner: UUID) -> UUID? { id[Self.key(kind, owner)] }
    }

    /// Accepts `submissions` on `connection`, inside the caller's transaction.
    package static func write(
        _ submissions: [SendSubmission], retryDeadline: Duration, on connection: PostgresConnection
    ) async throws -> [SendOutcome] {
        let subAccountIDs = Array(Set(submissions.map(\.plan.subAccountID)))
        let resellerIDs = Array(Set(submissions.map(\.plan.resellerID)))

        // What the decisions need, in one round trip, in this order (the locks are taken in it):
        // 1. every account the sends touch, locked in id order (as every ledger path locks), with what each may spend;
        // 2. the statuses, read after the account locks so that a block committed before them is seen (a block that
        //    comes later waits for this transaction: FOR SHARE);
        // 3. the idempotency keys, each taken for this transaction (advisory lock) and looked up. The lookup's
        //    snapshot may miss a duplicate committed just before the lock was taken; its insert then fails the group
        //    on the primary key, and the send-by-send retry finds the record;
        // 4. the message numbers (and scheduled batches' outbox numbers) for the 1601-compatible answers, for every
        //    send of the group: a refused or replayed one leaves a gap in the sequence, nothing else.
        let now = Date()
        let scheduled = { (index: Int) in
            submissions[index].options.outboxNumber || (submissions[index].request.scheduleAt.map { $0 > now } ?? false)
        }
        var outcomes = [SendOutcome?](repeating: nil, count: submissions.count)
        var seen: Set<String> = []
        var lockable: [Int] = []
        for index in submissions.indices {
            guard let request = submissions[index].idempotency else { continue }
            if seen.insert(request.scope + "\u{1F}" + request.key).inserted {
                lockable.append(index)
            } else {
                outcomes[index] = .refused(Self.inProgress)
            }
        }
        let (locked, statuses, keys, numbers) = try await connection.pipeline(
            SendRepository.lockAccounts(subAccountIDs: subAccountIDs, resellerIDs: resellerIDs),
            SendRepository.lockStatuses(subAccountIDs: subAccountIDs),
            SendRepository.lockIdempotencyKeys(lockable.map { submissions[$0].idempotency! }),
            SendRepository.allocateNumbers(
                messages: submissions.reduce(0) { $0 + $1.plan.messageCount },
                outboxes: submissions.indices.count(where: scheduled)))
        var accounts = Accounts()
        for account in locked {
            accounts.id[Accounts.key(account.kind, account.owner)] = account.id
            accounts.spendable[account.id] = account.spendable
            if account.restricted { accounts.restricted.insert(account.id) }
        }
        for (index, key) in zip(lockable, keys) {
            if !key.locked {
                outcomes[index] = .refused(Self.inProgress)
            } else if let stored = key.stored {
                outcomes[index] = try Self.replay(stored, for: submissions[index].idempotency!)
            }
        }

        // Each remaining send, in order: its accounts' status and funds under the locks.
        var accepted: [Int] = []
        for (index, submission) in submissions.enumerated() where outcomes[index] == nil {
            let plan = submission.plan
            guard let status = statuses[plan.subAccountID],
                let wallet = accounts.id(.subAccountWallet, plan.subAccountID),
                let resellerWallet = accounts.id(.resellerWallet, plan.resellerID),
                accounts.id(.resellerRevenue, plan.resellerID) != nil,
                accounts.id(.platformRevenue, plan.resellerID) != nil
            else {
                outcomes[index] = .refused(.notFound("No sub-account \(plan.subAccountID.apiString)."))
                continue
            }
            if let code = status.gatewayCode {
                outcomes[index] = .refused(
                    DomainError(
                        .forbidden, code: "account_blocked",
                        detail: "the account is \(status.rawValue): \(code.meaning)", gatewayCode: code))
                continue
            }
            if status == .closed {
                outcomes[index] = .refused(
                    .conflict("Sub-account \(plan.subAccountID.apiString) is closed; it cannot send."))
                continue
            }
            let retail = plan.retailTotal.minorUnits
            let wholesale = plan.wholesaleTotal.minorUnits
            if accounts.restricted.contains(wallet), accounts.spendable[wallet, default: 0] < retail {
                outcomes[index] = .refused(
                    .insufficientCredits(
                        "the messages cost \(plan.retailTotal) credits; \(Money(accounts.spendable[wallet, default: 0])) can be spent"
                    ))
                continue
            }
            if accounts.restricted.contains(resellerWallet), accounts.spendable[resellerWallet, default: 0] < wholesale
            {
                outcomes[index] = .refused(.insufficientCredits("the reseller's account cannot cover these messages"))
                continue
            }
            accounts.spendable[wallet, default: 0] -= retail
            accounts.spendable[resellerWallet, default: 0] -= wholesale
            accepted.append(index)
        }
        guard !accepted.isEmpty else { return outcomes.map { $0! } }

        // The rows of the accepted sends, each kind in one multi-row statement, in one round trip.
        var gatewayIDs = numbers.messages[...]
        var outboxIDs = numbers.outboxes[...]
        var rows = SendRows()
        for index in accepted {
            let submission = submissions[index]
            let plan = submission.plan
            let batch = rows.add(
                submission, wallet: accounts.id(.subAccountWallet, plan.subAccountID)!,
                revenue: accounts.id(.resellerRevenue, plan.resellerID)!,
                resellerWallet: accounts.id(.resellerWallet, plan.resellerID)!,
                platformRevenue: accounts.id(.platformRevenue, plan.resellerID)!,
                gatewayIDs: gatewayIDs.prefix(plan.messageCount),
                outboxID: scheduled(index) ? outboxIDs.popFirst() : nil,
                at: now, retryDeadline: retryDeadline)
            gatewayIDs = gatewayIDs.dropFirst(plan.messageCount)
            outcomes[index] = .accepted(batch, replayed: false)
            if let request = submission.idempotency {
                let response = String(decoding: try Idempotency.canonicalEncoder.encode(batch), as: UTF8.self)
                rows.idempotency(request, response: response)
            }
        }
        try await SendRepository.insert(rows, on: connection)
        return outcomes.map { $0! }
    }

    package static let inProgress = DomainError(
        .conflict, code: "idempotency_in_progress",
        detail: "A request with this Idempotency-Key is still being processed; retry it shortly.")
}
