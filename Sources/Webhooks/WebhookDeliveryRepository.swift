import Foundation
import PostgresLibpq
import ResellerCore

/// A webhook delivery claimed by a sender, with everything its request needs.
package struct ClaimedWebhookDelivery: Decodable, Sendable, Equatable {
    package var deliveryID: UUID
    /// Nil for a send's own callback URL, which belongs to no endpoint.
    package var endpointID: UUID?
    package var eventID: UUID
    /// This claim's attempt number (claims so far, this one included).
    package var attempt: Int
    package var url: String
    /// How the request is made: a signed JSON POST, or the upstream's old-style GET (`0011_delivery_notifications.sql`).
    package var format: WebhookFormat
    /// Empty for a send's own callback URL (old-style requests are not signed).
    package var secret: String
    /// The secret before the last rotation, while it is still valid.
    package var previousSecret: String?
    /// The JSON body, the same bytes at every attempt: `{"id", "type", "occurredAt", "data"}`.
    package var body: String
    /// What an old-style request carries (from the event's payload): the message's number, the 1601 status word, its
    /// `datum` (`gatewayStatusAt`: the report's time when a report set the status) and the client's reference. Nil for
    /// other events.
    package var gatewayID: Int64?
    package var gatewayStatus: String?
    package var statusAt: Date?
    package var reference: String?

    package enum CodingKeys: String, CodingKey {
        case attempt, url, format, secret, body, reference
        case deliveryID = "delivery_id"
        case endpointID = "endpoint_id"
        case eventID = "event_id"
        case previousSecret = "previous_secret"
        case gatewayID = "gateway_id"
        case gatewayStatus = "gateway_status"
        case statusAt = "status_at"
    }
}

/// What one attempt of a claimed delivery gave.
package struct WebhookAttemptResult: Sendable, Equatable {
    package var deliveryID: UUID
    package var attempt: Int
    package var attemptedAt: Date
    /// The receiver's status code, when it answered.
    package var statusCode: Int?
    package var latencyMilliseconds: Int
    /// Nil on success; otherwise what went wrong (a non-2xx status, a timeout, a refused address …).
    package var error: String?
    /// When to try again, if the delivery is not given up.
    package var retryDelay: Duration

    package init(
        deliveryID: UUID, attempt: Int, attemptedAt: Date, statusCode: Int? = nil, latencyMilliseconds: Int,
        error: String? = nil, retryDelay: Duration
    ) {
        self.deliveryID = deliveryID
        self.attempt = attempt
        self.attemptedAt = attemptedAt
        self.statusCode = statusCode
        self.latencyMilliseconds = latencyMilliseconds
        self.error = error
        self.retryDelay = retryDelay
    }

    package var succeeded: Bool { error == nil }
}

/// What recording an attempt did.
package enum WebhookRecordOutcome: Sendable, Equatable {
    case delivered
    case retrying
    /// Retried until its give-up time: failed for good.
    case failed
    /// Another sender holds the delivery now (this one's lease ran out): nothing recorded.
    case stale
}

/// The webhook sender's SQL: claiming due deliveries under a lease, recording attempts, disabling endpoints that fail
/// for too long. Same shape as ``OutboxRepository``: a claim is one `FOR UPDATE SKIP LOCKED` statement that moves
/// `due_at` forward by the lease (a crashed sender's deliveries become due again after it), and a result is recorded
/// only by the sender that still holds the claim.
package struct WebhookDeliveryRepository: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    /// The ranges the admin allows despite the SSRF rules, as stored (CIDR text).
    package func allowedRanges() async throws -> [String] {
        try await pool.query("SELECT unnest(allowed_ranges)::text FROM webhook_settings").decode(String.self)
    }

    /// Forgets finished deliveries (with their attempts) that finished more than `retention` ago, and events older than
    /// that with no delivery left. Pending deliveries and their events stay whatever their age. At most `limit` of each.
    package func purge(olderThan retention: Duration, limit: Int) async throws -> (deliveries: Int, events: Int) {
        let deliveries = try await pool.query(
            """
            WITH old AS (
                SELECT id FROM webhook_delivery
                WHERE state <> 'pending' AND finished_at < now() - make_interval(secs => \(retention.inSeconds))
                LIMIT \(limit)
            )
            DELETE FROM webhook_delivery d USING old WHERE d.id = old.id RETURNING d.id
            """
        ).count
        let events = try await pool.query(
            """
            WITH old AS (
                SELECT id FROM webhook_event e
                WHERE occurred_at < now() - make_interval(secs => \(retention.inSeconds))
                  AND NOT EXISTS (SELECT 1 FROM webhook_delivery d WHERE d.event_id = e.id)
                LIMIT \(limit)
            )
            DELETE FROM webhook_event e USING old WHERE e.id = old.id RETURNING e.id
            """
        ).count
        return (deliveries, events)
    }

    /// Claims up to `limit` due deliveries of active endpoints (or of a send's own callback URL) for `worker` for
    /// `lease`, fairly: no endpoint gets more than `perEndpoint` in flight (claimed and not yet recorded, by any sender),
    /// and the endpoints take turns — every endpoint's oldest due delivery comes before any endpoint's second — so one
    /// endpoint's backlog never delays another's deliveries. A send's callback URL counts as an endpoint of its own
    /// (among the oldest due thousand). Oldest due first within an endpoint.
    package func claim(
        limit: Int, perEndpoint: Int = WebhookSenderSettings().perEndpoint, lease: Duration, worker: String
    ) async throws
        -> [ClaimedWebhookDelivery]
    {
        try await pool.query(
            """
            WITH endpoint_due AS (
                SELECT d.id, d.due_at, d.turn
                FROM webhook_endpoint e
                CROSS JOIN LATERAL (
                    SELECT d.id, d.due_at, row_number() OVER (ORDER BY d.due_at) AS turn
                    FROM webhook_delivery d
                    WHERE d.endpoint_id = e.id AND d.state = 'pending' AND d.due_at <= now()
                    ORDER BY d.due_at
                    LIMIT greatest(0, \(perEndpoint) - (
                        SELECT count(*) FROM webhook_delivery f
                        WHERE f.endpoint_id = e.id AND f.state = 'pending' AND f.leased_by IS NOT NULL AND f.due_at > now()))
                ) d
                WHERE e.status = 'active'
            ), callback_due AS (
                SELECT c.id, c.due_at, c.turn FROM (
                    SELECT d.id, d.due_at, row_number() OVER (PARTITION BY d.url ORDER BY d.due_at) AS turn
                    FROM (
                        SELECT id, due_at, url FROM webhook_delivery
                        WHERE endpoint_id IS NULL AND state = 'pending' AND due_at <= now()
                        ORDER BY due_at LIMIT 1000
                    ) d
                ) c
                WHERE c.turn <= \(perEndpoint)
            ), due AS (
                SELECT d.id FROM webhook_delivery d
                JOIN (SELECT * FROM endpoint_due UNION ALL SELECT * FROM callback_due) r ON r.id = d.id
                WHERE d.state = 'pending' AND d.due_at <= now()
                ORDER BY r.turn, r.due_at
                LIMIT \(limit)
                FOR UPDATE OF d SKIP LOCKED
            ), claimed AS (
                UPDATE webhook_delivery d
                SET due_at = now() + make_interval(secs => \(lease.inSeconds)), attempts = d.attempts + 1, leased_by = \(worker)
                FROM due WHERE d.id = due.id
                RETURNING d.id, d.endpoint_id, d.event_id, d.attempts, d.url
            )
            SELECT c.id AS delivery_id, c.endpoint_id, c.event_id, c.attempts AS attempt, coalesce(c.url, e.url) AS url,
                   coalesce(e.format, '1601') AS format, coalesce(e.secret, '') AS secret,
                   CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END AS previous_secret,
                   jsonb_build_object(
                       'id', ev.id, 'type', ev.type,
                       'occurredAt', to_char(ev.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                       'data', ev.payload)::text AS body,
                   (ev.payload->>'gatewayId')::bigint AS gateway_id, ev.payload->>'gatewayStatus' AS gateway_status,
                   (ev.payload->>'gatewayStatusAt')::timestamptz AS status_at, ev.payload->>'reference' AS reference
            FROM claimed c
            LEFT JOIN webhook_endpoint e ON e.id = c.endpoint_id
            JOIN webhook_event ev ON ev.id = c.event_id
            """
        ).decodeRecords(ClaimedWebhookDelivery.self)
    }

    /// Records `result` of `worker`'s claim: the attempt in the log, the delivery delivered, due again after the
    /// result's delay, or failed past its give-up time. An endpoint's `failing_since` is cleared by a success and set
    /// by the first failure after one; an endpoint failing for `disableAfter` is disabled, and its owner's other
    /// endpoints get `webhook.endpoint_disabled` (same transaction). A send's own callback URL has no endpoint: its
    /// success, first failure and final failure go into the message's history instead (`callback:…`).
    package func record(_ result: WebhookAttemptResult, worker: String, disableAfter: Duration) async throws
        -> WebhookRecordOutcome
    {
        try await pool.withTransaction { connection in
            guard
                let holder = try await connection.query(
                    """
                    SELECT leased_by, attempts, endpoint_id, give_up_at <= now(), message_id FROM webhook_delivery
                    WHERE id = \(result.deliveryID) AND state = 'pending' FOR UPDATE
                    """
                ).first(as: (String?, Int, UUID?, Bool, UUID?).self),
                holder.0 == worker, holder.1 == result.attempt
            else { return .stale }
            guard let endpointID = holder.2 else {
                return try await Self.recordCallback(result, giveUp: holder.3, messageID: holder.4, on: connection)
            }
            try await connection.query(
                """
                INSERT INTO webhook_attempt (delivery_id, attempt, attempted_at, status_code, latency_ms, error)
                VALUES (\(result.deliveryID), \(result.attempt), \(result.attemptedAt), \(result.statusCode),
                        \(result.latencyMilliseconds), left(\(result.error), 500))
                """)
            if result.succeeded {
                try await connection.query(
                    """
                    UPDATE webhook_delivery
                    SET state = 'delivered', finished_at = now(), leased_by = NULL, last_status_code = \(result.statusCode),
                        last_latency_ms = \(result.latencyMilliseconds), last_error = NULL
                    WHERE id = \(result.deliveryID)
                    """)
                try await connection.query(
                    "UPDATE webhook_endpoint SET failing_since = NULL WHERE id = \(endpointID) AND failing_since IS NOT NULL"
                )
                return .delivered
            }
            let giveUp = holder.3
            try await connection.query(
                """
                UPDATE webhook_delivery
                SET state = CASE WHEN \(giveUp) THEN 'failed' ELSE 'pending' END,
                    finished_at = CASE WHEN \(giveUp) THEN now() END,
                    due_at = CASE WHEN \(giveUp) THEN due_at ELSE now() + make_interval(secs => \(result.retryDelay.inSeconds)) END,
                    leased_by = NULL, last_status_code = \(result.statusCode), last_latency_ms = \(result.latencyMilliseconds),
                    last_error = left(\(result.error), 500)
                WHERE id = \(result.deliveryID)
                """)
            try await connection.query(
                """
                UPDATE webhook_endpoint SET failing_since = \(result.attemptedAt) WHERE id = \(endpointID) AND failing_since IS NULL
                """)
            try await connection.query(
                """
                WITH disabled AS (
                    UPDATE webhook_endpoint
                    SET status = 'disabled', status_reason = left('every delivery failed since ' || failing_since || '; last: ' || \(result.error), 500)
                    WHERE id = \(endpointID) AND status = 'active' AND failing_since <= now() - make_interval(secs => \(disableAfter.inSeconds))
                    RETURNING id, reseller_id, sub_account_id, url, failing_since, status_reason
                )
                SELECT webhook_emit('webhook.endpoint_disabled', reseller_id, sub_account_id, jsonb_build_object(
                    'webhookId', id, 'subAccountId', sub_account_id, 'url', url, 'failingSince', failing_since,
                    'reason', status_reason))
                FROM disabled
                """)
            return giveUp ? .failed : .retrying
        }
    }

    /// `record` for a delivery to a send's own callback URL. The history gets the first failure, not every retry: a
    /// dead URL is retried for days.
    private static func recordCallback(
        _ result: WebhookAttemptResult, giveUp: Bool, messageID: UUID?, on connection: PostgresConnection
    ) async throws -> WebhookRecordOutcome {
        try await connection.query(
            """
            INSERT INTO webhook_attempt (delivery_id, attempt, attempted_at, status_code, latency_ms, error)
            VALUES (\(result.deliveryID), \(result.attempt), \(result.attemptedAt), \(result.statusCode),
                    \(result.latencyMilliseconds), left(\(result.error), 500))
            """)
        let outcome: WebhookRecordOutcome = result.succeeded ? .delivered : giveUp ? .failed : .retrying
        try await connection.query(
            """
            UPDATE webhook_delivery
            SET state = \(outcome == .delivered ? "delivered" : outcome == .failed ? "failed" : "pending"),
                finished_at = CASE WHEN \(outcome != .retrying) THEN now() END,
                due_at = CASE WHEN \(outcome == .retrying) THEN now() + make_interval(secs => \(result.retryDelay.inSeconds)) ELSE due_at END,
                leased_by = NULL, last_status_code = \(result.statusCode), last_latency_ms = \(result.latencyMilliseconds),
                last_error = left(\(result.error), 500)
            WHERE id = \(result.deliveryID)
            """)
        guard let messageID, outcome != .retrying || result.attempt == 1 else { return outcome }
        let status =
            switch outcome {
            case .delivered: "callback:delivered"
            case .failed: "callback:failed"
            default: "callback:retrying"
            }
        let detail =
            "notification, attempt \(result.attempt): "
            + (result.error ?? "answered \(result.statusCode.map(String.init) ?? "?")")
        try await connection.query(
            """
            INSERT INTO message_event (reseller_id, message_id, status, detail)
            SELECT d.reseller_id, \(messageID), \(status),
                   left(coalesce(ev.payload->>'gatewayStatus' || ' ', '') || \(detail)::text
                        || CASE WHEN \(outcome == .retrying) THEN '; retried until ' || to_char(d.give_up_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') ELSE '' END,
                        500)
            FROM webhook_delivery d JOIN webhook_event ev ON ev.id = d.event_id
            WHERE d.id = \(result.deliveryID)
            """)
        return outcome
    }
}
