import Foundation
import PostgresLibpq
import ResellerCore

/// A webhook endpoint as the API shows it (never its secrets).
package struct WebhookEndpointRecord: Decodable, Sendable {
    package var id: UUID
    /// Nil for a platform endpoint (the admin's, for platform events).
    package var resellerID: UUID?
    package var subAccountID: UUID?
    package var url: String
    package var format: WebhookFormat
    /// As stored (`text[]`, sorted); read through `eventTypes`.
    private var eventTypeNames: [String]
    package var description: String?
    package var status: WebhookEndpointStatus
    package var statusReason: String?
    package var failingSince: Date?
    package var previousSecretExpiresAt: Date?
    package var createdAt: Date
    package var updatedAt: Date

    package enum CodingKeys: String, CodingKey {
        case id, url, format, description, status
        case resellerID = "reseller_id"
        case subAccountID = "sub_account_id"
        case eventTypeNames = "event_types"
        case statusReason = "status_reason"
        case failingSince = "failing_since"
        case previousSecretExpiresAt = "previous_secret_expires_at"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    /// What the audit log keeps of it.
    package struct Audited: Encodable {
        package var url: String
        package var format: WebhookFormat
        package var eventTypes: [WebhookEventType]
        package var description: String?
        package var status: WebhookEndpointStatus
    }

    /// The event types it receives (the database's CHECK admits no others).
    package var eventTypes: [WebhookEventType] { eventTypeNames.compactMap(WebhookEventType.init(rawValue:)) }

    package var audited: Audited {
        Audited(url: url, format: format, eventTypes: eventTypes, description: description, status: status)
    }
}

/// One delivery of the log, with its attempts.
package struct WebhookDeliveryRecord: Decodable, Sendable {
    package struct Attempt: Decodable, Sendable {
        package var attempt: Int
        package var attemptedAt: Date
        package var statusCode: Int?
        package var latencyMs: Int
        package var error: String?
    }

    package var id: UUID
    package var endpointID: UUID
    package var eventID: UUID
    package var eventType: WebhookEventType
    package var occurredAt: Date
    package var state: WebhookDeliveryState
    package var attempts: Int
    package var lastStatusCode: Int?
    package var lastLatencyMs: Int?
    package var lastError: String?
    package var dueAt: Date
    package var giveUpAt: Date
    package var createdAt: Date
    package var finishedAt: Date?
    /// JSON array of ``Attempt`` (camelCase keys), oldest first.
    package var log: String

    package enum CodingKeys: String, CodingKey {
        case id, state, attempts, log
        case endpointID = "endpoint_id"
        case eventID = "event_id"
        case eventType = "event_type"
        case occurredAt = "occurred_at"
        case lastStatusCode = "last_status_code"
        case lastLatencyMs = "last_latency_ms"
        case lastError = "last_error"
        case dueAt = "due_at"
        case giveUpAt = "give_up_at"
        case createdAt = "created_at"
        case finishedAt = "finished_at"
    }
}

/// Why a replay or redelivery was refused.
package enum WebhookRequeueRefusal: Error, Sendable, Equatable {
    /// More than `calls` within `window` for the endpoint; the next is accepted after `retryAfter`.
    case rateLimited(calls: Int, window: Duration, retryAfter: Duration)
    /// `pending` deliveries wait for the endpoint already; `adding` more would pass `cap`.
    case overCap(pending: Int, adding: Int, cap: Int)
}

/// Webhook endpoints, their delivery log, redelivery and replay, and the admin's SSRF exceptions. Every lookup by id
/// is scoped by the caller's tenant: a sub-account sees its own endpoints, a reseller its own and its sub-accounts'.
///
/// See docs/webhooks.md.
package struct WebhookEndpointRepository: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    private static let columns: PostgresQuery = """
        id, reseller_id, sub_account_id, url, format, event_types, description, status, status_reason, failing_since,
        CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END AS previous_secret_expires_at,
        created_at, updated_at
        """

    /// `whsec_` and 48 hex digits (24 random bytes).
    package static func newSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        return "whsec_"
            + (0..<24).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// The endpoints of exactly this owner: a sub-account's own, or (`subAccountID` nil) the reseller-wide ones.
    package func list(resellerID: UUID, subAccountID: UUID?) async throws -> [WebhookEndpointRecord] {
        try await pool.query(
            """
            SELECT \(Self.columns) FROM webhook_endpoint
            WHERE reseller_id = \(resellerID) AND sub_account_id IS NOT DISTINCT FROM \(subAccountID)::uuid
            ORDER BY created_at, id
            """
        ).decodeRecords(WebhookEndpointRecord.self)
    }

    /// The platform's own endpoints (no reseller): the admin's, for platform events.
    package func listPlatform() async throws -> [WebhookEndpointRecord] {
        try await pool.query(
            """
            SELECT \(Self.columns) FROM webhook_endpoint WHERE reseller_id IS NULL ORDER BY created_at, id
            """
        ).decodeRecords(WebhookEndpointRecord.self)
    }

    package func find(id: UUID, scope: TenantScope) async throws -> WebhookEndpointRecord? {
        try await pool.query(
            """
            SELECT \(Self.columns) FROM webhook_endpoint
            WHERE id = \(id) AND (\(scope.resellerID)::uuid IS NULL OR reseller_id = \(scope.resellerID)::uuid)
              AND (\(scope.subAccountID)::uuid IS NULL OR sub_account_id = \(scope.subAccountID)::uuid)
            """
        ).decodeRecords(WebhookEndpointRecord.self).first
    }

    /// Registers an endpoint; its secret is returned this once.
    package func create(
        resellerID: UUID?, subAccountID: UUID?, url: String, format: WebhookFormat, eventTypes: [WebhookEventType],
        description: String?,
        by actor: AuditActor
    ) async throws -> (WebhookEndpointRecord, secret: String) {
        let secret = Self.newSecret()
        let record = try await pool.withTransaction { connection in
            let record = try await connection.query(
                """
                INSERT INTO webhook_endpoint (reseller_id, sub_account_id, url, format, event_types, description, secret, created_by)
                VALUES (\(resellerID)::uuid, \(subAccountID)::uuid, \(url), \(format.rawValue), \(eventTypes.map(\.rawValue)), \(description), \(secret), \(actor.actor))
                RETURNING \(Self.columns)
                """
            ).decodeRecords(WebhookEndpointRecord.self)[0]
            try await AuditRepository.record(
                on: connection, by: actor, action: "webhook.create", targetType: "webhook_endpoint",
                targetID: record.id,
                resellerID: resellerID, before: nil, after: record.audited)
            return record
        }
        return (record, secret)
    }

    package struct Changes: Sendable {
        package var url: String?
        package var eventTypes: [WebhookEventType]?
        package var description: String?
        package var status: WebhookEndpointStatus?

        package init(
            url: String? = nil, eventTypes: [WebhookEventType]? = nil, description: String? = nil,
            status: WebhookEndpointStatus? = nil
        ) {
            self.url = url
            self.eventTypes = eventTypes
            self.description = description
            self.status = status
        }
    }

    /// Applies `changes`; re-enabling clears the failure record. Nil when not found in `scope`.
    package func update(id: UUID, scope: TenantScope, _ changes: Changes, by actor: AuditActor) async throws
        -> WebhookEndpointRecord?
    {
        let eventTypes = changes.eventTypes?.map(\.rawValue)
        let status = changes.status?.rawValue
        return try await pool.withTransaction { connection in
            guard
                let before = try await connection.query(
                    """
                    SELECT \(Self.columns) FROM webhook_endpoint
                    WHERE id = \(id) AND (\(scope.resellerID)::uuid IS NULL OR reseller_id = \(scope.resellerID)::uuid)
                      AND (\(scope.subAccountID)::uuid IS NULL OR sub_account_id = \(scope.subAccountID)::uuid)
                    FOR NO KEY UPDATE
                    """
                ).decodeRecords(WebhookEndpointRecord.self).first
            else { return nil }
            let after = try await connection.query(
                """
                UPDATE webhook_endpoint
                SET url = coalesce(\(changes.url), url), event_types = coalesce(\(eventTypes)::text[], event_types),
                    description = coalesce(\(changes.description), description), status = coalesce(\(status), status),
                    status_reason = CASE WHEN \(status)::text IS NULL THEN status_reason
                                         WHEN \(status)::text = 'disabled' THEN 'disabled by ' || \(actor.actor) END,
                    failing_since = CASE WHEN \(status)::text = 'active' AND status = 'disabled' THEN NULL ELSE failing_since END
                WHERE id = \(id)
                RETURNING \(Self.columns)
                """
            ).decodeRecords(WebhookEndpointRecord.self)[0]
            try await AuditRepository.record(
                on: connection, by: actor, action: "webhook.update", targetType: "webhook_endpoint", targetID: id,
                resellerID: before.resellerID, before: before.audited, after: after.audited)
            return after
        }
    }

    /// Removes the endpoint with its deliveries and their log; the events stay. False when not found in `scope`.
    package func delete(id: UUID, scope: TenantScope, by actor: AuditActor) async throws -> Bool {
        try await pool.withTransaction { connection in
            guard
                let before = try await connection.query(
                    """
                    DELETE FROM webhook_endpoint
                    WHERE id = \(id) AND (\(scope.resellerID)::uuid IS NULL OR reseller_id = \(scope.resellerID)::uuid)
                      AND (\(scope.subAccountID)::uuid IS NULL OR sub_account_id = \(scope.subAccountID)::uuid)
                    RETURNING \(Self.columns)
                    """
                ).decodeRecords(WebhookEndpointRecord.self).first
            else { return false }
            // Not a foreign key (see the migration): the deliveries go by hand, their attempts with them.
            try await connection.query("DELETE FROM webhook_delivery WHERE endpoint_id = \(id)")
            try await AuditRepository.record(
                on: connection, by: actor, action: "webhook.delete", targetType: "webhook_endpoint", targetID: id,
                resellerID: before.resellerID, before: before.audited, after: nil)
            return true
        }
    }

    /// A new secret; the current one stays valid for `previousValidFor` (none when zero). Nil when not found.
    package func rotateSecret(id: UUID, scope: TenantScope, previousValidFor: Duration, by actor: AuditActor)
        async throws -> (WebhookEndpointRecord, secret: String)?
    {
        let secret = Self.newSecret()
        return try await pool.withTransaction { connection in
            guard
                let record = try await connection.query(
                    """
                    UPDATE webhook_endpoint
                    SET previous_secret = CASE WHEN \(previousValidFor.inSeconds) > 0 THEN secret END,
                        previous_secret_expires_at = CASE WHEN \(previousValidFor.inSeconds) > 0
                                                          THEN now() + make_interval(secs => \(previousValidFor.inSeconds)) END,
                        secret = \(secret)
                    WHERE id = \(id) AND (\(scope.resellerID)::uuid IS NULL OR reseller_id = \(scope.resellerID)::uuid)
                      AND (\(scope.subAccountID)::uuid IS NULL OR sub_account_id = \(scope.subAccountID)::uuid)
                    RETURNING \(Self.columns)
                    """
                ).decodeRecords(WebhookEndpointRecord.self).first
            else { return nil }
            try await AuditRepository.record(
                on: connection, by: actor, action: "webhook.rotate_secret", targetType: "webhook_endpoint",
                targetID: id,
                resellerID: record.resellerID, before: nil,
                after: ["previousSecretValidSeconds": Int(previousValidFor.inSeconds)])
            return (record, secret)
        }
    }

    private static let deliveryColumns: PostgresQuery = """
        d.id, d.endpoint_id, d.event_id, ev.type AS event_type, ev.occurred_at, d.state, d.attempts, d.last_status_code,
        d.last_latency_ms, d.last_error, d.due_at, d.give_up_at, d.created_at, d.finished_at,
        coalesce((SELECT jsonb_agg(jsonb_build_object(
                      'attempt', a.attempt, 'attemptedAt', to_char(a.attempted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                      'statusCode', a.status_code, 'latencyMs', a.latency_ms, 'error', a.error) ORDER BY a.id)
                  FROM webhook_attempt a WHERE a.delivery_id = d.id), '[]')::text AS log
        """

    /// The endpoint's deliveries, newest first.
    package func deliveries(endpointID: UUID, state: WebhookDeliveryState?, limit: Int) async throws
        -> [WebhookDeliveryRecord]
    {
        let state = state?.rawValue
        return try await pool.query(
            """
            SELECT \(Self.deliveryColumns)
            FROM webhook_delivery d JOIN webhook_event ev ON ev.id = d.event_id
            WHERE d.endpoint_id = \(endpointID) AND (\(state)::text IS NULL OR d.state = \(state)::text)
            ORDER BY d.created_at DESC, d.id DESC
            LIMIT \(limit)
            """
        ).decodeRecords(WebhookDeliveryRecord.self)
    }

    /// A new delivery of `deliveryID`'s event to its endpoint, due now. Nil when the endpoint has no such delivery;
    /// ``WebhookRequeueRefusal`` past the redelivery rate or the pending cap.
    package func redeliver(endpointID: UUID, deliveryID: UUID) async throws -> WebhookDeliveryRecord? {
        try await pool.withTransaction { connection in
            guard
                try await connection.query(
                    "SELECT 1 FROM webhook_delivery WHERE id = \(deliveryID) AND endpoint_id = \(endpointID)"
                ).count == 1
            else { return nil }
            try await Self.admit(.redeliver, endpointID: endpointID, on: connection)
            try await Self.checkCap(endpointID: endpointID, adding: 1, on: connection)
            let id = try await connection.query(
                """
                INSERT INTO webhook_delivery (reseller_id, endpoint_id, event_id)
                SELECT reseller_id, endpoint_id, event_id FROM webhook_delivery WHERE id = \(deliveryID) AND endpoint_id = \(endpointID)
                RETURNING id
                """
            ).first(as: UUID.self)
            return try await connection.query(
                """
                SELECT \(Self.deliveryColumns) FROM webhook_delivery d JOIN webhook_event ev ON ev.id = d.event_id WHERE d.id = \(id)
                """
            ).decodeRecords(WebhookDeliveryRecord.self).first
        }
    }

    /// The most events one replay queues.
    package static let replayLimit = 10_000

    /// The most deliveries that may wait (pending) for one endpoint before a replay or redelivery is refused. Live events
    /// are queued whatever the count (docs/webhooks.md, "Fairness and limits").
    package static let pendingCap = 10_000

    /// Replays accepted per endpoint within a sliding window.
    package static let replayRate = (calls: 10, window: Duration.seconds(3600))

    /// Redeliveries accepted per endpoint within a sliding window.
    package static let redeliverRate = (calls: 60, window: Duration.seconds(60))

    /// What asks for deliveries beyond the live events, each with its own rate.
    package enum Requeue: String, Sendable {
        case replay, redeliver

        package var rate: (calls: Int, window: Duration) {
            switch self {
            case .replay: WebhookEndpointRepository.replayRate
            case .redeliver: WebhookEndpointRepository.redeliverRate
            }
        }
    }

    /// Counts a replay or redelivery of `endpointID`, or refuses it past the rate of `kind`. Takes the endpoint's row
    /// lock to the end of the transaction, so that concurrent calls for one endpoint are counted (and checked against
    /// the cap) one after the other; a call refused later in the transaction is not counted.
    private static func admit(_ kind: Requeue, endpointID: UUID, on connection: PostgresConnection) async throws {
        let window = kind.rate.window.inSeconds
        try await connection.query("SELECT 1 FROM webhook_endpoint WHERE id = \(endpointID) FOR NO KEY UPDATE")
        try await connection.query(
            """
            DELETE FROM webhook_requeue
            WHERE endpoint_id = \(endpointID) AND kind = \(kind.rawValue) AND called_at <= now() - make_interval(secs => \(window))
            """)
        let (calls, wait) =
            try await connection.query(
                """
                SELECT count(*)::int,
                       coalesce(ceil(extract(epoch FROM min(called_at) + make_interval(secs => \(window)) - clock_timestamp())), 1)::int
                FROM webhook_requeue WHERE endpoint_id = \(endpointID) AND kind = \(kind.rawValue)
                """
            ).first(as: (Int, Int).self) ?? (0, 1)
        if calls >= kind.rate.calls {
            throw WebhookRequeueRefusal.rateLimited(
                calls: kind.rate.calls, window: kind.rate.window, retryAfter: .seconds(max(1, wait)))
        }
        try await connection.query(
            "INSERT INTO webhook_requeue (endpoint_id, kind) VALUES (\(endpointID), \(kind.rawValue))")
    }

    /// Refuses adding `adding` deliveries to `endpointID` when that would pass ``pendingCap``.
    private static func checkCap(endpointID: UUID, adding: Int, on connection: PostgresConnection) async throws {
        let pending =
            try await connection.query(
                "SELECT count(*)::int FROM webhook_delivery WHERE endpoint_id = \(endpointID) AND state = 'pending'"
            ).first(as: Int.self) ?? 0
        if pending + adding > pendingCap {
            throw WebhookRequeueRefusal.overCap(pending: pending, adding: adding, cap: pendingCap)
        }
    }

    /// New deliveries to `endpoint` of the stored events of `[from, to)` that it would get now (owner and types), in
    /// the order they occurred. A `1601` endpoint gets the delivery notifications of batches with delivery reports
    /// and no callback URL of their own (for a sub-account's endpoint) only; a signed one no BUFFERED notification.
    /// Nil when there are more than ``replayLimit``; ``WebhookRequeueRefusal`` past the replay rate or the pending cap.
    package func replay(_ endpoint: WebhookEndpointRecord, from: Date, to: Date) async throws -> Int? {
        try await pool.withTransaction { connection in
            try await Self.admit(.replay, endpointID: endpoint.id, on: connection)
            let legacy = endpoint.format == .legacy1601
            // A platform endpoint's events belong to no reseller.
            let owner: PostgresQuery = endpoint.resellerID.map { "ev.reseller_id = \($0)" } ?? "ev.reseller_id IS NULL"
            let matching: PostgresQuery = """
                FROM webhook_event ev
                WHERE \(owner)
                  AND (\(endpoint.subAccountID)::uuid IS NULL OR ev.sub_account_id = \(endpoint.subAccountID)::uuid)
                  AND (ev.type = ANY (\(endpoint.eventTypes.map(\.rawValue))::text[]) OR (ev.type = 'webhook.endpoint_disabled' AND NOT \(legacy)))
                  AND ev.occurred_at >= \(from) AND ev.occurred_at < \(to)
                  AND CASE WHEN \(legacy)
                      THEN ev.payload->>'gatewayStatus' IS NOT NULL AND EXISTS (
                               SELECT 1 FROM message_batch b
                               WHERE b.reseller_id = ev.reseller_id AND b.id = (ev.payload->>'batchId')::uuid AND b.delivery_reports
                                 AND (b.callback_url IS NULL OR \(endpoint.subAccountID)::uuid IS NULL))
                      ELSE NOT ev.legacy_only END
                """
            let count = try await connection.query("SELECT count(*) \(matching)").first(as: Int.self) ?? 0
            guard count <= Self.replayLimit else { return nil }
            try await Self.checkCap(endpointID: endpoint.id, adding: count, on: connection)
            try await connection.query(
                """
                INSERT INTO webhook_delivery (reseller_id, endpoint_id, event_id, due_at)
                SELECT ev.reseller_id, \(endpoint.id), ev.id, now() + (row_number() OVER (ORDER BY ev.occurred_at, ev.id)) * interval '1 microsecond'
                \(matching)
                """)
            return count
        }
    }

    package func allowedRanges() async throws -> [String] {
        try await pool.query("SELECT unnest(allowed_ranges)::text FROM webhook_settings").decode(String.self)
    }

    package func setAllowedRanges(_ ranges: [String], by actor: AuditActor) async throws -> [String] {
        try await pool.withTransaction { connection in
            try await connection.query("SELECT 1 FROM webhook_settings FOR UPDATE")
            let before = try await connection.query("SELECT unnest(allowed_ranges)::text FROM webhook_settings").decode(
                String.self)
            try await connection.query(
                """
                UPDATE webhook_settings SET allowed_ranges = \(ranges)::cidr[], updated_by = \(actor.actor), updated_at = now()
                """)
            let after = try await connection.query("SELECT unnest(allowed_ranges)::text FROM webhook_settings").decode(
                String.self)
            try await AuditRepository.record(
                on: connection, by: actor, action: "webhook.settings", targetType: "webhook_settings",
                targetID: "webhook_settings",
                resellerID: nil, before: ["allowedRanges": before], after: ["allowedRanges": after])
            return after
        }
    }
}
