import Foundation
import Gateway1601
import PostgresLibpq
import ResellerCore
import SMSCore

/// Whether a connection may send.
package enum UpstreamConnectionStatus: String, Codable, Sendable {
    case active
    /// Nothing is sent through it until an admin resumes it; messages for it stay queued.
    case paused
}

/// An upstream connection as admins see it and as the audit log records it: everything but the password (the callback
/// tokens are read but never encoded, so no audit row carries them).
package struct UpstreamConnectionRecord: Codable, Sendable, Equatable {
    package var id: UUID
    package var name: String
    package var baseURL: String
    package var username: String
    /// Whether the stored password is encrypted at rest (sealed under `UPSTREAM_CREDENTIALS_KEY`).
    package var passwordEncrypted: Bool
    package var passwordChangedAt: Date
    package var gsmSinglePart: Int
    package var gsmConcatenatedPart: Int
    package var ucs2SinglePart: Int
    package var ucs2ConcatenatedPart: Int
    package var maximumParts: Int
    package var concurrency: Int
    package var rateLimitPerSecond: Int
    package var requestTimeoutMilliseconds: Int
    /// Calling codes to which the upstream takes single-part messages only (1601 error 119).
    package var singlePartCountries: [String]
    /// The secret in the path of this connection's delivery callbacks.
    package var callbackToken: String
    /// Until when the token that `callbackToken` replaced still works (nil: no such token).
    package var previousCallbackTokenUntil: Date?
    package var status: UpstreamConnectionStatus
    package var pauseReason: String?
    package var pauseCode: Int?
    package var pausedAt: Date?
    package var pausedBy: String?
    package var isDefault: Bool
    /// How many resellers have this connection as their own.
    package var assignedResellers: Int
    package var createdBy: String
    package var createdAt: Date
    package var updatedAt: Date

    package enum CodingKeys: String, CodingKey {
        case id, name, username, concurrency, status
        case baseURL = "base_url"
        case passwordEncrypted = "password_encrypted"
        case passwordChangedAt = "password_changed_at"
        case gsmSinglePart = "gsm_single_part"
        case gsmConcatenatedPart = "gsm_concatenated_part"
        case ucs2SinglePart = "ucs2_single_part"
        case ucs2ConcatenatedPart = "ucs2_concatenated_part"
        case maximumParts = "maximum_parts"
        case rateLimitPerSecond = "rate_limit_per_second"
        case requestTimeoutMilliseconds = "request_timeout_ms"
        case singlePartCountries = "single_part_countries"
        case callbackToken = "callback_token"
        case previousCallbackTokenUntil = "previous_callback_token_until"
        case pauseReason = "pause_reason"
        case pauseCode = "pause_code"
        case pausedAt = "paused_at"
        case pausedBy = "paused_by"
        case isDefault = "is_default"
        case assignedResellers = "assigned_resellers"
        case createdBy = "created_by"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    /// Everything but the callback token: what the audit log keeps.
    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(name, forKey: .name)
        try container.encode(baseURL, forKey: .baseURL)
        try container.encode(username, forKey: .username)
        try container.encode(passwordEncrypted, forKey: .passwordEncrypted)
        try container.encode(passwordChangedAt, forKey: .passwordChangedAt)
        try container.encode(gsmSinglePart, forKey: .gsmSinglePart)
        try container.encode(gsmConcatenatedPart, forKey: .gsmConcatenatedPart)
        try container.encode(ucs2SinglePart, forKey: .ucs2SinglePart)
        try container.encode(ucs2ConcatenatedPart, forKey: .ucs2ConcatenatedPart)
        try container.encode(maximumParts, forKey: .maximumParts)
        try container.encode(concurrency, forKey: .concurrency)
        try container.encode(rateLimitPerSecond, forKey: .rateLimitPerSecond)
        try container.encode(requestTimeoutMilliseconds, forKey: .requestTimeoutMilliseconds)
        try container.encode(singlePartCountries, forKey: .singlePartCountries)
        try container.encodeIfPresent(previousCallbackTokenUntil, forKey: .previousCallbackTokenUntil)
        try container.encode(status, forKey: .status)
        try container.encodeIfPresent(pauseReason, forKey: .pauseReason)
        try container.encodeIfPresent(pauseCode, forKey: .pauseCode)
        try container.encodeIfPresent(pausedAt, forKey: .pausedAt)
        try container.encodeIfPresent(pausedBy, forKey: .pausedBy)
        try container.encode(isDefault, forKey: .isDefault)
        try container.encode(assignedResellers, forKey: .assignedResellers)
        try container.encode(createdBy, forKey: .createdBy)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(updatedAt, forKey: .updatedAt)
    }

    /// The part sizes and maximum parts of this connection.
    package var segmentationPolicy: SegmentationPolicy {
        SegmentationPolicy(
            gsmSinglePart: gsmSinglePart, gsmConcatenatedPart: gsmConcatenatedPart, ucs2SinglePart: ucs2SinglePart,
            ucs2ConcatenatedPart: ucs2ConcatenatedPart, maximumParts: maximumParts)
    }
}

/// What the upstream connection that sends for a reseller allows.
package struct SendingPolicy: Sendable, Hashable {
    package var segmentation: SegmentationPolicy
    /// Calling codes that take single-part messages only (1601 error 119).
    package var singlePartCountries: Set<String>
}

/// The settings an admin writes. `password` nil keeps the stored one (on update).
package struct UpstreamConnectionSettings: Sendable, Equatable {
    package var name: String
    package var baseURL: String
    package var username: String
    package var password: String?
    package var segmentation: SegmentationPolicy = .standard
    package var concurrency: Int = 4
    package var rateLimitPerSecond: Int = 20
    package var requestTimeoutMilliseconds: Int = 15_000
    /// Calling codes that take single-part messages only (119), ascending.
    package var singlePartCountries: [String] = []

    package init(
        name: String, baseURL: String, username: String, password: String?,
        segmentation: SegmentationPolicy = .standard,
        concurrency: Int = 4, rateLimitPerSecond: Int = 20, requestTimeoutMilliseconds: Int = 15_000,
        singlePartCountries: [String] = []
    ) {
        self.singlePartCountries = singlePartCountries
        self.name = name
        self.baseURL = baseURL
        self.username = username
        self.password = password
        self.segmentation = segmentation
        self.concurrency = concurrency
        self.rateLimitPerSecond = rateLimitPerSecond
        self.requestTimeoutMilliseconds = requestTimeoutMilliseconds
    }

    /// The settings of `record`, keeping its password.
    package init(_ record: UpstreamConnectionRecord) {
        self.init(
            name: record.name, baseURL: record.baseURL, username: record.username, password: nil,
            segmentation: record.segmentationPolicy,
            concurrency: record.concurrency, rateLimitPerSecond: record.rateLimitPerSecond,
            requestTimeoutMilliseconds: record.requestTimeoutMilliseconds,
            singlePartCountries: record.singlePartCountries)
    }
}

/// A connection as the dispatcher uses it: its record and its stored password, opened on demand.
package struct UpstreamConnection: Sendable {
    package var record: UpstreamConnectionRecord
    /// `password_secret` as stored.
    package var storedPassword: Data
    package var cipher: UpstreamCredentialCipher

    package var id: UUID { record.id }
    package var isPaused: Bool { record.status == .paused }
    package var segmentationPolicy: SegmentationPolicy { record.segmentationPolicy }

    /// The credentials to send; fails when the password is encrypted under a key this instance does not have.
    package func credentials() throws(UpstreamCredentialCipher.Failure) -> GatewayCredentials {
        GatewayCredentials(
            username: record.username, password: try cipher.open(storedPassword, connectionID: record.id))
    }

    /// The client settings of this connection (POST, its request timeout).
    package func gatewayConfiguration() throws(UpstreamCredentialCipher.Failure) -> Gateway1601Configuration {
        Gateway1601Configuration(
            baseURL: record.baseURL, credentials: try credentials(), method: .post,
            requestTimeout: .milliseconds(record.requestTimeoutMilliseconds))
    }
}

/// Which connection a reseller sends through.
package struct UpstreamAssignmentRecord: Sendable, Equatable {
    package enum Source: String, Sendable {
        /// Its own assignment.
        case own
        /// The platform default.
        case `default`
        /// Neither: its messages stay queued.
        case none
    }

    package var resellerID: UUID
    package var source: Source
    package var connection: UpstreamConnectionRecord?
}

/// What became of a pause.
package enum UpstreamPauseOutcome: Sendable {
    case paused(UpstreamConnectionRecord)
    /// It was paused already; nothing changed (the first reason stays) and nothing was recorded.
    case alreadyPaused(UpstreamConnectionRecord)
    case notFound
}

/// What became of a resume.
package enum UpstreamResumeOutcome: Sendable {
    case resumed(UpstreamConnectionRecord)
    /// It was active; nothing changed.
    case notPaused(UpstreamConnectionRecord)
    case notFound
}

/// What became of an update.
package enum UpstreamUpdateOutcome: Sendable {
    case updated(UpstreamConnectionRecord)
    case notFound
    /// Another connection has the name (case-insensitively).
    case nameTaken
}

extension AuditActor {
    /// The dispatcher pausing a connection after an account-level gateway error.
    package static let dispatcher = AuditActor(actor: "system:dispatcher", role: .system, requestID: nil)
    /// Start-up work: the first default connection, sealing passwords under a new key.
    package static let bootstrap = AuditActor(actor: "system:bootstrap", role: .system, requestID: nil)
}

/// Upstream connections, the platform default and per-reseller assignments. Only the admin reaches the
/// mutations through the API (checked by the handlers); the dispatcher reads through ``connection(forReseller:)``
/// and pauses through ``pause(id:reason:code:by:)``.
///
/// See docs/upstream.md.
package struct UpstreamConnectionRepository: Sendable {
    package let pool: PostgresPool
    package var cipher: UpstreamCredentialCipher = .unencrypted

    package init(pool: PostgresPool, cipher: UpstreamCredentialCipher = .unencrypted) {
        self.pool = pool
        self.cipher = cipher
    }

    package static let columns = """
        c.id, c.name, c.base_url, c.username, get_byte(c.password_secret, 0) = 1 AS password_encrypted, c.password_changed_at,
        c.gsm_single_part, c.gsm_concatenated_part, c.ucs2_single_part, c.ucs2_concatenated_part, c.maximum_parts,
        c.concurrency, c.rate_limit_per_second, c.request_timeout_ms, c.single_part_countries, c.callback_token,
        CASE WHEN c.previous_callback_token_until > now() THEN c.previous_callback_token_until END AS previous_callback_token_until, c.status, c.pause_reason, c.pause_code, c.paused_at, c.paused_by,
        EXISTS (SELECT 1 FROM upstream_connection_default d WHERE d.connection_id = c.id) AS is_default,
        (SELECT count(*) FROM reseller_upstream_connection a WHERE a.connection_id = c.id)::integer AS assigned_resellers,
        c.created_by, c.created_at, c.updated_at
        """

    private static func find(on connection: PostgresConnection, id: UUID, lock: Bool = false) async throws
        -> UpstreamConnectionRecord?
    {
        try await connection.query(
            """
            SELECT \(unescaped: columns) FROM upstream_connection c WHERE c.id = \(id) \(unescaped: lock ? "FOR UPDATE OF c" : "")
            """
        ).decodeRecords(UpstreamConnectionRecord.self).first
    }

    package func find(id: UUID) async throws -> UpstreamConnectionRecord? {
        try await pool.withConnection { try await Self.find(on: $0, id: id) }
    }

    /// One page ordered by id, after the id `cursor`.
    package func list(status: UpstreamConnectionStatus?, after cursor: UUID?, limit: Int) async throws
        -> [UpstreamConnectionRecord]
    {
        try await pool.query(
            """
            SELECT \(unescaped: Self.columns) FROM upstream_connection c
            WHERE (\(status?.rawValue)::text IS NULL OR c.status = \(status?.rawValue)::text)
              AND (\(cursor)::uuid IS NULL OR c.id > \(cursor)::uuid)
            ORDER BY c.id
            LIMIT \(limit)
            """
        ).decodeRecords(UpstreamConnectionRecord.self)
    }

    /// Creates a connection (active, not the default); nil when the name is taken.
    package func create(_ settings: UpstreamConnectionSettings, by actor: AuditActor) async throws
        -> UpstreamConnectionRecord?
    {
        do {
            return try await pool.withTransaction { connection in
                let record = try await Self.insert(settings, cipher: cipher, on: connection, by: actor)
                try await AuditRepository.record(
                    on: connection, by: actor, action: "upstream_connection.create", targetType: "upstream_connection",
                    targetID: record.id,
                    resellerID: nil, before: nil, after: record)
                return record
            }
        } catch let error as PostgresError where error.isUniqueViolation {
            return nil
        }
    }

    private static func insert(
        _ settings: UpstreamConnectionSettings, cipher: UpstreamCredentialCipher, on connection: PostgresConnection,
        by actor: AuditActor
    ) async throws -> UpstreamConnectionRecord {
        let id = UUID()
        let secret = try cipher.seal(settings.password ?? "", connectionID: id)
        let policy = settings.segmentation
        try await connection.query(
            """
            INSERT INTO upstream_connection (
                id, name, base_url, username, password_secret, gsm_single_part, gsm_concatenated_part, ucs2_single_part,
                ucs2_concatenated_part, maximum_parts, concurrency, rate_limit_per_second, request_timeout_ms, single_part_countries,
                created_by)
            VALUES (
                \(id), \(settings.name), \(settings.baseURL), \(settings.username), \(secret), \(policy.gsmSinglePart),
                \(policy.gsmConcatenatedPart), \(policy.ucs2SinglePart), \(policy.ucs2ConcatenatedPart), \(policy.maximumParts),
                \(settings.concurrency), \(settings.rateLimitPerSecond), \(settings.requestTimeoutMilliseconds),
                \(settings.singlePartCountries), \(actor.actor))
            """)
        return try await find(on: connection, id: id)!
    }

    /// Changes a connection under its row lock: `change` gets the current record and returns the new settings (it may
    /// throw, e.g. a validation error, which changes nothing). Settings equal to the current ones without a new password
    /// change and record nothing.
    package func update(
        id: UUID, by actor: AuditActor, _ change: (UpstreamConnectionRecord) throws -> UpstreamConnectionSettings
    ) async throws -> UpstreamUpdateOutcome {
        do {
            return try await pool.withTransaction { connection in
                guard let before = try await Self.find(on: connection, id: id, lock: true) else { return .notFound }
                let settings = try change(before)
                if settings == UpstreamConnectionSettings(before) { return .updated(before) }
                let secret = try settings.password.map { try cipher.seal($0, connectionID: id) }
                let policy = settings.segmentation
                try await connection.query(
                    """
                    UPDATE upstream_connection SET
                        name = \(settings.name), base_url = \(settings.baseURL), username = \(settings.username),
                        password_secret = coalesce(\(secret)::bytea, password_secret),
                        password_changed_at = CASE WHEN \(secret)::bytea IS NULL THEN password_changed_at ELSE now() END,
                        gsm_single_part = \(policy.gsmSinglePart), gsm_concatenated_part = \(policy.gsmConcatenatedPart),
                        ucs2_single_part = \(policy.ucs2SinglePart), ucs2_concatenated_part = \(policy.ucs2ConcatenatedPart),
                        maximum_parts = \(policy.maximumParts), concurrency = \(settings.concurrency),
                        rate_limit_per_second = \(settings.rateLimitPerSecond), request_timeout_ms = \(settings.requestTimeoutMilliseconds),
                        single_part_countries = \(settings.singlePartCountries)
                    WHERE id = \(id)
                    """)
                let after = try await Self.find(on: connection, id: id)!
                try await AuditRepository.record(
                    on: connection, by: actor, action: "upstream_connection.update", targetType: "upstream_connection",
                    targetID: id,
                    resellerID: nil, before: before, after: after)
                return .updated(after)
            }
        } catch let error as PostgresError where error.isUniqueViolation {
            return .nameTaken
        }
    }

    // MARK: - Pause and resume

    /// Pauses a connection: nothing is sent through it until it is resumed. Idempotent: pausing a paused connection
    /// changes and records nothing and keeps the first reason. `code` is the 1601 error that caused it, if any.
    /// The dispatcher calls it with the default actor, `system:dispatcher`.
    package func pause(id: UUID, reason: String, code: GatewayErrorCode?, by actor: AuditActor = .dispatcher)
        async throws -> UpstreamPauseOutcome
    {
        try await pool.withTransaction { connection in
            guard let before = try await Self.find(on: connection, id: id, lock: true) else { return .notFound }
            if before.status == .paused { return .alreadyPaused(before) }
            try await connection.query(
                """
                UPDATE upstream_connection SET status = 'paused', pause_reason = \(String(reason.prefix(500))), pause_code = \(code?.rawValue),
                    paused_at = now(), paused_by = \(actor.actor)
                WHERE id = \(id)
                """)
            let after = try await Self.find(on: connection, id: id)!
            try await AuditRepository.record(
                on: connection, by: actor, action: "upstream_connection.pause", targetType: "upstream_connection",
                targetID: id,
                resellerID: nil, before: before, after: after)
            return .paused(after)
        }
    }

    /// Pauses the connection when `error`'s disposition says so (account-level codes 100 101 104 108 115 116, HTTP
    /// statuses other than 5xx, answers that are not the protocol, unusable settings); nil for any other error.
    package func pause(id: UUID, after error: Gateway1601Error, by actor: AuditActor = .dispatcher) async throws
        -> UpstreamPauseOutcome?
    {
        guard error.disposition == .pauseConnection else { return nil }
        let code: GatewayErrorCode? = if case .gateway(let code) = error { code } else { nil }
        let reason = code.map { "ERROR \($0.rawValue): \($0.meaning)" } ?? error.description
        return try await pause(id: id, reason: reason, code: code, by: actor)
    }

    /// Makes a paused connection active again; an active one is left alone (`.notPaused`).
    package func resume(id: UUID, by actor: AuditActor) async throws -> UpstreamResumeOutcome {
        try await pool.withTransaction { connection in
            guard let before = try await Self.find(on: connection, id: id, lock: true) else { return .notFound }
            guard before.status == .paused else { return .notPaused(before) }
            try await connection.query(
                """
                UPDATE upstream_connection SET status = 'active', pause_reason = NULL, pause_code = NULL, paused_at = NULL, paused_by = NULL
                WHERE id = \(id)
                """)
            let after = try await Self.find(on: connection, id: id)!
            try await AuditRepository.record(
                on: connection, by: actor, action: "upstream_connection.resume", targetType: "upstream_connection",
                targetID: id,
                resellerID: nil, before: before, after: after)
            return .resumed(after)
        }
    }

    /// How long a callback token still works after it was rotated out: time for a person to change the callback URL
    /// at 1601.
    package static let callbackTokenGracePeriod: Duration = .seconds(7 * 24 * 3_600)

    /// Gives the connection a new callback token; the old one works until `callbackTokenGracePeriod` from now (a token
    /// still in its own grace period from an earlier rotation stops at once). Nil when there is no such connection.
    /// Audited without the tokens.
    package func rotateCallbackToken(id: UUID, by actor: AuditActor) async throws -> UpstreamConnectionRecord? {
        try await pool.withTransaction { connection in
            guard let before = try await Self.find(on: connection, id: id, lock: true) else { return nil }
            try await connection.query(
                """
                UPDATE upstream_connection
                SET previous_callback_token = callback_token,
                    previous_callback_token_until = now() + make_interval(secs => \(Self.callbackTokenGracePeriod.inSeconds)),
                    callback_token = replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')
                WHERE id = \(id)
                """)
            let after = try await Self.find(on: connection, id: id)!
            try await AuditRepository.record(
                on: connection, by: actor, action: "upstream_connection.rotate_callback_token",
                targetType: "upstream_connection", targetID: id, resellerID: nil, before: before, after: after)
            return after
        }
    }

    // MARK: - The default and assignments

    /// The platform default, if there is one.
    package func defaultConnection() async throws -> UpstreamConnectionRecord? {
        try await pool.query(
            """
            SELECT \(unescaped: Self.columns) FROM upstream_connection c JOIN upstream_connection_default d ON d.connection_id = c.id
            """
        ).decodeRecords(UpstreamConnectionRecord.self).first
    }

    /// Makes `connectionID` the platform default (nil: no default). The caller has checked that it exists. Setting what
    /// is already set changes and records nothing.
    package func setDefault(connectionID: UUID?, by actor: AuditActor) async throws -> UpstreamConnectionRecord? {
        try await pool.withTransaction { connection in
            try await Self.setDefault(connectionID: connectionID, on: connection, by: actor)
        }
    }

    private static func setDefault(connectionID: UUID?, on connection: PostgresConnection, by actor: AuditActor)
        async throws -> UpstreamConnectionRecord?
    {
        let before = try await connection.query("SELECT connection_id FROM upstream_connection_default FOR UPDATE")
            .first(as: UUID.self)
        if before != connectionID {
            if let connectionID {
                try await connection.query(
                    """
                    INSERT INTO upstream_connection_default (connection_id, assigned_by) VALUES (\(connectionID), \(actor.actor))
                    ON CONFLICT (singleton) DO UPDATE SET connection_id = excluded.connection_id, assigned_by = excluded.assigned_by, assigned_at = now()
                    """)
            } else {
                try await connection.query("DELETE FROM upstream_connection_default")
            }
            try await AuditRepository.record(
                on: connection, by: actor,
                action: connectionID == nil ? "upstream_connection_default.clear" : "upstream_connection_default.set",
                targetType: "upstream_connection_default", targetID: "platform", resellerID: nil,
                before: DefaultAssignment(connectionId: before), after: DefaultAssignment(connectionId: connectionID))
        }
        guard let connectionID else { return nil }
        return try await find(on: connection, id: connectionID)
    }

    private static func assignment(on connection: PostgresConnection, resellerID: UUID) async throws
        -> UpstreamAssignmentRecord?
    {
        guard
            let row = try await connection.query(
                """
                SELECT effective_upstream_connection(r.id),
                       EXISTS (SELECT 1 FROM reseller_upstream_connection a WHERE a.reseller_id = r.id)
                FROM reseller r WHERE r.id = \(resellerID)
                """
            ).first(as: (UUID?, Bool).self)
        else { return nil }
        guard let connectionID = row.0 else {
            return UpstreamAssignmentRecord(resellerID: resellerID, source: .none, connection: nil)
        }
        return UpstreamAssignmentRecord(
            resellerID: resellerID, source: row.1 ? .own : .default,
            connection: try await find(on: connection, id: connectionID))
    }

    /// Which connection the reseller sends through; nil when there is no such reseller.
    package func assignment(resellerID: UUID) async throws -> UpstreamAssignmentRecord? {
        try await pool.withConnection { try await Self.assignment(on: $0, resellerID: resellerID) }
    }

    /// Gives a reseller its own connection (nil: the platform default applies again). The caller has checked that the
    /// reseller and the connection exist. Assigning what is already assigned changes and records nothing.
    package func assign(resellerID: UUID, connectionID: UUID?, by actor: AuditActor) async throws
        -> UpstreamAssignmentRecord?
    {
        try await pool.withTransaction { connection in
            try await ResellerAssignment.set(
                connectionID,
                .init(
                    table: "reseller_upstream_connection", column: "connection_id",
                    setAction: "reseller.upstream_connection.assign",
                    clearAction: "reseller.upstream_connection.unassign", auditField: "connectionId"),
                resellerID: resellerID, by: actor, on: connection)
            return try await Self.assignment(on: connection, resellerID: resellerID)
        }
    }

    /// How default and assignment changes appear in the audit log.
    private struct DefaultAssignment: Encodable {
        var connectionId: UUID?
    }

    // MARK: - For the dispatcher

    private static let secretColumns = "\(columns), c.password_secret"

    private struct SecretRow: Decodable {
        var passwordSecret: Data
        enum CodingKeys: String, CodingKey { case passwordSecret = "password_secret" }
    }

    private func connections(_ rows: PostgresRows) throws -> [UpstreamConnection] {
        let records = try rows.decodeRecords(UpstreamConnectionRecord.self)
        let secrets = try rows.decodeRecords(SecretRow.self)
        return zip(records, secrets).map {
            UpstreamConnection(record: $0, storedPassword: $1.passwordSecret, cipher: cipher)
        }
    }

    /// The connection that sends for `resellerID`: its own, else the platform default; nil when there is neither. A
    /// paused connection is returned too (check ``UpstreamConnection/isPaused``): its messages stay queued.
    package func connection(forReseller resellerID: UUID) async throws -> UpstreamConnection? {
        try connections(
            try await pool.query(
                """
                SELECT \(unescaped: Self.secretColumns) FROM upstream_connection c WHERE c.id = effective_upstream_connection(\(resellerID))
                """)
        ).first
    }

    /// How the reseller's messages are segmented and where long ones may go: from its effective connection, else the
    /// standard segmentation with no country restricted.
    package func sendingPolicy(forReseller resellerID: UUID) async throws -> SendingPolicy {
        try await pool.read(Self.sendingPolicyRead(forReseller: resellerID))
    }

    /// `sendingPolicy` as a read that can share a round trip with others.
    package static func sendingPolicyRead(forReseller resellerID: UUID) -> PostgresRead<SendingPolicy> {
        // Every send plans with this: only the columns it needs, one index probe.
        PostgresRead(
            """
            SELECT gsm_single_part, gsm_concatenated_part, ucs2_single_part, ucs2_concatenated_part, maximum_parts,
                   single_part_countries
            FROM upstream_connection WHERE id = effective_upstream_connection(\(resellerID))
            """
        ) { rows in
            guard let row = try rows.first(as: (Int, Int, Int, Int, Int, [String]).self) else {
                return SendingPolicy(segmentation: .standard, singlePartCountries: [])
            }
            return SendingPolicy(
                segmentation: SegmentationPolicy(
                    gsmSinglePart: row.0, gsmConcatenatedPart: row.1, ucs2SinglePart: row.2,
                    ucs2ConcatenatedPart: row.3,
                    maximumParts: row.4),
                singlePartCountries: Set(row.5))
        }
    }

    /// One connection with its stored password.
    package func connection(id: UUID) async throws -> UpstreamConnection? {
        try connections(
            try await pool.query(
                "SELECT \(unescaped: Self.secretColumns) FROM upstream_connection c WHERE c.id = \(id)")
        ).first
    }

    /// Every connection with its stored password (start-up checks).
    package func allConnections() async throws -> [UpstreamConnection] {
        try connections(
            try await pool.query(
                "SELECT \(unescaped: Self.secretColumns) FROM upstream_connection c ORDER BY c.created_at, c.id"))
    }

    /// Id, name and whether paused, of every connection (for the `upstream_connection_paused` gauge).
    package func pauseStates() async throws -> [(id: UUID, name: String, paused: Bool)] {
        try await pool.query("SELECT id, name, status = 'paused' FROM upstream_connection ORDER BY id")
            .decode((UUID, String, Bool).self).map { (id: $0.0, name: $0.1, paused: $0.2) }
    }

    // MARK: - Start-up

    /// When no connection exists at all, creates one from `settings` and makes it the default, recorded as done by
    /// `system:bootstrap`; nil when a connection exists already. Safe when several instances start at once.
    package func bootstrapDefault(_ settings: UpstreamConnectionSettings) async throws -> UpstreamConnectionRecord? {
        try await pool.withTransaction { connection in
            // One instance at a time decides; the others then see its connection.
            try await connection.query(
                "SELECT pg_advisory_xact_lock(hashtext('sms-reseller upstream_connection bootstrap'))")
            guard
                try await connection.query("SELECT NOT EXISTS (SELECT 1 FROM upstream_connection)").first(as: Bool.self)
                    == true
            else {
                return nil
            }
            let created = try await Self.insert(settings, cipher: cipher, on: connection, by: .bootstrap)
            try await connection.query(
                """
                INSERT INTO upstream_connection_default (connection_id, assigned_by) VALUES (\(created.id), \(AuditActor.bootstrap.actor))
                """)
            let record = try await Self.find(on: connection, id: created.id)!
            try await AuditRepository.record(
                on: connection, by: .bootstrap, action: "upstream_connection.bootstrap",
                targetType: "upstream_connection", targetID: record.id,
                resellerID: nil, before: nil, after: record)
            return record
        }
    }

    /// With a key configured, encrypts every password still stored in the clear; returns the names of the connections
    /// sealed now. Each is recorded (`upstream_connection.seal_password`) without the password.
    package func sealPlaintextPasswords() async throws -> [String] {
        guard cipher.encrypts else { return [] }
        return try await pool.withTransaction { connection in
            let rows = try connections(
                try await connection.query(
                    """
                    SELECT \(unescaped: Self.secretColumns) FROM upstream_connection c WHERE get_byte(c.password_secret, 0) = 0 FOR UPDATE OF c
                    """))
            var sealed: [String] = []
            for row in rows {
                let password = try row.cipher.open(row.storedPassword, connectionID: row.id)
                let secret = try cipher.seal(password, connectionID: row.id)
                // The password itself is unchanged: password_changed_at stays.
                try await connection.query(
                    "UPDATE upstream_connection SET password_secret = \(secret) WHERE id = \(row.id)")
                let after = try await Self.find(on: connection, id: row.id)!
                try await AuditRepository.record(
                    on: connection, by: .bootstrap, action: "upstream_connection.seal_password",
                    targetType: "upstream_connection",
                    targetID: row.id, resellerID: nil, before: row.record, after: after)
                sealed.append(row.record.name)
            }
            return sealed
        }
    }
}
