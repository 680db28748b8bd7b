import Foundation
import PostgresLibpq
import ResellerCore
import SMSCore

/// The sub-account whose address book a request works on: every contact and group query is filtered by both ids,
/// taken from a sub-account the caller was found to see.
package struct AddressBook: Sendable, Equatable {
    package var resellerID: UUID
    package var subAccountID: UUID

    package init(resellerID: UUID, subAccountID: UUID) {
        self.resellerID = resellerID
        self.subAccountID = subAccountID
    }

    package init(_ account: SubAccountRecord) {
        self.init(resellerID: account.resellerID, subAccountID: account.id)
    }
}

/// A contact with the groups it belongs to (ordered by name).
package struct ContactRecord: Codable, Sendable {
    package var id: UUID
    package var resellerID: UUID
    package var subAccountID: UUID
    /// E.164 digits.
    package var number: String
    package var name: String?
    package var reference: String?
    package var groupIDs: [UUID]
    package var groupNames: [String]
    package var createdAt: Date
    package var updatedAt: Date

    package enum CodingKeys: String, CodingKey {
        case id, number, name, reference
        case resellerID = "reseller_id"
        case subAccountID = "sub_account_id"
        case groupIDs = "group_ids"
        case groupNames = "group_names"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }
}

/// What a CSV import did.
package struct ContactImportReport: Codable, Sendable, Equatable {
    package var onExisting: ContactImportMode
    /// Lines in the file (one contact each).
    package var contacts: Int
    package var created: Int
    /// Existing contacts whose name or reference the file changed (`update` only).
    package var updated: Int
    /// Existing contacts whose fields stayed as they were (all of them with `skip`).
    package var unchanged: Int
    package var groupsCreated: Int
    package var membershipsAdded: Int

    package enum CodingKeys: String, CodingKey {
        case contacts, created, updated, unchanged
        case onExisting = "on_existing"
        case groupsCreated = "groups_created"
        case membershipsAdded = "memberships_added"
    }

    package var changedAnything: Bool { created + updated + groupsCreated + membershipsAdded > 0 }
}

/// Contacts of one sub-account's address book. Every query is scoped by an `AddressBook`.
///
/// See docs/contacts.md.
package struct ContactRepository: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Selected from `contact c`, with its groups.
    package static let columns = """
        c.id, c.reseller_id, c.sub_account_id, c.number, c.name, c.reference, c.created_at, c.updated_at,
        coalesce(g.ids, '{}') AS group_ids, coalesce(g.names, '{}') AS group_names
        """
    package static let groupsJoin = """
        LEFT JOIN LATERAL (
            SELECT array_agg(cg.id ORDER BY lower(cg.name), cg.id) AS ids, array_agg(cg.name ORDER BY lower(cg.name), cg.id) AS names
            FROM contact_group_member m JOIN contact_group cg ON cg.reseller_id = m.reseller_id AND cg.id = m.group_id
            WHERE m.reseller_id = c.reseller_id AND m.contact_id = c.id
        ) g ON true
        """

    package static func find(on connection: PostgresConnection, id: UUID, in book: AddressBook, lock: Bool = false)
        async throws -> ContactRecord?
    {
        try await connection.query(
            """
            SELECT \(unescaped: columns) FROM contact c \(unescaped: groupsJoin)
            WHERE c.reseller_id = \(book.resellerID) AND c.sub_account_id = \(book.subAccountID) AND c.id = \(id)
            \(unescaped: lock ? "FOR UPDATE OF c" : "")
            """
        ).decodeRecords(ContactRecord.self).first
    }

    package func find(id: UUID, in book: AddressBook) async throws -> ContactRecord? {
        try await pool.withConnection { try await Self.find(on: $0, id: id, in: book) }
    }

    /// One page ordered by id. `nameContains` is case-insensitive; `numberContains` is digits; `groupID` keeps the
    /// members of that group (none when it is not a group of this address book).
    package func list(
        in book: AddressBook, nameContains: String?, numberContains: String?, groupID: UUID?, after cursor: UUID?,
        limit: Int
    ) async throws -> [ContactRecord] {
        try await pool.query(
            """
            SELECT \(unescaped: Self.columns) FROM contact c \(unescaped: Self.groupsJoin)
            WHERE c.reseller_id = \(book.resellerID) AND c.sub_account_id = \(book.subAccountID)
              AND (\(nameContains)::text IS NULL OR strpos(lower(c.name), lower(\(nameContains)::text)) > 0)
              AND (\(numberContains)::text IS NULL OR strpos(c.number, \(numberContains)::text) > 0)
              AND (\(groupID)::uuid IS NULL OR EXISTS (
                    SELECT 1 FROM contact_group_member m
                    WHERE m.reseller_id = c.reseller_id AND m.group_id = \(groupID)::uuid AND m.contact_id = c.id
                      AND m.sub_account_id = c.sub_account_id))
              AND (\(cursor)::uuid IS NULL OR c.id > \(cursor)::uuid)
            ORDER BY c.id
            LIMIT \(limit)
            """
        ).decodeRecords(ContactRecord.self)
    }

    package enum ChangeResult: Sendable {
        case done(ContactRecord)
        case notFound
        /// The address book already has a contact with this number.
        case numberTaken
    }

    package func create(
        in book: AddressBook, number: PhoneNumber, name: String?, reference: String?, by actor: AuditActor
    ) async throws -> ChangeResult {
        do {
            return try await pool.withTransaction { connection in
                let id = try await connection.query(
                    """
                    INSERT INTO contact (reseller_id, sub_account_id, number, name, reference)
                    VALUES (\(book.resellerID), \(book.subAccountID), \(number.digits), \(name), \(reference))
                    RETURNING id
                    """
                ).first(as: UUID.self)!
                let record = try await Self.find(on: connection, id: id, in: book)!
                try await AuditRepository.record(
                    on: connection, by: actor, action: "contact.create", targetType: "contact", targetID: id,
                    resellerID: book.resellerID, before: nil, after: record)
                return .done(record)
            }
        } catch let error as PostgresError where error.isUniqueViolation {
            return .numberTaken
        }
    }

    /// Sets the given fields; an empty `name` or `reference` clears it.
    package func update(
        id: UUID, in book: AddressBook, number: PhoneNumber?, name: String?, reference: String?, by actor: AuditActor
    ) async throws -> ChangeResult {
        do {
            return try await pool.withTransaction { connection in
                guard let before = try await Self.find(on: connection, id: id, in: book, lock: true) else {
                    return .notFound
                }
                try await connection.query(
                    """
                    UPDATE contact SET
                        number = coalesce(\(number?.digits)::text, number),
                        name = CASE WHEN \(name)::text IS NULL THEN name ELSE nullif(\(name)::text, '') END,
                        reference = CASE WHEN \(reference)::text IS NULL THEN reference ELSE nullif(\(reference)::text, '') END
                    WHERE reseller_id = \(book.resellerID) AND sub_account_id = \(book.subAccountID) AND id = \(id)
                    """)
                let after = try await Self.find(on: connection, id: id, in: book)!
                try await AuditRepository.record(
                    on: connection, by: actor, action: "contact.update", targetType: "contact", targetID: id,
                    resellerID: book.resellerID, before: before, after: after)
                return .done(after)
            }
        } catch let error as PostgresError where error.isUniqueViolation {
            return .numberTaken
        }
    }

    /// Deletes a contact and its memberships. False when there is none.
    package func delete(id: UUID, in book: AddressBook, by actor: AuditActor) async throws -> Bool {
        try await pool.withTransaction { connection in
            guard let before = try await Self.find(on: connection, id: id, in: book, lock: true) else { return false }
            try await connection.query(
                """
                DELETE FROM contact WHERE reseller_id = \(book.resellerID) AND sub_account_id = \(book.subAccountID) AND id = \(id)
                """)
            try await AuditRepository.record(
                on: connection, by: actor, action: "contact.delete", targetType: "contact", targetID: id,
                resellerID: book.resellerID, before: before, after: nil)
            return true
        }
    }

    /// Imports validated rows in one transaction: new numbers are created; numbers the address book has are left
    /// alone (`skip`) or get the file's fields for the columns it has (`update`). Groups named in the file are created
    /// when missing (matched case-insensitively) and the contacts the file applies to are added to them. One audit
    /// entry for the whole import, none when it changed nothing.
    package func importContacts(
        _ rows: [ContactImportRow], columns: Set<String>, mode: ContactImportMode, in book: AddressBook,
        by actor: AuditActor
    ) async throws -> ContactImportReport {
        let numbers = rows.map(\.number.digits)
        let names = rows.map(\.name)
        let references = rows.map(\.reference)
        return try await pool.withTransaction { connection in
            // New numbers; one that exists (or appears concurrently) is left to the mode.
            let created = Set(
                try await connection.query(
                    """
                    INSERT INTO contact (reseller_id, sub_account_id, number, name, reference)
                    SELECT \(book.resellerID), \(book.subAccountID), r.number, r.name, r.reference
                    FROM unnest(\(numbers)::text[], \(names)::text[], \(references)::text[]) AS r (number, name, reference)
                    ON CONFLICT (reseller_id, sub_account_id, number) DO NOTHING
                    RETURNING number
                    """
                ).decode(String.self))
            var updated = 0
            if mode == .update {
                let setName = columns.contains("name")
                let setReference = columns.contains("reference")
                updated = try await connection.query(
                    """
                    UPDATE contact c SET
                        name = CASE WHEN \(setName) THEN r.name ELSE c.name END,
                        reference = CASE WHEN \(setReference) THEN r.reference ELSE c.reference END
                    FROM unnest(\(numbers)::text[], \(names)::text[], \(references)::text[]) AS r (number, name, reference)
                    WHERE c.reseller_id = \(book.resellerID) AND c.sub_account_id = \(book.subAccountID) AND c.number = r.number
                      AND NOT c.number = ANY(\(Array(created))::text[])
                      AND ((\(setName) AND c.name IS DISTINCT FROM r.name) OR (\(setReference) AND c.reference IS DISTINCT FROM r.reference))
                    RETURNING c.id
                    """
                ).decode(UUID.self).count
            }
            // Group memberships of the contacts the file applies to: all of them with `update`, the new ones with `skip`.
            var pairNumbers: [String] = []
            var pairGroups: [String] = []
            for row in rows where mode == .update || created.contains(row.number.digits) {
                for group in row.groups {
                    pairNumbers.append(row.number.digits)
                    pairGroups.append(group)
                }
            }
            var groupsCreated = 0
            var membershipsAdded = 0
            if !pairGroups.isEmpty {
                // The first spelling in the file names a new group; an existing group keeps its own.
                groupsCreated = try await connection.query(
                    """
                    INSERT INTO contact_group (reseller_id, sub_account_id, name)
                    SELECT \(book.resellerID), \(book.subAccountID), p.name
                    FROM (SELECT DISTINCT ON (lower(name)) name, position
                          FROM unnest(\(pairGroups)::text[]) WITH ORDINALITY AS u (name, position)
                          ORDER BY lower(name), position) p
                    ORDER BY p.position
                    ON CONFLICT (reseller_id, sub_account_id, lower(name)) DO NOTHING
                    RETURNING id
                    """
                ).decode(UUID.self).count
                membershipsAdded = try await connection.query(
                    """
                    INSERT INTO contact_group_member (reseller_id, sub_account_id, group_id, contact_id)
                    SELECT DISTINCT \(book.resellerID), \(book.subAccountID), g.id, c.id
                    FROM unnest(\(pairNumbers)::text[], \(pairGroups)::text[]) AS p (number, group_name)
                    JOIN contact c ON c.reseller_id = \(book.resellerID) AND c.sub_account_id = \(book.subAccountID) AND c.number = p.number
                    JOIN contact_group g ON g.reseller_id = \(book.resellerID) AND g.sub_account_id = \(book.subAccountID)
                        AND lower(g.name) = lower(p.group_name)
                    ON CONFLICT DO NOTHING
                    RETURNING contact_id
                    """
                ).decode(UUID.self).count
            }
            let report = ContactImportReport(
                onExisting: mode, contacts: rows.count, created: created.count, updated: updated,
                unchanged: rows.count - created.count - updated, groupsCreated: groupsCreated,
                membershipsAdded: membershipsAdded)
            if report.changedAnything {
                try await AuditRepository.record(
                    on: connection, by: actor, action: "contact.import", targetType: "sub_account",
                    targetID: book.subAccountID,
                    resellerID: book.resellerID, before: nil, after: report)
            }
            return report
        }
    }
}
