import Foundation
import PostgresLibpq
import SMSCore

/// A sender name a sub-account asked for, and where its approval stands.
package struct SenderNameRecord: Codable, Sendable {
    package var id: UUID
    package var resellerID: UUID
    package var subAccountID: UUID
    package var name: String
    package var status: SenderNameStatus
    package var requiresAdmin: Bool
    package var reason: String?
    package var decidedBy: String?
    package var decidedAt: Date?
    package var createdAt: Date
    package var updatedAt: Date

    package enum CodingKeys: String, CodingKey {
        case id, name, status, reason
        case resellerID = "reseller_id"
        case subAccountID = "sub_account_id"
        case requiresAdmin = "requires_admin"
        case decidedBy = "decided_by"
        case decidedAt = "decided_at"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }
}

package enum SenderNameStatus: String, Codable, Sendable {
    case pending
    case pendingAdmin = "pending_admin"
    case approved
    case rejected
    case revoked
}

/// An entry of the admin's platform list.
package struct SenderNameRuleRecord: Codable, Sendable {
    package enum Kind: String, Codable, Sendable {
        /// Refused to everyone (117).
        case blocked
        /// Allowed only with the admin's approval.
        case protected
    }
    package var id: UUID
    package var name: String
    package var kind: Kind
    package var reason: String?
    package var createdAt: Date

    package enum CodingKeys: String, CodingKey {
        case id, name, kind, reason
        case createdAt = "created_at"
    }
}

/// Sender names and the platform's block/protect list.
///
/// See docs/sender-names.md.
package struct SenderNameRepository: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    package static let columns =
        "id, reseller_id, sub_account_id, name, status, requires_admin, reason, decided_by, decided_at, created_at, updated_at"
    package static let ruleColumns = "id, name, kind, reason, created_at"

    package static func scoped(_ scope: TenantScope) -> PostgresQuery {
        "(\(scope.resellerID)::uuid IS NULL OR reseller_id = \(scope.resellerID)::uuid) AND (\(scope.subAccountID)::uuid IS NULL OR sub_account_id = \(scope.subAccountID)::uuid)"
    }

    package static func rule(on connection: PostgresConnection, for name: String) async throws -> SenderNameRuleRecord
        .Kind?
    {
        try await connection.query(
            "SELECT kind FROM sender_name_rule WHERE name_key = \(SenderName.comparisonKey(name))"
        )
        .first(as: String.self).flatMap(SenderNameRuleRecord.Kind.init(rawValue:))
    }

    package enum RequestResult: Sendable {
        case requested(SenderNameRecord)
        /// On the platform blocklist (117).
        case blocked
        /// The sub-account already has this name pending or approved.
        case duplicate
    }

    /// Records a request of a name that passed the 1601 rules.
    package func request(resellerID: UUID, subAccountID: UUID, name: String, by actor: AuditActor) async throws
        -> RequestResult
    {
        do {
            return try await pool.withTransaction { connection in
                let rule = try await Self.rule(on: connection, for: name)
                if rule == .blocked { return .blocked }
                let record = try await connection.query(
                    """
                    INSERT INTO sender_name (reseller_id, sub_account_id, name, status, requires_admin)
                    VALUES (\(resellerID), \(subAccountID), \(name), 'pending', \(rule == .protected))
                    RETURNING \(unescaped: Self.columns)
                    """
                ).decodeRecords(SenderNameRecord.self)[0]
                try await AuditRepository.record(
                    on: connection, by: actor, action: "sender_name.request", targetType: "sender_name",
                    targetID: record.id,
                    resellerID: resellerID, before: nil, after: record)
                return .requested(record)
            }
        } catch let error as PostgresError where error.isUniqueViolation {
            return .duplicate
        }
    }

    package func find(id: UUID, scope: TenantScope) async throws -> SenderNameRecord? {
        try await pool.query(
            "SELECT \(unescaped: Self.columns) FROM sender_name WHERE id = \(id) AND \(Self.scoped(scope))"
        )
        .decodeRecords(SenderNameRecord.self).first
    }

    package func list(scope: TenantScope, status: SenderNameStatus?, after cursor: UUID?, limit: Int) async throws
        -> [SenderNameRecord]
    {
        try await pool.query(
            """
            SELECT \(unescaped: Self.columns) FROM sender_name
            WHERE \(Self.scoped(scope))
              AND (\(status?.rawValue)::text IS NULL OR status = \(status?.rawValue)::text)
              AND (\(cursor)::uuid IS NULL OR id > \(cursor)::uuid)
            ORDER BY id
            LIMIT \(limit)
            """
        ).decodeRecords(SenderNameRecord.self)
    }

    /// The new state of a decision, or the problem that refuses it.
    package typealias Transition =
        @Sendable (SenderNameRecord, SenderNameRuleRecord.Kind?) throws -> (
            status: SenderNameStatus, requiresAdmin: Bool
        )

    /// Applies a decision to a name visible in `scope`; nil when there is none.
    package func decide(
        id: UUID, scope: TenantScope, reason: String?, action: String, by actor: AuditActor, transition: Transition
    ) async throws -> SenderNameRecord? {
        try await pool.withTransaction { connection in
            guard
                let before = try await connection.query(
                    """
                    SELECT \(unescaped: Self.columns) FROM sender_name WHERE id = \(id) AND \(Self.scoped(scope)) FOR UPDATE
                    """
                ).decodeRecords(SenderNameRecord.self).first
            else { return nil }
            let next = try transition(before, try await Self.rule(on: connection, for: before.name))
            let after = try await connection.query(
                """
                UPDATE sender_name SET status = \(next.status.rawValue), requires_admin = \(next.requiresAdmin),
                    reason = \(reason), decided_by = \(actor.actor), decided_at = now()
                WHERE reseller_id = \(before.resellerID) AND id = \(id)
                RETURNING \(unescaped: Self.columns)
                """
            ).decodeRecords(SenderNameRecord.self)[0]
            try await AuditRepository.record(
                on: connection, by: actor, action: action, targetType: "sender_name", targetID: id,
                resellerID: before.resellerID, before: before, after: after)
            return after
        }
    }

    /// What a send with `sender` from this sub-account gets: the 1601 rule error (109/110/111/113),
    /// 117 when the name is on the platform blocklist or not approved for it, nil when it may be used.
    ///
    /// A name on the protected list counts as approved only with the admin's approval (`requires_admin` set on an
    /// approved row: only the admin approves such a row), whatever came first: the rule may have committed after a
    /// reseller's approval read the rules, which `createRule` then cannot have sent back to the admin.
    package func sendCheck(subAccountID: UUID, sender: String) async throws -> GatewayErrorCode? {
        try await pool.read(Self.sendCheckRead(subAccountID: subAccountID, sender: sender))
    }

    /// `sendCheck` as a read that can share a round trip with others; no sender is 109 (empty), and a name that breaks
    /// the format rules is answered without the database.
    package static func sendCheckRead(subAccountID: UUID, sender: String?) -> PostgresRead<GatewayErrorCode?> {
        guard let sender else { return .constant(.senderEmpty) }
        if let error = SenderName.validationError(for: sender) { return .constant(error) }
        let key = SenderName.comparisonKey(sender)
        return PostgresRead(
            """
            SELECT NOT EXISTS (SELECT 1 FROM sender_name_rule WHERE name_key = \(key) AND kind = 'blocked')
               AND EXISTS (
                   SELECT 1 FROM sender_name WHERE sub_account_id = \(subAccountID) AND lower(name) = lower(\(sender)) AND status = 'approved'
                      AND (requires_admin OR NOT EXISTS (SELECT 1 FROM sender_name_rule WHERE name_key = \(key) AND kind = 'protected')))
            """
        ) { rows in try rows.first(as: Bool.self) ?? false ? nil : .senderNotAllowed }
    }

    /// Why a name went back to the admin when its rule was made; the reseller reads it on the name.
    package static let protectedReason = "The platform protects this name: it needs the admin's approval."

    // MARK: - The platform list

    package func rules() async throws -> [SenderNameRuleRecord] {
        try await pool.query("SELECT \(unescaped: Self.ruleColumns) FROM sender_name_rule ORDER BY name_key")
            .decodeRecords(SenderNameRuleRecord.self)
    }

    /// Nil when the name already has a rule.
    ///
    /// A protected rule sends every matching name that is approved without the admin back to the admin
    /// (`pending_admin`, with `protectedReason`), and marks matching pending names as needing the admin; each change is
    /// audited (`sender_name.protect`). The rows are locked by the update, so a reseller's decision in flight either
    /// comes first (and its approval is sent back here) or waits and sees the rule; `sendCheck` covers the rest.
    package func createRule(name: String, kind: SenderNameRuleRecord.Kind, reason: String?, by actor: AuditActor)
        async throws -> SenderNameRuleRecord?
    {
        do {
            return try await pool.withTransaction { connection in
                let key = SenderName.comparisonKey(name)
                let record = try await connection.query(
                    """
                    INSERT INTO sender_name_rule (name_key, name, kind, reason)
                    VALUES (\(key), \(name), \(kind.rawValue), \(reason))
                    RETURNING \(unescaped: Self.ruleColumns)
                    """
                ).decodeRecords(SenderNameRuleRecord.self)[0]
                try await AuditRepository.record(
                    on: connection, by: actor, action: "sender_name_rule.create", targetType: "sender_name_rule",
                    targetID: record.id,
                    resellerID: nil, before: nil, after: record)
                if kind == .protected {
                    try await Self.protect(key: key, by: actor, on: connection)
                }
                return record
            }
        } catch let error as PostgresError where error.isUniqueViolation {
            return nil
        }
    }

    /// Names matching a new protected rule (compared as rules compare: trimmed, case-insensitively): approved ones
    /// without the admin's approval go to `pending_admin`, pending ones need the admin from now on.
    private static func protect(key: String, by actor: AuditActor, on connection: PostgresConnection) async throws {
        let before = try await connection.query(
            """
            SELECT \(unescaped: columns) FROM sender_name
            WHERE lower(btrim(name)) = \(key) AND status IN ('pending', 'approved') AND NOT requires_admin
            ORDER BY id FOR UPDATE
            """
        ).decodeRecords(SenderNameRecord.self)
        for name in before {
            let approved = name.status == .approved
            let after = try await connection.query(
                """
                UPDATE sender_name
                SET requires_admin = true, status = \(approved ? "pending_admin" : name.status.rawValue),
                    reason = \(approved ? protectedReason : name.reason),
                    decided_by = \(approved ? actor.actor : name.decidedBy),
                    decided_at = \(approved ? Date() : name.decidedAt)
                WHERE reseller_id = \(name.resellerID) AND id = \(name.id)
                RETURNING \(unescaped: columns)
                """
            ).decodeRecords(SenderNameRecord.self)[0]
            try await AuditRepository.record(
                on: connection, by: actor, action: "sender_name.protect", targetType: "sender_name", targetID: name.id,
                resellerID: name.resellerID, before: name, after: after)
        }
    }

    /// False when there is no such rule.
    package func deleteRule(id: UUID, by actor: AuditActor) async throws -> Bool {
        try await pool.withTransaction { connection in
            guard
                let before = try await connection.query(
                    "DELETE FROM sender_name_rule WHERE id = \(id) RETURNING \(unescaped: Self.ruleColumns)"
                )
                .decodeRecords(SenderNameRuleRecord.self).first
            else { return false }
            try await AuditRepository.record(
                on: connection, by: actor, action: "sender_name_rule.delete", targetType: "sender_name_rule",
                targetID: id,
                resellerID: nil, before: before, after: nil)
            return true
        }
    }
}
