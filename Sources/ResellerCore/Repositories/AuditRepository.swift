import Foundation
import PostgresLibpq

/// Who is changing something, for the audit log: taken from the request's principal and id.
package struct AuditActor: Sendable {
    /// What the audit log's `actor_role` says: a principal's role, or the service itself.
    package enum ActorRole: String, Sendable {
        case admin
        case reseller
        case subAccount = "sub_account"
        /// The service on its own behalf: the command line, the dispatcher, the first start.
        case system

        package init(_ role: Role) {
            switch role {
            case .admin: self = .admin
            case .reseller: self = .reseller
            case .subAccount: self = .subAccount
            }
        }
    }

    package var actor: String
    package var role: ActorRole
    package var requestID: String?
    /// The request's `traceparent` while tracing is on: a send stores it so that its dispatch continues the trace.
    package var traceparent: String? = RequestScope.traceparent

    package init(_ principal: Principal, requestID: String? = RequestScope.requestID) {
        self.actor = principal.actor
        self.role = ActorRole(principal.role)
        self.requestID = requestID
    }

    package init(actor: String, role: ActorRole, requestID: String?) {
        self.actor = actor
        self.role = role
        self.requestID = requestID
    }

    /// The command-line bootstrap.
    package static let cli = AuditActor(actor: "cli", role: .system, requestID: nil)
}

/// One row of the audit log.
package struct AuditEntryRecord: Decodable, Sendable {
    package var id: Int64
    package var at: Date
    package var actor: String
    package var actorRole: String
    package var resellerID: UUID?
    package var action: String
    package var targetType: String
    package var targetID: String
    package var before: String?
    package var after: String?
    package var requestID: String?

    package enum CodingKeys: String, CodingKey {
        case id, at, actor, action, before, after
        case actorRole = "actor_role"
        case resellerID = "reseller_id"
        case targetType = "target_type"
        case targetID = "target_id"
        case requestID = "request_id"
    }
}

/// The append-only audit log. `record` is always called on the connection of the transaction
/// that makes the change, so an entry exists exactly when the change committed.
package struct AuditRepository: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    package static func json(_ value: (any Encodable)?) throws -> String? {
        guard let value else { return nil }
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Appends one entry inside the caller's transaction.
    package static func record(
        on connection: PostgresConnection, by actor: AuditActor, action: String, targetType: String, targetID: UUID,
        resellerID: UUID?, before: (any Encodable)?, after: (any Encodable)?
    ) async throws {
        try await record(
            on: connection, by: actor, action: action, targetType: targetType,
            targetID: targetID.uuidString.lowercased(),
            resellerID: resellerID, before: before, after: after)
    }

    /// Appends one entry about a target without a UUID of its own (the platform's price defaults).
    package static func record(
        on connection: PostgresConnection, by actor: AuditActor, action: String, targetType: String, targetID: String,
        resellerID: UUID?, before: (any Encodable)?, after: (any Encodable)?
    ) async throws {
        let beforeJSON = try json(before)
        let afterJSON = try json(after)
        try await connection.query(
            """
            INSERT INTO audit_log (actor, actor_role, reseller_id, action, target_type, target_id, before, after, request_id)
            VALUES (\(actor.actor), \(actor.role.rawValue), \(resellerID), \(action), \(targetType), \(targetID),
                    \(beforeJSON)::jsonb, \(afterJSON)::jsonb, \(actor.requestID))
            """)
    }

    /// Newest first; `before` is the id of the last entry of the previous page.
    package func list(scope: TenantScope, action: String?, targetID: String?, before cursor: Int64?, limit: Int)
        async throws -> [AuditEntryRecord]
    {
        try await pool.query(
            """
            SELECT id, at, actor, actor_role, reseller_id, action, target_type, target_id, before::text AS before, after::text AS after, request_id
            FROM audit_log
            WHERE (\(scope.resellerID)::uuid IS NULL OR reseller_id = \(scope.resellerID)::uuid)
              AND (\(action)::text IS NULL OR action = \(action)::text)
              AND (\(targetID)::text IS NULL OR target_id = \(targetID)::text)
              AND (\(cursor)::bigint IS NULL OR id < \(cursor)::bigint)
            ORDER BY id DESC
            LIMIT \(limit)
            """
        ).decodeRecords(AuditEntryRecord.self)
    }
}
