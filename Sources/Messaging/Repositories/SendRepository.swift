import Foundation
import Ledger
import PostgresLibpq
import Pricing
import ResellerCore
import SMSCore

/// The statements of the send path's write (`SendService`), each inside the caller's transaction.
enum SendRepository {
    /// A ledger account a send touches, locked: what it may still spend, and whether that limit applies.
    struct LockedAccount {
        var id: UUID
        var kind: LedgerAccountKind
        /// The sub-account or reseller that owns it.
        var owner: UUID
        /// Available balance plus credit limit.
        var spendable: Int64
        /// The account may not go below `-creditLimit` (`debits_must_not_exceed_credits`).
        var restricted: Bool
    }

    /// The wallets of `subAccountIDs`, and the wallets and revenue accounts of `resellerIDs`, locked in id order as
    /// every ledger path locks.
    static func lockAccounts(subAccountIDs: [UUID], resellerIDs: [UUID]) -> PostgresRead<[LockedAccount]> {
        PostgresRead(
            """
            SELECT id, kind, COALESCE(sub_account_id, reseller_id),
                   credits_posted - debits_posted - debits_pending + COALESCE(credit_limit, 0), debits_must_not_exceed_credits
            FROM ledger_account
            WHERE (kind = 'sub_account_wallet' AND sub_account_id = ANY (\(subAccountIDs)))
               OR (kind IN ('reseller_wallet', 'reseller_revenue', 'platform_revenue') AND reseller_id = ANY (\(resellerIDs))
                   AND sub_account_id IS NULL)
            ORDER BY id FOR UPDATE
            """
        ) { rows in
            try rows.decode((UUID, String, UUID, Int64, Bool).self).compactMap { row in
                LedgerAccountKind(rawValue: row.1).map {
                    LockedAccount(id: row.0, kind: $0, owner: row.2, spendable: row.3, restricted: row.4)
                }
            }
        }
    }

    /// The effective status of each sub-account (its reseller's block counts), read after the account locks so that a
    /// block committed before them is seen; a block that comes later waits for this transaction (`FOR SHARE`).
    static func lockStatuses(subAccountIDs: [UUID]) -> PostgresRead<[UUID: AccountStatus]> {
        PostgresRead(
            """
            SELECT s.id, effective_account_status(r.status, s.status) FROM sub_account s JOIN reseller r ON r.id = s.reseller_id
            WHERE s.id = ANY (\(subAccountIDs)) ORDER BY s.id FOR SHARE OF s, r
            """
        ) { rows in
            var statuses: [UUID: AccountStatus] = [:]
            for row in try rows.decode((UUID, String).self) { statuses[row.0] = AccountStatus(rawValue: row.1) }
            return statuses
        }
    }

    /// Takes each key for this transaction (a transaction-level advisory lock) and looks it up, all in one statement:
    /// per request, in order, whether the lock was taken and the record stored under the key. The lookup's snapshot
    /// may miss a duplicate committed just before the lock was taken; its insert then fails on the primary key.
    static func lockIdempotencyKeys(_ requests: [Idempotency.Request]) -> PostgresRead<
        [(locked: Bool, stored: IdempotencyRecord?)]
    > {
        guard !requests.isEmpty else { return .constant([]) }
        return PostgresRead(
            """
            SELECT pg_try_advisory_xact_lock(hashtextextended(u.scope || chr(31) || u.key, 1601)),
                   r.operation, r.request_hash, r.status_code, r.response::text
            FROM unnest(\(requests.map(\.scope)), \(requests.map(\.key))) WITH ORDINALITY AS u (scope, key, n)
            LEFT JOIN idempotency_record r ON r.scope = u.scope AND r.key = u.key
            ORDER BY u.n
            """
        ) { rows in
            try rows.decode((Bool, String?, Data?, Int?, String?).self).map { row in
                guard let operation = row.1, let hash = row.2, let status = row.3, let response = row.4 else {
                    return (row.0, nil)
                }
                return (
                    row.0,
                    IdempotencyRecord(operation: operation, requestHash: hash, statusCode: status, response: response)
                )
            }
        }
    }

    /// `messages` platform-unique message numbers and `outboxes` outbox numbers, for the 1601-compatible answers (a
    /// sequence's numbers: taken for good, with gaps where a send that took some was refused or rolled back).
    static func allocateNumbers(messages: Int, outboxes: Int) -> PostgresRead<(messages: [Int64], outboxes: [Int64])> {
        PostgresRead(
            """
            SELECT ARRAY(SELECT nextval('message_gateway_id_seq') FROM generate_series(1, \(messages))),
                   ARRAY(SELECT nextval('message_batch_outbox_id_seq') FROM generate_series(1, \(outboxes)))
            """
        ) { rows in
            let numbers = try rows.first(as: ([Int64], [Int64]).self)
            return numbers.map { (messages: $0.0, outboxes: $0.1) } ?? ([], [])
        }
    }

    /// Writes everything in one round trip: the reservations first (the messages refer to them), then batches,
    /// messages and outbox rows in one statement, then the idempotency records.
    static func insert(_ rows: SendRows, on connection: PostgresConnection) async throws {
        var statements: [PostgresQuery] = []
        if !rows.transferIDs.isEmpty {
            statements.append(
                """
                SELECT ledger_reserve(\(rows.transferIDs), \(rows.debits), \(rows.credits), \(rows.amounts), \(rows.links), \(rows.codes), \(rows.transferResellers),
                                      \(rows.transferSubAccounts), \(rows.transferRefs), \(rows.transferActors), \(rows.transferRequests))
                """)
        }
        statements.append(
            """
            WITH b AS (
                SELECT * FROM unnest(\(rows.batchResellers), \(rows.batchIDs), \(rows.batchSubAccounts), \(rows.senders), \(rows.texts), \(rows.encodings), \(rows.lengths),
                                     \(rows.parts), \(rows.longs), \(rows.references), \(rows.callbacks), \(rows.groups), \(rows.schedules), \(rows.recipientCounts),
                                     \(rows.messageCounts), \(rows.retailTotals), \(rows.wholesaleTotals), \(rows.actors), \(rows.requestIDs), \(rows.acceptedAts),
                                     \(rows.statuses), \(rows.dueAts), \(rows.deadlines), \(rows.outboxIDs), \(rows.deliveryReports), \(rows.loggings),
                                     \(rows.traceparents))
                     AS b (reseller_id, id, sub_account_id, sender, text, encoding, length, parts, long, reference, callback_url,
                           group_name, schedule_at, recipient_count, message_count, retail_total, wholesale_total, created_by,
                           request_id, accepted_at, status, due_at, deadline_at, outbox_id, delivery_reports, logging, traceparent)
            ), batches AS (
                INSERT INTO message_batch (reseller_id, id, sub_account_id, sender, text, encoding, length, parts, long, reference,
                                           callback_url, group_name, schedule_at, recipient_count, message_count, retail_total,
                                           wholesale_total, created_by, request_id, accepted_at, outbox_id, delivery_reports, logging,
                                           traceparent)
                SELECT reseller_id, id, sub_account_id, sender, text, encoding, length, parts, long, reference, callback_url,
                       group_name, schedule_at, recipient_count, message_count, retail_total, wholesale_total, created_by,
                       request_id, accepted_at, outbox_id, delivery_reports, logging, traceparent
                FROM b
            ), m AS (
                SELECT u.*, b.reseller_id, b.sub_account_id, b.status, b.schedule_at, b.accepted_at, b.due_at, b.deadline_at
                FROM unnest(\(rows.messageIDs), \(rows.gatewayIDs), \(rows.messageBatches), \(rows.positions), \(rows.recipients), \(rows.countries), \(rows.retailPrices),
                            \(rows.wholesalePrices), \(rows.costs), \(rows.retailVersions), \(rows.wholesaleVersions), \(rows.costVersions),
                            \(rows.retailReservations), \(rows.wholesaleReservations))
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
        if !rows.scopes.isEmpty {
            statements.append(
                """
                INSERT INTO idempotency_record (scope, key, operation, request_hash, status_code, response)
                SELECT u.scope, u.key, u.operation, decode(u.hash, 'hex'), 201, u.response::jsonb
                FROM unnest(\(rows.scopes), \(rows.keys), \(rows.operations), \(rows.hashes), \(rows.responses)) AS u (scope, key, operation, hash, response)
                """)
        }
        _ = try await connection.pipeline(statements)
    }
}

/// The rows of accepted sends, as parallel arrays for `unnest`.
struct SendRows {
    // Reservations (ledger_reserve).
    var transferIDs: [UUID] = [], debits: [UUID] = [], credits: [UUID] = [], amounts: [Int64] = [], links: [UUID?] = []
    var codes: [String] = [], transferResellers: [UUID] = [], transferSubAccounts: [UUID] = [],
        transferRefs: [String] = []
    var transferActors: [String] = [], transferRequests: [String?] = []
    // Batches.
    var batchResellers: [UUID] = [], batchIDs: [UUID] = [], batchSubAccounts: [UUID] = [], senders: [String] = [],
        texts: [String] = []
    var encodings: [String] = [], lengths: [Int] = [], parts: [Int] = [], longs: [Bool] = [], references: [String?] = []
    var callbacks: [String?] = [], groups: [String?] = [], schedules: [Date?] = [], recipientCounts: [Int] = []
    var messageCounts: [Int] = [], retailTotals: [Int64] = [], wholesaleTotals: [Int64] = [], actors: [String] = []
    var requestIDs: [String?] = [], acceptedAts: [Date] = [], statuses: [String] = [], dueAts: [Date] = [],
        deadlines: [Date] = []
    var outboxIDs: [Int64?] = [], deliveryReports: [Bool] = [], loggings: [Bool] = [], traceparents: [String?] = []
    // Messages and their outbox rows; what a batch's messages share is joined from the batch arrays.
    var messageIDs: [UUID] = [], gatewayIDs: [Int64] = [], messageBatches: [UUID] = [], positions: [Int] = [],
        recipients: [String] = []
    var countries: [String] = [], retailPrices: [Int64] = [], wholesalePrices: [Int64] = [], costs: [Int64] = []
    var retailVersions: [UUID] = [], wholesaleVersions: [UUID] = [], costVersions: [UUID] = [],
        retailReservations: [UUID?] = []
    var wholesaleReservations: [UUID?] = []
    // Idempotency records.
    var scopes: [String] = [], keys: [String] = [], operations: [String] = [], hashes: [String] = [],
        responses: [String] = []

    private mutating func reserve(
        _ id: UUID, from debit: UUID, to credit: UUID, amount: Int64, link: UUID?, code: String, plan: SendPlan,
        message: UUID, actor: AuditActor
    ) {
        transferIDs.append(id)
        debits.append(debit)
        credits.append(credit)
        amounts.append(amount)
        links.append(link)
        codes.append(code)
        transferResellers.append(plan.resellerID)
        transferSubAccounts.append(plan.subAccountID)
        transferRefs.append(message.apiString)
        transferActors.append(actor.actor)
        transferRequests.append(actor.requestID)
    }

    /// Adds one accepted send; returns its answer.
    mutating func add(
        _ submission: SendSubmission, wallet: UUID, revenue: UUID, resellerWallet: UUID, platformRevenue: UUID,
        gatewayIDs numbers: ArraySlice<Int64>, outboxID: Int64?, at now: Date, retryDeadline: Duration
    ) -> AcceptedBatch {
        let plan = submission.plan
        let request = submission.request
        let batchID = submission.batchID
        let timing = SendTiming(scheduleAt: request.scheduleAt, acceptedAt: now, retryDeadline: retryDeadline)
        let status = timing.status
        let parts = plan.segmentation.partCount
        var messages: [AcceptedMessage] = []
        messages.reserveCapacity(plan.messageCount)
        var refused: [RefusedRecipient] = []
        var numbers = numbers
        for recipient in plan.recipients {
            guard let price = recipient.price, recipient.error == nil else {
                let code = recipient.error ?? .countryNotOffered
                refused.append(
                    RefusedRecipient(
                        index: recipient.index, input: recipient.input, code: code.rawValue, message: code.meaning))
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
                reserve(
                    retailReservation, from: wallet, to: revenue, amount: retail, link: link, code: "send_retail",
                    plan: plan, message: id,
                    actor: submission.actor)
            }
            if let wholesaleReservation {
                reserve(
                    wholesaleReservation, from: resellerWallet, to: platformRevenue, amount: wholesale, link: link,
                    code: "send_wholesale",
                    plan: plan, message: id, actor: submission.actor)
            }
            messageIDs.append(id)
            gatewayIDs.append(gatewayID)
            messageBatches.append(batchID)
            positions.append(recipient.index)
            recipients.append(price.number.digits)
            countries.append(price.country.code)
            retailPrices.append(retail)
            wholesalePrices.append(wholesale)
            costs.append((price.upstreamCost.pricePerPart * parts).minorUnits)
            retailVersions.append(price.retail.versionID)
            wholesaleVersions.append(price.wholesale.versionID)
            costVersions.append(price.upstreamCost.versionID)
            retailReservations.append(retailReservation)
            wholesaleReservations.append(wholesaleReservation)
            messages.append(
                AcceptedMessage(
                    id: id, gatewayID: gatewayID, index: recipient.index, number: price.number.digits,
                    country: price.country.code, parts: parts,
                    price: Money(retail)))
        }
        batchResellers.append(plan.resellerID)
        batchIDs.append(batchID)
        batchSubAccounts.append(plan.subAccountID)
        senders.append(plan.sender ?? "")
        texts.append(request.text)
        encodings.append(plan.segmentation.encoding.rawValue)
        lengths.append(plan.segmentation.length)
        self.parts.append(parts)
        longs.append(request.long)
        references.append(submission.options.reference)
        callbacks.append(submission.options.callbackURL)
        groups.append(request.groupName)
        schedules.append(request.scheduleAt)
        recipientCounts.append(plan.recipients.count)
        messageCounts.append(messages.count)
        retailTotals.append(plan.retailTotal.minorUnits)
        wholesaleTotals.append(plan.wholesaleTotal.minorUnits)
        actors.append(submission.actor.actor)
        requestIDs.append(submission.actor.requestID)
        acceptedAts.append(now)
        statuses.append(status.rawValue)
        dueAts.append(timing.due)
        deadlines.append(timing.deadline)
        outboxIDs.append(outboxID)
        deliveryReports.append(submission.options.deliveryReports)
        loggings.append(submission.options.logging)
        traceparents.append(submission.actor.traceparent)
        return AcceptedBatch(
            batchID: batchID, outboxID: outboxID, subAccountID: plan.subAccountID, acceptedAt: now,
            scheduleAt: request.scheduleAt, status: status,
            sender: plan.sender ?? "", encoding: plan.segmentation.encoding, parts: parts,
            reference: submission.options.reference,
            retailTotal: plan.retailTotal, messages: messages, refused: refused)
    }

    mutating func idempotency(_ request: Idempotency.Request, response: String) {
        scopes.append(request.scope)
        keys.append(request.key)
        operations.append(request.operation)
        hashes.append(request.hash.map { String(format: "%02x", $0) }.joined())
        responses.append(response)
    }
}
