import Foundation
import Logging
import PostgresLibpq
import SMSCore
import Synchronization
import ResellerCore
import Ledger
import Pricing
import Contacts
import Webhooks

/// One send to accept: the request, its plan, who asked, and its idempotency key.
package struct SendSubmission: Sendable {
    package var plan: SendPlan
    package var request: SendRequest
    /// The client's reference (the 1601 `referentie`), kept on the batch.
    package var reference: String?
    package var callbackURL: String?
    /// The 1601 `delivery=ja`: the customer wants delivery notifications (always so through the REST API).
    package var deliveryReports: Bool = true
    /// The 1601 `logging`: `false` (`logging=nee`) keeps the messages out of the `action=rapport` table.
    package var logging: Bool = true
    /// Give the batch an outbox number though it is not scheduled: a 1601 `datum` in the current minute is sent at
    /// once but answered like any scheduled send.
    package var outboxNumber: Bool = false
    /// Accept the valid recipients and report the others, instead of refusing the whole send.
    package var skipInvalidRecipients: Bool
    package var actor: AuditActor
    package var idempotency: Idempotency.Request?

    package init(plan: SendPlan, request: SendRequest, reference: String? = nil, callbackURL: String? = nil, deliveryReports: Bool = true, logging: Bool = true, outboxNumber: Bool = false, skipInvalidRecipients: Bool, actor: AuditActor, idempotency: Idempotency.Request? = nil) {
        self.plan = plan
        self.request = request
        self.reference = reference
        self.callbackURL = callbackURL
        self.deliveryReports = deliveryReports
        self.logging = logging
        self.outboxNumber = outboxNumber
        self.skipInvalidRecipients = skipInvalidRecipients
        self.actor = actor
        self.idempotency = idempotency
    }
}

/// What became of a send.
package enum SendOutcome: Sendable {
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
/// written, so one refusal does not refuse the others; a group whose transaction fails is retried send by send, so
/// a send that breaks fails alone.
package struct SendService: Sendable {
    package let pool: PostgresPool
    /// Transient upstream failures are retried until this long after a message is due; then it fails.
    package var retryDeadline: Duration = .seconds(86_400)

    /// Refuses what the plan already refuses: request-level problems, and recipient-level ones unless skipped.
    package static func refusal(of submission: SendSubmission) -> DomainError? {
        let plan = submission.plan
        if plan.recipients.count > SendPlanner.maximumRecipients {
            // Only a group can get here: listed recipients are limited before planning.
            return .validation([.init(
                field: "/group", message: "its members with the listed recipients make \(plan.recipients.count) recipients; at most \(SendPlanner.maximumRecipients) per send")])
        }
        if let first = plan.checks.first {
            let fieldErrors = plan.checks.map {
                DomainError.FieldError(field: $0.field ?? "", message: $0.message, gatewayCode: $0.code)
            }
            switch first.code {
            case .accountBlocked, .accountBlockedForPayment:
                return DomainError(.forbidden, code: "account_blocked", detail: first.message, gatewayCode: first.code)
            case .insufficientCredits:
                return DomainError(.insufficientCredits, code: "insufficient_credits", detail: first.message, gatewayCode: first.code)
            default:
                return DomainError(
                    .unprocessable, code: "send_refused", detail: "The send was refused: \(first.message).",
                    gatewayCode: first.code, fieldErrors: fieldErrors)
            }
        }
        let invalid = plan.recipients.filter { $0.error != nil }
        if plan.messageCount == 0 || (!invalid.isEmpty && !submission.skipInvalidRecipients) {
            let code = invalid.first?.error ?? .recipientEmpty
            return DomainError(
                .unprocessable, code: "recipients_refused",
                detail: "\(invalid.count) of \(plan.recipients.count) recipients cannot be sent to"
                    + (plan.messageCount > 0 ? " (send with invalidRecipients: skip to send to the others)." : "."),
                gatewayCode: code,
                fieldErrors: invalid.prefix(1_000).map {
                    DomainError.FieldError(field: "/recipients/\($0.index)", message: "\($0.input): \($0.error!.meaning)", gatewayCode: $0.error!)
                })
        }
        return nil
    }

    /// The stored answer under the submission's key, if any: a replay, or 422 when the key was used for another request.
    package static func replay(_ request: Idempotency.Request, on connection: PostgresConnection) async throws -> SendOutcome? {
        guard let stored = try await IdempotencyRepository.find(scope: request.scope, key: request.key, on: connection) else { return nil }
        return try replay(stored, for: request)
    }

    private static func replay(_ stored: IdempotencyRecord, for request: Idempotency.Request) throws -> SendOutcome {
        guard stored.operation == request.operation, stored.requestHash == request.hash else {
            return .refused(DomainError(
                .unprocessable, code: "idempotency_key_reused",
                detail: "This Idempotency-Key was used for a different request; use a new key for a new request."))
        }
        return .accepted(try JSONDecoder.api.decode(AcceptedBatch.self, from: Data(stored.response.utf8)), replayed: true)
    }

    /// Accepts `submissions` (already planned, none refused by its plan) in one transaction: one outcome per
    /// submission, in order. Throws when the transaction fails; nothing is then written for any of them.
    package func accept(_ submissions: [SendSubmission]) async throws -> [SendOutcome] {
        try await pool.withTransaction { connection in
            try await Self.write(submissions, retryDeadline: retryDeadline, on: connection)
        }
    }

    /// Accepts each submission in a transaction of its own (a group's fallback): a failure is that send's alone.
    package func acceptOneByOne(_ submissions: [SendSubmission]) async -> [Result<SendOutcome, any Error>] {
        var results: [Result<SendOutcome, any Error>] = []
        for submission in submissions {
            do {
                let outcome = try await pool.withTransaction { connection in
                    try await Self.write([submission], retryDeadline: retryDeadline, on: connection)
                }
                results.append(.success(outcome[0]))
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
    package static func write(_ submissions: [SendSubmission], retryDeadline: Duration, on connection: PostgresConnection) async throws -> [SendOutcome] {
        var outcomes = [SendOutcome?](repeating: nil, count: submissions.count)
        let subAccountIDs = Array(Set(submissions.map(\.plan.subAccountID)))
        let resellerIDs = Array(Set(submissions.map(\.plan.resellerID)))

        // 1. Every account the sends touch, locked in id order (as every ledger path locks), with what each may spend.
        var accounts = Accounts()
        for row in try await connection.query("""
            SELECT id, kind, COALESCE(sub_account_id, reseller_id),
                   credits_posted - debits_posted - debits_pending + COALESCE(credit_limit, 0), debits_must_not_exceed_credits
            FROM ledger_account
            WHERE (kind = 'sub_account_wallet' AND sub_account_id = ANY (\(subAccountIDs)))
               OR (kind IN ('reseller_wallet', 'reseller_revenue', 'platform_revenue') AND reseller_id = ANY (\(resellerIDs))
                   AND sub_account_id IS NULL)
            ORDER BY id FOR UPDATE
            """).decode((UUID, String, UUID, Int64, Bool).self) {
            guard let kind = LedgerAccountKind(rawValue: row.1) else { continue }
            accounts.id[Accounts.key(kind, row.2)] = row.0
            accounts.spendable[row.0] = row.3
            if row.4 { accounts.restricted.insert(row.0) }
        }

        // 2. Statuses, read after the locks so that a block committed before them is seen; a block that comes later
        // waits for this transaction (FOR SHARE).
        var statuses: [UUID: AccountStatus] = [:]
        for row in try await connection.query("""
            SELECT s.id, effective_account_status(r.status, s.status) FROM sub_account s JOIN reseller r ON r.id = s.reseller_id
            WHERE s.id = ANY (\(subAccountIDs)) ORDER BY s.id FOR SHARE OF s, r
            """).decode((UUID, String).self) {
            statuses[row.0] = AccountStatus(rawValue: row.1)
        }

        // 3. Idempotency keys: each taken for this transaction (advisory lock) and looked up, all in one statement. The
        // lookup's snapshot may miss a duplicate committed just before the lock was taken; its insert then fails the
        // group on the primary key, and the send-by-send retry finds the record.
        let keyed = submissions.indices.filter { submissions[$0].idempotency != nil }
        if !keyed.isEmpty {
            var seen: Set<String> = []
            var lockable: [Int] = []
            for index in keyed {
                let request = submissions[index].idempotency!
                if seen.insert(request.scope + "\u{1F}" + request.key).inserted {
                    lockable.append(index)
                } else {
                    outcomes[index] = .refused(Self.inProgress)
                }
            }
            let scopes = lockable.map { submissions[$0].idempotency!.scope }
            let keys = lockable.map { submissions[$0].idempotency!.key }
            let rows = try await connection.query("""
                SELECT pg_try_advisory_xact_lock(hashtextextended(u.scope || chr(31) || u.key, 1601)),
                       r.operation, r.request_hash, r.status_code, r.response::text
                FROM unnest(\(scopes), \(keys)) WITH ORDINALITY AS u (scope, key, n)
                LEFT JOIN idempotency_record r ON r.scope = u.scope AND r.key = u.key
                ORDER BY u.n
                """).decode((Bool, String?, Data?, Int?, String?).self)
            for (index, row) in zip(lockable, rows) {
                if !row.0 {
                    outcomes[index] = .refused(Self.inProgress)
                } else if let operation = row.1, let hash = row.2, let status = row.3, let response = row.4 {
                    outcomes[index] = try Self.replay(
                        IdempotencyRecord(operation: operation, requestHash: hash, statusCode: status, response: response),
                        for: submissions[index].idempotency!)
                }
            }
        }

        // 4. Each remaining send, in order: its accounts' status and funds under the locks.
        var accepted: [Int] = []
        for (index, submission) in submissions.enumerated() where outcomes[index] == nil {
            let plan = submission.plan
            guard let status = statuses[plan.subAccountID],
                  let wallet = accounts.id(.subAccountWallet, plan.subAccountID),
                  let resellerWallet = accounts.id(.resellerWallet, plan.resellerID),
                  accounts.id(.resellerRevenue, plan.resellerID) != nil, accounts.id(.platformRevenue, plan.resellerID) != nil
            else {
                outcomes[index] = .refused(.notFound("No sub-account \(plan.subAccountID.apiString)."))
                continue
            }
            if let code = status.gatewayCode {
                outcomes[index] = .refused(DomainError(
                    .forbidden, code: "account_blocked", detail: "the account is \(status.rawValue): \(code.meaning)", gatewayCode: code))
                continue
            }
            if status == .closed {
                outcomes[index] = .refused(.conflict("Sub-account \(plan.subAccountID.apiString) is closed; it cannot send."))
                continue
            }
            let retail = plan.retailTotal.minorUnits, wholesale = plan.wholesaleTotal.minorUnits
            if accounts.restricted.contains(wallet), accounts.spendable[wallet, default: 0] < retail {
                outcomes[index] = .refused(.insufficientCredits(
                    "the messages cost \(plan.retailTotal) credits; \(Money(accounts.spendable[wallet, default: 0])) can be spent"))
                continue
            }
            if accounts.restricted.contains(resellerWallet), accounts.spendable[resellerWallet, default: 0] < wholesale {
                outcomes[index] = .refused(.insufficientCredits("the reseller's account cannot cover these messages"))
                continue
            }
            accounts.spendable[wallet, default: 0] -= retail
            accounts.spendable[resellerWallet, default: 0] -= wholesale
            accepted.append(index)
        }
        guard !accepted.isEmpty else { return outcomes.map { $0! } }

        // 5. The messages' numbers (and the scheduled batches' outbox numbers) for the 1601-compatible answers, then
        // the rows of the accepted sends, each kind in one multi-row statement.
        let now = Date()
        let scheduled = { (index: Int) in
            submissions[index].outboxNumber || (submissions[index].request.scheduleAt.map { $0 > now } ?? false)
        }
        let messageCount = accepted.reduce(0) { $0 + submissions[$1].plan.messageCount }
        let numbers = try await connection.query("""
            SELECT ARRAY(SELECT nextval('message_gateway_id_seq') FROM generate_series(1, \(messageCount))),
                   ARRAY(SELECT nextval('message_batch_outbox_id_seq') FROM generate_series(1, \(accepted.count(where: scheduled))))
            """).first(as: ([Int64], [Int64]).self)!
        var gatewayIDs = numbers.0[...], outboxIDs = numbers.1[...]
        var rows = SendRows()
        for index in accepted {
            let submission = submissions[index]
            let plan = submission.plan
            let batch = rows.add(
                submission, wallet: accounts.id(.subAccountWallet, plan.subAccountID)!, revenue: accounts.id(.resellerRevenue, plan.resellerID)!,
                resellerWallet: accounts.id(.resellerWallet, plan.resellerID)!, platformRevenue: accounts.id(.platformRevenue, plan.resellerID)!,
                gatewayIDs: gatewayIDs.prefix(plan.messageCount), outboxID: scheduled(index) ? outboxIDs.popFirst() : nil,
                at: now, retryDeadline: retryDeadline)
            gatewayIDs = gatewayIDs.dropFirst(plan.messageCount)
            outcomes[index] = .accepted(batch, replayed: false)
            if let request = submission.idempotency {
                let response = String(decoding: try Idempotency.canonicalEncoder.encode(batch), as: UTF8.self)
                rows.idempotency(request, response: response)
            }
        }
        try await rows.insert(on: connection)
        return outcomes.map { $0! }
    }

    package static let inProgress = DomainError(
        .conflict, code: "idempotency_in_progress",
        detail: "A request with this Idempotency-Key is still being processed; retry it shortly.")
}

/// The rows of accepted sends, as parallel arrays for `unnest`.
private struct SendRows {
    // Reservations (ledger_reserve).
    var transferIDs: [UUID] = [], debits: [UUID] = [], credits: [UUID] = [], amounts: [Int64] = [], links: [UUID?] = []
    var codes: [String] = [], transferResellers: [UUID] = [], transferSubAccounts: [UUID] = [], transferRefs: [String] = []
    var transferActors: [String] = [], transferRequests: [String?] = []
    // Batches.
    var batchResellers: [UUID] = [], batchIDs: [UUID] = [], batchSubAccounts: [UUID] = [], senders: [String] = [], texts: [String] = []
    var encodings: [String] = [], lengths: [Int] = [], parts: [Int] = [], longs: [Bool] = [], references: [String?] = []
    var callbacks: [String?] = [], groups: [String?] = [], schedules: [Date?] = [], recipientCounts: [Int] = []
    var messageCounts: [Int] = [], retailTotals: [Int64] = [], wholesaleTotals: [Int64] = [], actors: [String] = []
    var requestIDs: [String?] = [], acceptedAts: [Date] = [], statuses: [String] = [], dueAts: [Date] = [], deadlines: [Date] = []
    var outboxIDs: [Int64?] = [], deliveryReports: [Bool] = [], loggings: [Bool] = []
    // Messages and their outbox rows; what a batch's messages share is joined from the batch arrays.
    var messageIDs: [UUID] = [], gatewayIDs: [Int64] = [], messageBatches: [UUID] = [], positions: [Int] = [], recipients: [String] = []
    var countries: [String] = [], retailPrices: [Int64] = [], wholesalePrices: [Int64] = [], costs: [Int64] = []
    var retailVersions: [UUID] = [], wholesaleVersions: [UUID] = [], costVersions: [UUID] = [], retailReservations: [UUID?] = []
    var wholesaleReservations: [UUID?] = []
    // Idempotency records.
    var scopes: [String] = [], keys: [String] = [], operations: [String] = [], hashes: [String] = [], responses: [String] = []

    private mutating func reserve(
        _ id: UUID, from debit: UUID, to credit: UUID, amount: Int64, link: UUID?, code: String, plan: SendPlan, message: UUID, actor: AuditActor
    ) {
        transferIDs.append(id); debits.append(debit); credits.append(credit); amounts.append(amount); links.append(link)
        codes.append(code); transferResellers.append(plan.resellerID); transferSubAccounts.append(plan.subAccountID)
        transferRefs.append(message.apiString); transferActors.append(actor.actor); transferRequests.append(actor.requestID)
    }

    /// Adds one accepted send; returns its answer.
    mutating func add(
        _ submission: SendSubmission, wallet: UUID, revenue: UUID, resellerWallet: UUID, platformRevenue: UUID,
        gatewayIDs numbers: ArraySlice<Int64>, outboxID: Int64?, at now: Date, retryDeadline: Duration
    ) -> AcceptedBatch {
        let plan = submission.plan
        let request = submission.request
        let batchID = UUID.timeOrdered(at: now)
        let scheduled = request.scheduleAt.map { $0 > now } ?? false
        let due = scheduled ? request.scheduleAt! : now
        let deadline = due.addingTimeInterval(Double(retryDeadline.components.seconds))
        let status: MessageStatus = scheduled ? .scheduled : .queued
        let parts = plan.segmentation.partCount
        var messages: [AcceptedMessage] = []
        messages.reserveCapacity(plan.messageCount)
        var refused: [RefusedRecipient] = []
        var numbers = numbers
        for recipient in plan.recipients {
            guard let price = recipient.price, recipient.error == nil else {
                let code = recipient.error ?? .countryNotOffered
                refused.append(RefusedRecipient(index: recipient.index, input: recipient.input, code: code.rawValue, message: code.meaning))
                continue
            }
            let id = UUID.timeOrdered(at: now)
            let gatewayID = numbers.popFirst()!
            let retail = (price.retail.pricePerPart * parts).minorUnits
            let wholesale = (price.wholesale.pricePerPart * parts).minorUnits
            // The ledger refuses zero amounts: a free leg has no reservation.
            let retailReservation = retail > 0 ? UUID.timeOrdered(at: now) : nil
            let wholesaleReservation = wholesale > 0 ? UUID.timeOrdered(at: now) : nil
            let link = retailReservation != nil && wholesaleReservation != nil ? UUID.timeOrdered(at: now) : nil
            if let retailReservation {
                reserve(retailReservation, from: wallet, to: revenue, amount: retail, link: link, code: "send_retail", plan: plan, message: id,
                        actor: submission.actor)
            }
            if let wholesaleReservation {
                reserve(wholesaleReservation, from: resellerWallet, to: platformRevenue, amount: wholesale, link: link, code: "send_wholesale",
                        plan: plan, message: id, actor: submission.actor)
            }
            messageIDs.append(id); gatewayIDs.append(gatewayID); messageBatches.append(batchID); positions.append(recipient.index); recipients.append(price.number.digits)
            countries.append(price.country.code); retailPrices.append(retail); wholesalePrices.append(wholesale)
            costs.append((price.upstreamCost.pricePerPart * parts).minorUnits); retailVersions.append(price.retail.versionID)
            wholesaleVersions.append(price.wholesale.versionID); costVersions.append(price.upstreamCost.versionID)
            retailReservations.append(retailReservation); wholesaleReservations.append(wholesaleReservation)
            messages.append(AcceptedMessage(
                id: id, gatewayID: gatewayID, index: recipient.index, number: price.number.digits, country: price.country.code, parts: parts,
                price: Money(retail)))
        }
        batchResellers.append(plan.resellerID); batchIDs.append(batchID); batchSubAccounts.append(plan.subAccountID)
        senders.append(plan.sender ?? ""); texts.append(request.text); encodings.append(plan.segmentation.encoding.rawValue)
        lengths.append(plan.segmentation.length); self.parts.append(parts); longs.append(request.long)
        references.append(submission.reference); callbacks.append(submission.callbackURL); groups.append(request.groupName)
        schedules.append(request.scheduleAt); recipientCounts.append(plan.recipients.count); messageCounts.append(messages.count)
        retailTotals.append(plan.retailTotal.minorUnits); wholesaleTotals.append(plan.wholesaleTotal.minorUnits)
        actors.append(submission.actor.actor); requestIDs.append(submission.actor.requestID); acceptedAts.append(now)
        statuses.append(status.rawValue); dueAts.append(due); deadlines.append(deadline)
        outboxIDs.append(outboxID); deliveryReports.append(submission.deliveryReports); loggings.append(submission.logging)
        return AcceptedBatch(
            batchID: batchID, outboxID: outboxID, subAccountID: plan.subAccountID, acceptedAt: now, scheduleAt: request.scheduleAt, status: status,
            sender: plan.sender ?? "", encoding: plan.segmentation.encoding, parts: parts, reference: submission.reference,
            retailTotal: plan.retailTotal, messages: messages, refused: refused)
    }

    /// Writes everything: the reservations first (the messages refer to them), then batches, messages and outbox
    /// rows in one statement, then the idempotency records.
    func insert(on connection: PostgresConnection) async throws {
        if !transferIDs.isEmpty {
            try await connection.query("""
                SELECT ledger_reserve(\(transferIDs), \(debits), \(credits), \(amounts), \(links), \(codes), \(transferResellers),
                                      \(transferSubAccounts), \(transferRefs), \(transferActors), \(transferRequests))
                """)
        }
        try await connection.query("""
            WITH b AS (
                SELECT * FROM unnest(\(batchResellers), \(batchIDs), \(batchSubAccounts), \(senders), \(texts), \(encodings), \(lengths),
                                     \(parts), \(longs), \(references), \(callbacks), \(groups), \(schedules), \(recipientCounts),
                                     \(messageCounts), \(retailTotals), \(wholesaleTotals), \(actors), \(requestIDs), \(acceptedAts),
                                     \(statuses), \(dueAts), \(deadlines), \(outboxIDs), \(deliveryReports), \(loggings))
                     AS b (reseller_id, id, sub_account_id, sender, text, encoding, length, parts, long, reference, callback_url,
                           group_name, schedule_at, recipient_count, message_count, retail_total, wholesale_total, created_by,
                           request_id, accepted_at, status, due_at, deadline_at, outbox_id, delivery_reports, logging)
            ), batches AS (
                INSERT INTO message_batch (reseller_id, id, sub_account_id, sender, text, encoding, length, parts, long, reference,
                                           callback_url, group_name, schedule_at, recipient_count, message_count, retail_total,
                                           wholesale_total, created_by, request_id, accepted_at, outbox_id, delivery_reports, logging)
                SELECT reseller_id, id, sub_account_id, sender, text, encoding, length, parts, long, reference, callback_url,
                       group_name, schedule_at, recipient_count, message_count, retail_total, wholesale_total, created_by,
                       request_id, accepted_at, outbox_id, delivery_reports, logging
                FROM b
            ), m AS (
                SELECT u.*, b.reseller_id, b.sub_account_id, b.status, b.schedule_at, b.accepted_at, b.due_at, b.deadline_at
                FROM unnest(\(messageIDs), \(gatewayIDs), \(messageBatches), \(positions), \(recipients), \(countries), \(retailPrices),
                            \(wholesalePrices), \(costs), \(retailVersions), \(wholesaleVersions), \(costVersions),
                            \(retailReservations), \(wholesaleReservations))
                     AS u (id, gateway_id, batch_id, position, recipient, country, retail_price, wholesale_price, upstream_cost, retail_version_id,
                           wholesale_version_id, upstream_cost_version_id, retail_reservation_id, wholesale_reservation_id)
                JOIN b ON b.id = u.batch_id
            ), messages AS (
                INSERT INTO message (reseller_id, id, gateway_id, sub_account_id, batch_id, position, recipient, country, retail_price,
                                     wholesale_price, upstream_cost, retail_version_id, wholesale_version_id, upstream_cost_version_id,
                                     retail_reservation_id, wholesale_reservation_id, status, schedule_at, accepted_at, status_at)
                SELECT reseller_id, id, gateway_id, sub_account_id, batch_id, position, recipient, country, retail_price, wholesale_price,
                       upstream_cost, retail_version_id, wholesale_version_id, upstream_cost_version_id, retail_reservation_id,
                       wholesale_reservation_id, status, schedule_at, accepted_at, accepted_at
                FROM m
            ), connections AS (
                SELECT r, effective_upstream_connection(r) AS connection_id FROM (SELECT DISTINCT reseller_id FROM b) AS d (r)
            )
            INSERT INTO message_outbox (message_id, reseller_id, connection_id, due_at, deadline_at)
            SELECT m.id, m.reseller_id, c.connection_id, m.due_at, m.deadline_at
            FROM m JOIN connections c ON c.r = m.reseller_id
            """)
        if !scopes.isEmpty {
            try await connection.query("""
                INSERT INTO idempotency_record (scope, key, operation, request_hash, status_code, response)
                SELECT u.scope, u.key, u.operation, decode(u.hash, 'hex'), 201, u.response::jsonb
                FROM unnest(\(scopes), \(keys), \(operations), \(hashes), \(responses)) AS u (scope, key, operation, hash, response)
                """)
        }
    }

    mutating func idempotency(_ request: Idempotency.Request, response: String) {
        scopes.append(request.scope); keys.append(request.key); operations.append(request.operation)
        hashes.append(request.hash.map { String(format: "%02x", $0) }.joined()); responses.append(response)
    }
}
