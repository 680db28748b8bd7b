import Foundation
import Ledger
import PostgresLibpq
import ResellerCore

/// A message claimed from the outbox, with what its send needs.
package struct ClaimedMessage: Decodable, Sendable, Equatable {
    package var messageID: UUID
    package var resellerID: UUID
    package var subAccountID: UUID
    /// E.164 digits without `+`.
    package var recipient: String
    package var sender: String
    package var text: String
    package var long: Bool
    /// `queued` for a sendable message (a due scheduled one was moved there by the claim). Anything else means the
    /// outbox row outlived its message's sending (a bug elsewhere): the dispatcher discards the row.
    package var status: MessageStatus
    /// This claim's attempt number (claims so far, this one included); results name it, see ``DispatchResult``.
    package var attempt: Int
    package var deadlineAt: Date
    /// Whether an earlier attempt may have reached the upstream (before this claim set the flag again): this claim must
    /// not send, only find out whether the upstream took the message (see ``Dispatcher``, "Sends in doubt").
    package var wasPossiblySent: Bool
    /// When the claim that may have called the upstream was made: for a message in doubt (``wasPossiblySent``), the
    /// start of the attempt in doubt, never later than it; for any other, this claim's time.
    package var attemptedAt: Date?
    /// The upstream id a delivery report gave the message while its send's answer was not recorded (the report
    /// overtook the answer, or the answer was lost): proof that the upstream took it.
    package var reportedUpstreamID: String?
    /// The W3C `traceparent` of the request that accepted the message, when it was traced: its dispatch continues
    /// that trace.
    package var traceparent: String?

    package enum CodingKeys: String, CodingKey {
        case recipient, sender, text, long, status, attempt, traceparent
        case messageID = "message_id"
        case resellerID = "reseller_id"
        case subAccountID = "sub_account_id"
        case deadlineAt = "deadline_at"
        case wasPossiblySent = "was_possibly_sent"
        case attemptedAt = "attempted_at"
        case reportedUpstreamID = "reported_upstream_id"
    }
}

/// What became of one claimed message, as the dispatcher reports it for recording.
package struct DispatchResult: Sendable, Equatable {
    package enum Outcome: Sendable, Equatable {
        /// The upstream answered `OK <id>`.
        case submitted(upstreamID: String, connectionID: UUID)
        /// A message in doubt was found in the upstream's report table as `upstreamID`: recorded like an `OK`, with
        /// `detail` (what was found) in its history.
        case found(upstreamID: String, connectionID: UUID, detail: String)
        /// A message in doubt was proven not taken by the upstream (`detail` says how): no longer in doubt, due again
        /// at once.
        case notTaken(detail: String)
        /// Refused for good (or a transient failure past the deadline): failed, reservations voided.
        case failed(code: Int?, detail: String)
        /// A transient failure: try again after `delay` (never after the deadline; past it the message fails).
        /// `possiblySent`: an attempt may have reached the upstream (this one's error did not rule it out, or an
        /// earlier one's did not).
        case retry(code: Int?, error: String, possiblySent: Bool, delay: Duration)
        /// Handed back unfailed (the connection was paused, the worker stops, or it could not start within its lease):
        /// due again at once. `attempted`: a call was made (the attempt counts); otherwise the claim is undone.
        case released(attempted: Bool, possiblySent: Bool, error: String?)
        /// The message is no longer sendable (see ``ClaimedMessage/status``): the outbox row goes, the message stays.
        case discarded
    }

    package var messageID: UUID
    /// The attempt number of the claim this result belongs to.
    package var attempt: Int
    package var outcome: Outcome

    package init(messageID: UUID, attempt: Int, outcome: Outcome) {
        self.messageID = messageID
        self.attempt = attempt
        self.outcome = outcome
    }
}

/// What a ``OutboxRepository/record(_:worker:)`` call changed, for metrics and logs.
package struct RecordedResults: Sendable, Equatable {
    package var submitted: Int = 0
    /// `OK` answers for messages already submitted, failed or cancelled: kept as a `late_submission` event.
    package var lateSubmissions: Int = 0
    package var failed: Int = 0
    /// Of `failed`: transient failures past the retry deadline.
    package var expired: Int = 0
    package var retried: Int = 0
    package var released: Int = 0
    package var discarded: Int = 0
    /// Results of a claim whose lease another worker has taken over: ignored, the new owner decides.
    package var stale: Int = 0
    package var voidedReservations: Int = 0
    /// Upstream costs posted (messages the upstream took for the first time, late `OK`s included).
    package var costed: Int = 0
    /// Messages in doubt found in the upstream's report table (counted in `submitted` or `lateSubmissions` too).
    package var foundInDoubt: Int = 0
    /// Messages in doubt proven not taken by the upstream (counted in `released` too).
    package var notTaken: Int = 0

    package init(
        submitted: Int = 0, lateSubmissions: Int = 0, failed: Int = 0, expired: Int = 0, retried: Int = 0,
        released: Int = 0, discarded: Int = 0, stale: Int = 0, voidedReservations: Int = 0
    ) {
        self.submitted = submitted
        self.lateSubmissions = lateSubmissions
        self.failed = failed
        self.expired = expired
        self.retried = retried
        self.released = released
        self.discarded = discarded
        self.stale = stale
        self.voidedReservations = voidedReservations
    }
}

/// The dispatcher's SQL: claiming due outbox rows under a lease, and recording what became of them.
///
/// A claim is one statement (`FOR UPDATE SKIP LOCKED`, so concurrent workers never claim the same row); it moves
/// `due_at` forward by the lease, which is how a crashed worker's rows become due again. Results are recorded in
/// batches, one transaction per batch, and only by the worker that still holds the claim (`leased_by` and the attempt
/// number match) — except `OK <id>`, which is recorded whoever holds the row, as long as the message is still unsent:
/// the upstream has the message, and losing its id would lose its delivery reports.
package struct OutboxRepository: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Who voids the reservations of failed messages.
    package static let actor = "system:dispatcher"

    /// Ids and last change of the connections that may send (cheap: the dispatcher asks at every poll).
    package func activeConnections() async throws -> [(id: UUID, updatedAt: Date)] {
        try await pool.query("SELECT id, updated_at FROM upstream_connection WHERE status = 'active' ORDER BY id")
            .decode((UUID, Date).self).map { (id: $0.0, updatedAt: $0.1) }
    }

    /// Claims up to `limit` due rows of `connectionID` for `worker` for `lease`: each gets `attempts + 1`,
    /// `possibly_sent`, and `due_at = now() + lease`; a row not in doubt also gets `attempted_at = now()`. A row in doubt
    /// is not due before `settle` has passed since its attempt (the upstream may still be working on a call the client
    /// gave up on). Due scheduled messages become queued in the same statement (with
    /// their `queued` event): the schedule is released by the claim itself. Oldest due first. Nothing while the
    /// connection is paused, so that a pause by one instance stops the others' next claims at once.
    package func claim(
        connectionID: UUID, limit: Int, lease: Duration, settle: Duration = .zero, worker: String
    ) async throws -> [ClaimedMessage] {
        try await pool.query(
            """
            WITH due AS (
                SELECT message_id, due_at, possibly_sent FROM message_outbox
                WHERE connection_id = \(connectionID) AND due_at <= now()
                  AND (NOT possibly_sent OR attempted_at IS NULL
                       OR attempted_at <= now() - make_interval(secs => \(settle.inSeconds)))
                  AND EXISTS (SELECT 1 FROM upstream_connection WHERE id = \(connectionID) AND status = 'active')
                ORDER BY due_at
                LIMIT \(limit)
                FOR UPDATE SKIP LOCKED
            ), claimed AS (
                UPDATE message_outbox o
                SET due_at = now() + make_interval(secs => \(lease.inSeconds)), attempts = o.attempts + 1, possibly_sent = true,
                    leased_by = \(worker), attempted_at = CASE WHEN due.possibly_sent THEN o.attempted_at ELSE now() END
                FROM due WHERE o.message_id = due.message_id
                RETURNING o.message_id, o.attempts, o.deadline_at, o.attempted_at, due.due_at, due.possibly_sent
            ), released AS (
                UPDATE message m SET status = 'queued', status_at = now()
                FROM claimed c WHERE m.id = c.message_id AND m.status = 'scheduled'
                RETURNING m.reseller_id, m.id
            ), released_events AS (
                INSERT INTO message_event (reseller_id, message_id, status) SELECT reseller_id, id, 'queued' FROM released
            )
            SELECT c.message_id, m.reseller_id, m.sub_account_id, m.recipient, b.sender, b.text, b.long,
                   CASE m.status WHEN 'scheduled' THEN 'queued' ELSE m.status END AS status,
                   c.attempts AS attempt, c.deadline_at, c.possibly_sent AS was_possibly_sent, c.attempted_at,
                   m.upstream_id AS reported_upstream_id, b.traceparent
            FROM claimed c
            JOIN message m ON m.id = c.message_id
            JOIN message_batch b ON b.reseller_id = m.reseller_id AND b.id = m.batch_id
            ORDER BY c.due_at, c.message_id
            """
        ).decodeRecords(ClaimedMessage.self)
    }

    /// Records `results` of `worker`'s claims in one transaction (see the type's documentation for who may record
    /// what). A retry of a message whose deadline has passed fails it instead. Failing voids the message's
    /// reservations that are still pending, exactly once: the message leaves `queued` once, and the reservations are
    /// locked before they are voided.
    package func record(_ results: [DispatchResult], worker: String) async throws -> RecordedResults {
        guard !results.isEmpty else { return RecordedResults() }
        return try await pool.withTransaction { connection in
            var recorded = RecordedResults()
            // Lock every row concerned in id order (concurrent recorders and claims cannot deadlock on them), and
            // learn who holds each and whether its deadline has passed.
            let ids = results.map(\.messageID)
            let rows = try await connection.query(
                """
                SELECT message_id, leased_by, attempts, deadline_at <= now() FROM message_outbox
                WHERE message_id = ANY(\(ids)) ORDER BY message_id FOR UPDATE
                """
            ).decode((UUID, String?, Int, Bool).self)
            var holders: [UUID: (worker: String?, attempt: Int, pastDeadline: Bool)] = [:]
            for row in rows { holders[row.0] = (row.1, row.2, row.3) }

            var submitted: [(DispatchResult, upstreamID: String, connectionID: UUID, detail: String?)] = []
            var failed: [(id: UUID, code: Int?, detail: String)] = []
            var retried: [(id: UUID, code: Int?, error: String, possiblySent: Bool, delay: Duration)] = []
            var released: [(id: UUID, undo: Int, possiblySent: Bool, error: String?, event: String?)] = []
            var discarded: [UUID] = []
            for result in results {
                switch result.outcome {
                case .submitted(let upstreamID, let connectionID):
                    submitted.append((result, upstreamID, connectionID, nil))
                    continue
                case .found(let upstreamID, let connectionID, let detail):
                    submitted.append((result, upstreamID, connectionID, detail))
                    continue
                default: break
                }
                guard let holder = holders[result.messageID], holder.worker == worker, holder.attempt == result.attempt
                else {
                    recorded.stale += 1
                    continue
                }
                switch result.outcome {
                case .submitted, .found: break
                case .failed(let code, let detail):
                    failed.append((result.messageID, code, detail))
                case .retry(let code, let error, let possiblySent, let delay):
                    if holder.pastDeadline {
                        failed.append(
                            (
                                result.messageID, code,
                                "retry deadline passed after \(result.attempt) attempts; last: \(error)"
                            ))
                        recorded.expired += 1
                    } else {
                        retried.append((result.messageID, code, error, possiblySent, delay))
                    }
                case .released(let attempted, let possiblySent, let error):
                    released.append((result.messageID, attempted ? 0 : 1, possiblySent, error, nil))
                case .notTaken(let detail):
                    released.append((result.messageID, 0, false, nil, detail))
                case .discarded:
                    discarded.append(result.messageID)
                }
            }

            if !submitted.isEmpty {
                let statuses = try await connection.query(
                    """
                    WITH u AS (
                        SELECT * FROM unnest(\(submitted.map { $0.0.messageID }), \(submitted.map { $0.upstreamID }),
                                             \(submitted.map { $0.connectionID }), \(submitted.map { $0.0.attempt }),
                                             \(submitted.map { $0.detail }))
                            AS u (id, upstream_id, connection_id, attempt, detail)
                    ), gone AS (
                        DELETE FROM message_outbox o USING u WHERE o.message_id = u.id
                    ), updated AS (
                        UPDATE message m
                        SET status = 'submitted', upstream_id = left(u.upstream_id, 100), upstream_connection_id = u.connection_id,
                            submitted_at = now(), status_at = now()
                        FROM u WHERE m.id = u.id AND m.status IN ('queued', 'scheduled')
                        RETURNING m.reseller_id, m.id, u.detail
                    )
                    INSERT INTO message_event (reseller_id, message_id, status, detail)
                    SELECT reseller_id, id, 'submitted', left(detail, 500) FROM updated
                    UNION ALL
                    SELECT m.reseller_id, m.id, 'late_submission',
                           left(format('the upstream accepted attempt %s as %s after the message was already %s',
                                       u.attempt, u.upstream_id, m.status), 500)
                    FROM u JOIN message m ON m.id = u.id
                    WHERE u.id NOT IN (SELECT id FROM updated)
                      -- The same acceptance recorded again (a result batch retried after its COMMIT's answer was lost,
                      -- a message in doubt found under the id it has) is no news: only another id is a duplicate.
                      AND m.upstream_id IS DISTINCT FROM left(u.upstream_id, 100)
                    RETURNING status
                    """
                ).decode(String.self)
                recorded.submitted = statuses.count(where: { $0 == "submitted" })
                recorded.lateSubmissions = statuses.count - recorded.submitted
                recorded.foundInDoubt = submitted.count(where: { $0.detail != nil })
                recorded.costed = try await Self.postUpstreamCosts(
                    messages: submitted.map { $0.0.messageID }, connections: submitted.map(\.connectionID),
                    on: connection)
            }

            if !failed.isEmpty {
                let reservations = try await connection.query(
                    """
                    WITH u AS (
                        SELECT u.id, u.code, left(u.detail, 500) AS detail
                        FROM unnest(\(failed.map { $0.id }), \(failed.map { $0.code }), \(failed.map { $0.detail })) AS u (id, code, detail)
                    ), gone AS (
                        DELETE FROM message_outbox o USING u WHERE o.message_id = u.id
                    ), updated AS (
                        UPDATE message m SET status = 'failed', status_code = u.code, status_detail = u.detail, status_at = now()
                        FROM u WHERE m.id = u.id AND m.status IN ('queued', 'scheduled')
                        RETURNING m.reseller_id, m.id, u.code, u.detail, m.retail_reservation_id, m.wholesale_reservation_id
                    ), events AS (
                        INSERT INTO message_event (reseller_id, message_id, status, code, detail)
                        SELECT reseller_id, id, 'failed', code, detail FROM updated
                    )
                    SELECT id, retail_reservation_id, wholesale_reservation_id FROM updated
                    """
                ).decode((UUID, UUID?, UUID?).self)
                recorded.failed = reservations.count
                let reservationIDs = reservations.flatMap { [$0.1, $0.2].compactMap { $0 } }
                if !reservationIDs.isEmpty {
                    // Only reservations still pending (a timeout may have expired one), locked so that expiry skips them.
                    let pending = try await connection.query(
                        """
                        SELECT id FROM ledger_transfer WHERE id = ANY(\(reservationIDs)) AND state = 'pending' ORDER BY id FOR UPDATE
                        """
                    ).decode(UUID.self)
                    if !pending.isEmpty {
                        _ = try await LedgerRepository.apply(
                            pending.map { .void($0, code: "message_failed", by: Self.actor) }, linked: false,
                            on: connection)
                    }
                    recorded.voidedReservations = pending.count
                }
            }

            if !retried.isEmpty {
                try await connection.query(
                    """
                    WITH u AS (
                        SELECT u.id, u.code, left(u.error, 400) AS error, u.possibly_sent, u.delay
                        FROM unnest(\(retried.map { $0.id }), \(retried.map { $0.code }), \(retried.map { $0.error }),
                                             \(retried.map { $0.possiblySent }), \(retried.map { $0.delay.inSeconds }))
                            AS u (id, code, error, possibly_sent, delay)
                    ), updated AS (
                        UPDATE message_outbox o
                        SET due_at = least(now() + make_interval(secs => u.delay), o.deadline_at), last_error = u.error,
                            possibly_sent = u.possibly_sent, leased_by = NULL
                        FROM u WHERE o.message_id = u.id
                        RETURNING o.reseller_id, o.message_id, o.attempts, o.due_at, u.code, u.error
                    )
                    INSERT INTO message_event (reseller_id, message_id, status, code, detail)
                    SELECT reseller_id, message_id, 'queued', code,
                           left(format('attempt %s failed: %s; next attempt at %s', attempts, error,
                                       to_char(due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')), 500)
                    FROM updated
                    """)
                recorded.retried = retried.count
            }

            if !released.isEmpty {
                try await connection.query(
                    """
                    WITH updated AS (
                        UPDATE message_outbox o
                        SET due_at = now(), attempts = o.attempts - u.undo, possibly_sent = u.possibly_sent, leased_by = NULL,
                            last_error = coalesce(left(u.error, 500), o.last_error)
                        FROM unnest(\(released.map { $0.id }), \(released.map { $0.undo }), \(released.map { $0.possiblySent }),
                                    \(released.map { $0.error }), \(released.map { $0.event }))
                            AS u (id, undo, possibly_sent, error, event)
                        WHERE o.message_id = u.id
                        RETURNING o.reseller_id, o.message_id, u.event
                    )
                    INSERT INTO message_event (reseller_id, message_id, status, detail)
                    SELECT reseller_id, message_id, 'queued', left(event, 500) FROM updated WHERE event IS NOT NULL
                    """)
                recorded.released = released.count
                recorded.notTaken = released.count(where: { $0.event != nil })
            }

            if !discarded.isEmpty {
                try await connection.query("DELETE FROM message_outbox WHERE message_id = ANY(\(discarded))")
                recorded.discarded = discarded.count
            }
            return recorded
        }
    }

    /// The earliest time a message of `connectionID` listed here by its upstream id was recorded as submitted, if
    /// any is ours: the upstream took that message before then. Used to prove how far back the upstream's report table
    /// reaches.
    package func earliestSubmission(upstreamIDs: [String], connectionID: UUID) async throws -> Date? {
        guard !upstreamIDs.isEmpty else { return nil }
        let earliest = try await pool.query(
            """
            SELECT min(submitted_at) FROM message
            WHERE upstream_id = ANY(\(upstreamIDs)) AND upstream_connection_id = \(connectionID)
            """
        ).first(as: Date?.self)
        return earliest ?? nil
    }

    /// Posts what the upstream charges for each message it took (`messages[i]` through `connections[i]`): the
    /// message's upstream cost, priced at acceptance, from the connection's `upstream_balance` to its `upstream_cost`
    /// account. Once per message whatever the number of `OK` answers (a send in doubt retried and taken twice, a late
    /// `OK` after the message failed): the message row keeps the transfer's id. Free messages post nothing. Returns the
    /// number of transfers posted.
    package static func postUpstreamCosts(messages: [UUID], connections: [UUID], on connection: PostgresConnection)
        async throws -> Int
    {
        try await connection.query(
            """
            WITH u AS (
                SELECT DISTINCT ON (id) id, connection_id FROM unnest(\(messages), \(connections)) AS u (id, connection_id)
            ), costed AS (
                UPDATE message m SET upstream_cost_transfer_id = gen_random_uuid()
                FROM u WHERE m.id = u.id AND m.upstream_cost_transfer_id IS NULL AND m.upstream_cost > 0
                RETURNING m.id, m.reseller_id, m.sub_account_id, m.upstream_cost, m.upstream_cost_transfer_id, u.connection_id
            ), legs AS (
                SELECT c.*, b.id AS balance_id, k.id AS cost_id
                FROM costed c
                JOIN ledger_account b ON b.kind = 'upstream_balance' AND b.upstream_connection_id = c.connection_id
                JOIN ledger_account k ON k.kind = 'upstream_cost' AND k.upstream_connection_id = c.connection_id
            )
            -- One aggregate row: the posting runs exactly once. (Joined to the legs instead, as it once was, a generic
            -- plan ran it again for every leg, and the second run failed on the transfer ids the first had used.)
            SELECT count(*),
                   ledger_post(
                       coalesce(array_agg(upstream_cost_transfer_id ORDER BY id), '{}'),
                       coalesce(array_agg(balance_id ORDER BY id), '{}'), coalesce(array_agg(cost_id ORDER BY id), '{}'),
                       coalesce(array_agg(upstream_cost ORDER BY id), '{}'),
                       coalesce(array_agg('upstream_cost'::text ORDER BY id), '{}'),
                       coalesce(array_agg(reseller_id ORDER BY id), '{}'),
                       coalesce(array_agg(sub_account_id ORDER BY id), '{}'), coalesce(array_agg(id::text ORDER BY id), '{}'),
                       coalesce(array_agg(\(actor)::text ORDER BY id), '{}'),
                       coalesce(array_agg(NULL::timestamptz ORDER BY id), '{}'))
            FROM legs
            """
        ).first(as: Int.self) ?? 0
    }
}
