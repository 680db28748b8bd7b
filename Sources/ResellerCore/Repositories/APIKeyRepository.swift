import Foundation
import PostgresLibpq

/// Whose key it is.
package enum APIKeyOwner: Sendable, Equatable {
    case admin
    case reseller(UUID)
    case subAccount(resellerID: UUID, subAccountID: UUID)

    package var kind: Role {
        switch self {
        case .admin: .admin
        case .reseller: .reseller
        case .subAccount: .subAccount
        }
    }
    package var resellerID: UUID? {
        switch self {
        case .admin: nil
        case .reseller(let id): id
        case .subAccount(let resellerID, _): resellerID
        }
    }
    package var subAccountID: UUID? {
        if case .subAccount(_, let id) = self { return id }
        return nil
    }

    package init(_ principal: Principal) {
        switch principal.role {
        case .admin: self = .admin
        case .reseller: self = .reseller(principal.resellerID!)
        case .subAccount: self = .subAccount(resellerID: principal.resellerID!, subAccountID: principal.subAccountID!)
        }
    }
}

/// An API key as listed: never its secret or hash.
package struct APIKeyRecord: Codable, Sendable {
    package var id: UUID
    package var ownerKind: Role
    package var resellerID: UUID?
    package var subAccountID: UUID?
    package var name: String
    package var prefix: String
    package var createdAt: Date
    package var lastUsedAt: Date?
    package var revokedAt: Date?

    package enum CodingKeys: String, CodingKey {
        case id, name, prefix
        case ownerKind = "owner_kind"
        case resellerID = "reseller_id"
        case subAccountID = "sub_account_id"
        case createdAt = "created_at"
        case lastUsedAt = "last_used_at"
        case revokedAt = "revoked_at"
    }
}

/// API keys: creation (the secret leaves only once), listing, revocation, and the lookup behind every request.
package struct APIKeyRepository: Sendable {
    /// A key's name as given: trimmed, 1 to 100 characters without control characters, else a 422 on `/name`.
    package static func validatedName(_ name: String) throws -> String {
        var validator = Validator()
        let name = validator.required(name, field: "/name", maximum: 100)
        try validator.check()
        return name
    }

    package let pool: PostgresPool
    /// `last_used_at` is written only when older than this, so a busy key costs no write per request.
    package var lastUsedResolution: Duration = .seconds(60)

    package init(pool: PostgresPool, lastUsedResolution: Duration = .seconds(60)) {
        self.pool = pool
        self.lastUsedResolution = lastUsedResolution
    }

    package static let columns =
        "id, owner_kind, reseller_id, sub_account_id, name, prefix, created_at, last_used_at, revoked_at"

    /// The principal for a secret's hash, or nil when no live key has it. A key stops working when
    /// revoked, and when its reseller or sub-account is closed.
    package func authenticate(secretHash: Data) async throws -> Principal? {
        let row = try await pool.query(
            """
            SELECT k.id, k.owner_kind, k.reseller_id, k.sub_account_id,
                   (k.last_used_at IS NULL OR k.last_used_at < now() - make_interval(secs => \(Double(lastUsedResolution.components.seconds)))) AS stale
            FROM api_key k
            LEFT JOIN reseller r ON r.id = k.reseller_id
            LEFT JOIN sub_account s ON s.reseller_id = k.reseller_id AND s.id = k.sub_account_id
            WHERE k.secret_sha256 = \(secretHash) AND k.revoked_at IS NULL
              AND (r.id IS NULL OR r.status <> 'closed') AND (s.id IS NULL OR s.status <> 'closed')
            """
        ).first(as: (UUID, String, UUID?, UUID?, Bool).self)
        guard let (id, kind, resellerID, subAccountID, stale) = row, let role = Role(rawValue: kind) else { return nil }
        if stale {
            // Requests of one key arrive together and all find it stale at once: one of them writes, the others skip
            // the row its write holds (they queued behind it for up to 18 ms under load) or find it fresh.
            try await pool.query(
                """
                UPDATE api_key SET last_used_at = now()
                WHERE id = (SELECT id FROM api_key WHERE id = \(id)
                              AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => \(Double(lastUsedResolution.components.seconds))))
                            FOR UPDATE SKIP LOCKED)
                """)
        }
        return Principal(role: role, resellerID: resellerID, subAccountID: subAccountID, keyID: id)
    }

    /// Creates a key on the caller's transaction; returns it with its secret.
    package static func create(
        on connection: PostgresConnection, owner: APIKeyOwner, name: String, by actor: AuditActor
    ) async throws -> (APIKeyRecord, String) {
        let secret = APIKeySecret.generate()
        let record = try await connection.query(
            """
            INSERT INTO api_key (owner_kind, reseller_id, sub_account_id, name, prefix, secret_sha256)
            VALUES (\(owner.kind.rawValue), \(owner.resellerID), \(owner.subAccountID), \(name), \(APIKeySecret.prefix(of: secret)), \(APIKeySecret.hash(secret)))
            RETURNING \(unescaped: columns)
            """
        ).decodeRecords(APIKeyRecord.self)[0]
        try await AuditRepository.record(
            on: connection, by: actor, action: "api_key.create", targetType: "api_key", targetID: record.id,
            resellerID: owner.resellerID, before: nil, after: record)
        return (record, secret)
    }

    package func create(owner: APIKeyOwner, name: String, by actor: AuditActor) async throws -> (APIKeyRecord, String) {
        try await pool.withTransaction { try await Self.create(on: $0, owner: owner, name: name, by: actor) }
    }

    /// The keys of exactly this owner, newest first.
    package func list(owner: APIKeyOwner) async throws -> [APIKeyRecord] {
        try await pool.query(
            """
            SELECT \(unescaped: Self.columns) FROM api_key
            WHERE owner_kind = \(owner.kind.rawValue)
              AND reseller_id IS NOT DISTINCT FROM \(owner.resellerID)::uuid
              AND sub_account_id IS NOT DISTINCT FROM \(owner.subAccountID)::uuid
            ORDER BY created_at DESC, id
            """
        ).decodeRecords(APIKeyRecord.self)
    }

    /// Revokes a key visible in `scope` (the admin: any; a reseller: its own and its sub-accounts';
    /// a sub-account: its own). False when there is no such key in scope.
    package func revoke(id: UUID, scope: TenantScope, by actor: AuditActor) async throws -> Bool {
        try await pool.withTransaction { connection in
            guard
                let before = try await connection.query(
                    """
                    SELECT \(unescaped: Self.columns) FROM api_key
                    WHERE id = \(id)
                      AND (\(scope.resellerID)::uuid IS NULL OR reseller_id = \(scope.resellerID)::uuid)
                      AND (\(scope.subAccountID)::uuid IS NULL OR sub_account_id = \(scope.subAccountID)::uuid)
                    FOR UPDATE
                    """
                ).decodeRecords(APIKeyRecord.self).first
            else { return false }
            guard before.revokedAt == nil else { return true }
            let after = try await connection.query(
                """
                UPDATE api_key SET revoked_at = now() WHERE id = \(id) RETURNING \(unescaped: Self.columns)
                """
            ).decodeRecords(APIKeyRecord.self)[0]
            try await AuditRepository.record(
                on: connection, by: actor, action: "api_key.revoke", targetType: "api_key", targetID: id,
                resellerID: before.resellerID, before: before, after: after)
            return true
        }
    }
}
