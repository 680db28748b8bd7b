import Foundation
import PostgresLibpq

/// A sub-account with its effective status (its own, overridden by a reseller that is not active).
package struct SubAccountRecord: Codable, Sendable {
    package var id: UUID
    package var resellerID: UUID
    package var name: String
    package var username: String
    package var defaultSender: String?
    package var status: AccountStatus
    package var effectiveStatus: AccountStatus
    package var statusReason: String?
    package var statusChangedBy: String?
    package var statusChangedAt: Date?
    package var createdAt: Date
    package var updatedAt: Date

    package enum CodingKeys: String, CodingKey {
        case id, name, username, status
        case resellerID = "reseller_id"
        case defaultSender = "default_sender"
        case effectiveStatus = "effective_status"
        case statusReason = "status_reason"
        case statusChangedBy = "status_changed_by"
        case statusChangedAt = "status_changed_at"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }
}

/// Sub-accounts, always read and changed within a `TenantScope`.
package struct SubAccountRepository: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Selected from `sub_account s JOIN reseller r`. The effective status comes from the one SQL
    /// definition, `effective_account_status`.
    package static let columns = """
        s.id, s.reseller_id, s.name, s.username, s.default_sender, s.status,
        effective_account_status(r.status, s.status) AS effective_status,
        s.status_reason, s.status_changed_by, s.status_changed_at, s.created_at, s.updated_at
        """

    package static func scoped(_ scope: TenantScope) -> PostgresQuery {
        "(\(scope.resellerID)::uuid IS NULL OR s.reseller_id = \(scope.resellerID)::uuid) AND (\(scope.subAccountID)::uuid IS NULL OR s.id = \(scope.subAccountID)::uuid)"
    }

    package enum CreateResult: Sendable {
        case created(SubAccountRecord)
        case usernameTaken
    }

    package func create(
        resellerID: UUID, name: String, username: String, password: PasswordHasher.Hash, defaultSender: String?,
        by actor: AuditActor
    ) async throws -> CreateResult {
        do {
            return try await pool.withTransaction { connection in
                let id = try await connection.query(
                    """
                    INSERT INTO sub_account (reseller_id, name, username, password_salt, password_iterations, password_hash, default_sender)
                    VALUES (\(resellerID), \(name), \(username), \(password.salt), \(password.iterations), \(password.hash), \(defaultSender))
                    RETURNING id
                    """
                ).first(as: UUID.self)!
                let record = try await Self.find(on: connection, id: id, scope: .everything, lock: false)!
                try await AuditRepository.record(
                    on: connection, by: actor, action: "sub_account.create", targetType: "sub_account", targetID: id,
                    resellerID: resellerID, before: nil, after: record)
                return .created(record)
            }
        } catch let error as PostgresError where error.isUniqueViolation {
            return .usernameTaken
        }
    }

    package static func find(on connection: PostgresConnection, id: UUID, scope: TenantScope, lock: Bool) async throws
        -> SubAccountRecord?
    {
        try await connection.query(
            """
            SELECT \(unescaped: columns) FROM sub_account s JOIN reseller r ON r.id = s.reseller_id
            WHERE s.id = \(id) AND \(scoped(scope))\(unescaped: lock ? " FOR UPDATE OF s" : "")
            """
        ).decodeRecords(SubAccountRecord.self).first
    }

    package func find(id: UUID, scope: TenantScope) async throws -> SubAccountRecord? {
        try await pool.withConnection { try await Self.find(on: $0, id: id, scope: scope, lock: false) }
    }

    /// The sub-account's own status and its reseller's, both rows locked FOR SHARE until the transaction
    /// ends (a concurrent block or close waits, and vice versa). Nil when it does not exist.
    package static func lockStatuses(subAccountID: UUID, on connection: PostgresConnection) async throws
        -> (subAccount: AccountStatus, reseller: AccountStatus)?
    {
        guard
            let row = try await connection.query(
                """
                SELECT s.status, r.status FROM sub_account s JOIN reseller r ON r.id = s.reseller_id
                WHERE s.id = \(subAccountID) FOR SHARE OF s, r
                """
            ).first(as: (String, String).self),
            let subAccount = AccountStatus(rawValue: row.0), let reseller = AccountStatus(rawValue: row.1)
        else { return nil }
        return (subAccount, reseller)
    }

    /// The effective status of a sub-account, for send paths: nil when it does not exist.
    /// `AccountStatus.gatewayCode` gives the 1601 error (115/116) to answer with.
    package func effectiveStatus(subAccountID: UUID) async throws -> AccountStatus? {
        try await pool.query(
            """
            SELECT effective_account_status(r.status, s.status) FROM sub_account s JOIN reseller r ON r.id = s.reseller_id
            WHERE s.id = \(subAccountID)
            """
        ).first(as: String.self).flatMap(AccountStatus.init(rawValue:))
    }

    /// One page ordered by id. Filtering by status filters on the sub-account's own status.
    package func list(
        scope: TenantScope, status: AccountStatus?, nameContains: String?, after cursor: UUID?, limit: Int
    ) async throws -> [SubAccountRecord] {
        try await pool.query(
            """
            SELECT \(unescaped: Self.columns) FROM sub_account s JOIN reseller r ON r.id = s.reseller_id
            WHERE \(Self.scoped(scope))
              AND (\(status?.rawValue)::text IS NULL OR s.status = \(status?.rawValue)::text)
              AND (\(nameContains)::text IS NULL OR strpos(lower(s.name), lower(\(nameContains)::text)) > 0)
              AND (\(cursor)::uuid IS NULL OR s.id > \(cursor)::uuid)
            ORDER BY s.id
            LIMIT \(limit)
            """
        ).decodeRecords(SubAccountRecord.self)
    }

    /// Sets the given fields; an empty `defaultSender` clears it. Nil when not in scope.
    package func update(
        id: UUID, scope: TenantScope, name: String?, password: PasswordHasher.Hash?, defaultSender: String?,
        by actor: AuditActor
    ) async throws -> SubAccountRecord? {
        try await pool.withTransaction { connection in
            guard let before = try await Self.find(on: connection, id: id, scope: scope, lock: true) else { return nil }
            try await connection.query(
                """
                UPDATE sub_account SET
                    name = coalesce(\(name)::text, name),
                    password_salt = coalesce(\(password?.salt)::bytea, password_salt),
                    password_iterations = coalesce(\(password?.iterations)::integer, password_iterations),
                    password_hash = coalesce(\(password?.hash)::bytea, password_hash),
                    default_sender = CASE WHEN \(defaultSender)::text IS NULL THEN default_sender ELSE nullif(\(defaultSender)::text, '') END
                WHERE id = \(id)
                """)
            let after = try await Self.find(on: connection, id: id, scope: .everything, lock: false)!
            try await AuditRepository.record(
                on: connection, by: actor,
                action: password == nil ? "sub_account.update" : "sub_account.update_password",
                targetType: "sub_account", targetID: id, resellerID: before.resellerID, before: before, after: after)
            return after
        }
    }

    package func changeStatus(
        id: UUID, scope: TenantScope, to status: AccountStatus, from allowed: Set<AccountStatus>, reason: String?,
        action: String,
        by actor: AuditActor
    ) async throws -> StatusChange<SubAccountRecord> {
        try await pool.withTransaction { connection in
            guard let before = try await Self.find(on: connection, id: id, scope: scope, lock: true) else {
                return .notFound
            }
            // Asking for the status it already has changes nothing and records nothing.
            if before.status == status { return .changed(before) }
            guard allowed.contains(before.status) else { return .conflict(before.status) }
            try await connection.query(
                """
                UPDATE sub_account SET status = \(status.rawValue), status_reason = \(reason),
                    status_changed_by = \(actor.actor), status_changed_at = now()
                WHERE id = \(id)
                """)
            let after = try await Self.find(on: connection, id: id, scope: .everything, lock: false)!
            try await AuditRepository.record(
                on: connection, by: actor, action: action, targetType: "sub_account", targetID: id,
                resellerID: before.resellerID, before: before, after: after)
            return .changed(after)
        }
    }

    /// Which reseller's sub-account has `username` (compared case-insensitively, as logins are), if any. Only for
    /// telling a reseller that a name it asked for is one of its own: another tenant's names are never named.
    package func usernameHolder(_ username: String) async throws -> (resellerID: UUID, subAccountID: UUID)? {
        try await pool.query(
            "SELECT reseller_id, id FROM sub_account WHERE lower(username) = lower(\(username))"
        ).first(as: (UUID, UUID).self).map { (resellerID: $0.0, subAccountID: $0.1) }
    }

    /// The account a 1601-style login names (username compared case-insensitively), with its stored password hash.
    package func login(username: String) async throws -> (account: SubAccountRecord, hash: PasswordHasher.Hash)? {
        struct Row: Decodable {
            var account: SubAccountRecord
            var hash: PasswordHasher.Hash

            enum CodingKeys: String, CodingKey {
                case salt = "password_salt"
                case iterations = "password_iterations"
                case hash = "password_hash"
            }

            init(from decoder: any Decoder) throws {
                account = try SubAccountRecord(from: decoder)
                let container = try decoder.container(keyedBy: CodingKeys.self)
                hash = PasswordHasher.Hash(
                    salt: try container.decode(Data.self, forKey: .salt),
                    iterations: try container.decode(Int.self, forKey: .iterations),
                    hash: try container.decode(Data.self, forKey: .hash))
            }
        }
        return try await pool.query(
            """
            SELECT \(unescaped: Self.columns), s.password_salt, s.password_iterations, s.password_hash
            FROM sub_account s JOIN reseller r ON r.id = s.reseller_id
            WHERE lower(s.username) = lower(\(username))
            """
        ).decodeRecords(Row.self).first.map { ($0.account, $0.hash) }
    }
}
