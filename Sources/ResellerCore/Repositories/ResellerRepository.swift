import Foundation
import PostgresLibpq

/// A reseller row.
package struct ResellerRecord: Codable, Sendable {
    package var id: UUID
    package var name: String
    package var contactEmail: String?
    package var refundPolicy: String
    package var status: AccountStatus
    package var statusReason: String?
    package var statusChangedBy: String?
    package var statusChangedAt: Date?
    package var createdAt: Date
    package var updatedAt: Date

    package enum CodingKeys: String, CodingKey {
        case id, name, status
        case contactEmail = "contact_email"
        case refundPolicy = "refund_policy"
        case statusReason = "status_reason"
        case statusChangedBy = "status_changed_by"
        case statusChangedAt = "status_changed_at"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }
}

/// The outcome of a status change.
package enum StatusChange<Record: Sendable>: Sendable {
    case changed(Record)
    case notFound
    /// The current status does not allow this change.
    case conflict(AccountStatus)
}

/// Resellers. Only the admin reaches the mutations (checked by the handlers).
package struct ResellerRepository: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    package static let columns = """
        id, name, contact_email, refund_policy, status, status_reason, status_changed_by, status_changed_at, created_at, updated_at
        """

    package func create(name: String, contactEmail: String?, refundPolicy: String?, by actor: AuditActor) async throws
        -> ResellerRecord
    {
        try await pool.withTransaction { connection in
            let record = try await connection.query(
                """
                INSERT INTO reseller (name, contact_email, refund_policy)
                VALUES (\(name), \(contactEmail), coalesce(\(refundPolicy)::text, 'refund_undelivered'))
                RETURNING \(unescaped: Self.columns)
                """
            ).decodeRecords(ResellerRecord.self)[0]
            try await AuditRepository.record(
                on: connection, by: actor, action: "reseller.create", targetType: "reseller", targetID: record.id,
                resellerID: record.id, before: nil, after: record)
            return record
        }
    }

    /// The reseller's status, its row locked FOR SHARE until the transaction ends; nil when it does not exist.
    package static func lockStatus(id: UUID, on connection: PostgresConnection) async throws -> AccountStatus? {
        try await connection.query("SELECT status FROM reseller WHERE id = \(id) FOR SHARE").first(as: String.self)
            .flatMap(AccountStatus.init(rawValue:))
    }

    package func find(id: UUID) async throws -> ResellerRecord? {
        try await pool.query("SELECT \(unescaped: Self.columns) FROM reseller WHERE id = \(id)").decodeRecords(
            ResellerRecord.self
        ).first
    }

    /// One page ordered by id, after the id `cursor`.
    package func list(status: AccountStatus?, nameContains: String?, after cursor: UUID?, limit: Int) async throws
        -> [ResellerRecord]
    {
        try await pool.query(
            """
            SELECT \(unescaped: Self.columns) FROM reseller
            WHERE (\(status?.rawValue)::text IS NULL OR status = \(status?.rawValue)::text)
              AND (\(nameContains)::text IS NULL OR strpos(lower(name), lower(\(nameContains)::text)) > 0)
              AND (\(cursor)::uuid IS NULL OR id > \(cursor)::uuid)
            ORDER BY id
            LIMIT \(limit)
            """
        ).decodeRecords(ResellerRecord.self)
    }

    /// Sets the given fields; an empty `contactEmail` clears it. Nil when there is no such reseller.
    package func update(id: UUID, name: String?, contactEmail: String?, refundPolicy: String?, by actor: AuditActor)
        async throws -> ResellerRecord?
    {
        try await pool.withTransaction { connection in
            guard
                let before = try await connection.query(
                    "SELECT \(unescaped: Self.columns) FROM reseller WHERE id = \(id) FOR UPDATE"
                )
                .decodeRecords(ResellerRecord.self).first
            else { return nil }
            let after = try await connection.query(
                """
                UPDATE reseller SET
                    name = coalesce(\(name)::text, name),
                    contact_email = CASE WHEN \(contactEmail)::text IS NULL THEN contact_email ELSE nullif(\(contactEmail)::text, '') END,
                    refund_policy = coalesce(\(refundPolicy)::text, refund_policy)
                WHERE id = \(id)
                RETURNING \(unescaped: Self.columns)
                """
            ).decodeRecords(ResellerRecord.self)[0]
            try await AuditRepository.record(
                on: connection, by: actor, action: "reseller.update", targetType: "reseller", targetID: id,
                resellerID: id, before: before, after: after)
            return after
        }
    }

    /// Moves a reseller to `status` when its current status is in `from`; a no-op when it is already there.
    package func changeStatus(
        id: UUID, to status: AccountStatus, from allowed: Set<AccountStatus>, reason: String?, action: String,
        by actor: AuditActor
    ) async throws -> StatusChange<ResellerRecord> {
        try await pool.withTransaction { connection in
            guard
                let before = try await connection.query(
                    "SELECT \(unescaped: Self.columns) FROM reseller WHERE id = \(id) FOR UPDATE"
                )
                .decodeRecords(ResellerRecord.self).first
            else { return .notFound }
            // Asking for the status it already has changes nothing and records nothing.
            if before.status == status { return .changed(before) }
            guard allowed.contains(before.status) else { return .conflict(before.status) }
            let after = try await connection.query(
                """
                UPDATE reseller SET status = \(status.rawValue), status_reason = \(reason),
                    status_changed_by = \(actor.actor), status_changed_at = now()
                WHERE id = \(id)
                RETURNING \(unescaped: Self.columns)
                """
            ).decodeRecords(ResellerRecord.self)[0]
            try await AuditRepository.record(
                on: connection, by: actor, action: action, targetType: "reseller", targetID: id,
                resellerID: id, before: before, after: after)
            return .changed(after)
        }
    }
}
