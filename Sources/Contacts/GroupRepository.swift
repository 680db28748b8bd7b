import Foundation
import PostgresLibpq
import ResellerCore
import SMSCore

/// A group of contacts with its member count.
package struct ContactGroupRecord: Codable, Sendable {
    package var id: UUID
    package var resellerID: UUID
    package var subAccountID: UUID
    package var name: String
    package var memberCount: Int
    package var createdAt: Date
    package var updatedAt: Date

    package enum CodingKeys: String, CodingKey {
        case id, name
        case resellerID = "reseller_id"
        case subAccountID = "sub_account_id"
        case memberCount = "member_count"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }
}

/// What a send to a named group (1601 `naar=groep&groep=<name>`) goes to.
package enum GroupExpansion: Sendable, Equatable {
    /// The sub-account has no group of that name (1601 error 125).
    case notFound
    /// The group has no members (1601 error 126).
    case empty
    /// The members' numbers, ascending, each once.
    case members([PhoneNumber])
    /// More members than the caller's limit: none were loaded beyond the first `limit + 1`.
    case overLimit

    /// The 1601 error a send to this group gets; nil when it has members (or too many, which has no 1601 code).
    package var gatewayCode: GatewayErrorCode? {
        switch self {
        case .notFound: .groupNotFound
        case .empty: .groupEmpty
        case .members, .overLimit: nil
        }
    }
}

/// A membership change and the group after it.
package struct MembershipChange: Codable, Sendable {
    package var group: ContactGroupRecord
    /// The contacts that were added or removed (those already in, or not in, the group are left out).
    package var contactIDs: [UUID]

    package enum CodingKeys: String, CodingKey {
        case group
        case contactIDs = "contact_ids"
    }
}

/// Groups of one sub-account's address book and their members. Every query is scoped by an `AddressBook`.
package struct GroupRepository: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Selected from `contact_group g`.
    package static let columns = """
        g.id, g.reseller_id, g.sub_account_id, g.name, g.created_at, g.updated_at,
        (SELECT count(*) FROM contact_group_member m WHERE m.reseller_id = g.reseller_id AND m.group_id = g.id) AS member_count
        """

    /// The send path's hook: the group of this sub-account named `groupName` (case-insensitively, surrounding
    /// whitespace ignored), expanded to its members' numbers, in one statement on the caller's connection, so it
    /// can run inside the send's transaction and see exactly the members committed when the send is accepted.
    ///
    /// At most `limit + 1` members are read: a group with more than `limit` is `.overLimit` (groups grow past 100 000
    /// members through imports; a send takes at most `SendPlanner.maximumRecipients`).
    package static func expand(
        subAccountID: UUID, groupName: String, limit: Int, on connection: PostgresConnection
    ) async throws -> GroupExpansion {
        let name = groupName.trimmingCharacters(in: .whitespacesAndNewlines)
        // No row: no such group. One row with a NULL number: an empty group. Otherwise one row per member, the first
        // limit + 1 by number (the primary key's order would do for the count, but the answer lists numbers in order).
        let numbers = try await connection.query(
            """
            SELECT c.number
            FROM sub_account s
            JOIN contact_group g ON g.reseller_id = s.reseller_id AND g.sub_account_id = s.id AND lower(g.name) = lower(\(name))
            LEFT JOIN contact_group_member m ON m.reseller_id = g.reseller_id AND m.group_id = g.id
            LEFT JOIN contact c ON c.reseller_id = m.reseller_id AND c.sub_account_id = m.sub_account_id AND c.id = m.contact_id
            WHERE s.id = \(subAccountID)
            ORDER BY c.number
            LIMIT \(max(0, limit) + 1)
            """
        ).decode(String?.self)
        if numbers.isEmpty { return .notFound }
        if numbers == [nil] { return .empty }
        if numbers.count > max(0, limit) { return .overLimit }
        let members = numbers.compactMap { $0.flatMap { try? PhoneNumber(parsing: $0) } }
        return members.isEmpty ? .empty : .members(members)
    }

    package static func find(on connection: PostgresConnection, id: UUID, in book: AddressBook, lock: String? = nil)
        async throws -> ContactGroupRecord?
    {
        try await connection.query(
            """
            SELECT \(unescaped: columns) FROM contact_group g
            WHERE g.reseller_id = \(book.resellerID) AND g.sub_account_id = \(book.subAccountID) AND g.id = \(id)
            \(unescaped: lock.map { "FOR \($0)" } ?? "")
            """
        ).decodeRecords(ContactGroupRecord.self).first
    }

    package func find(id: UUID, in book: AddressBook) async throws -> ContactGroupRecord? {
        try await pool.withConnection { try await Self.find(on: $0, id: id, in: book) }
    }

    /// One page ordered by id; `nameContains` is case-insensitive.
    package func list(in book: AddressBook, nameContains: String?, after cursor: UUID?, limit: Int) async throws
        -> [ContactGroupRecord]
    {
        try await pool.query(
            """
            SELECT \(unescaped: Self.columns) FROM contact_group g
            WHERE g.reseller_id = \(book.resellerID) AND g.sub_account_id = \(book.subAccountID)
              AND (\(nameContains)::text IS NULL OR strpos(lower(g.name), lower(\(nameContains)::text)) > 0)
              AND (\(cursor)::uuid IS NULL OR g.id > \(cursor)::uuid)
            ORDER BY g.id
            LIMIT \(limit)
            """
        ).decodeRecords(ContactGroupRecord.self)
    }

    package enum ChangeResult: Sendable {
        case done(ContactGroupRecord)
        case notFound
        /// The address book already has a group of this name (case-insensitively).
        case nameTaken
    }

    package func create(in book: AddressBook, name: String, by actor: AuditActor) async throws -> ChangeResult {
        do {
            return try await pool.withTransaction { connection in
                let id = try await connection.query(
                    """
                    INSERT INTO contact_group (reseller_id, sub_account_id, name)
                    VALUES (\(book.resellerID), \(book.subAccountID), \(name))
                    RETURNING id
                    """
                ).first(as: UUID.self)!
                let record = try await Self.find(on: connection, id: id, in: book)!
                try await AuditRepository.record(
                    on: connection, by: actor, action: "contact_group.create", targetType: "contact_group",
                    targetID: id,
                    resellerID: book.resellerID, before: nil, after: record)
                return .done(record)
            }
        } catch let error as PostgresError where error.isUniqueViolation {
            return .nameTaken
        }
    }

    package func rename(id: UUID, in book: AddressBook, to name: String, by actor: AuditActor) async throws
        -> ChangeResult
    {
        do {
            return try await pool.withTransaction { connection in
                guard let before = try await Self.find(on: connection, id: id, in: book, lock: "UPDATE") else {
                    return .notFound
                }
                try await connection.query(
                    """
                    UPDATE contact_group SET name = \(name)
                    WHERE reseller_id = \(book.resellerID) AND sub_account_id = \(book.subAccountID) AND id = \(id)
                    """)
                let after = try await Self.find(on: connection, id: id, in: book)!
                try await AuditRepository.record(
                    on: connection, by: actor, action: "contact_group.rename", targetType: "contact_group",
                    targetID: id,
                    resellerID: book.resellerID, before: before, after: after)
                return .done(after)
            }
        } catch let error as PostgresError where error.isUniqueViolation {
            return .nameTaken
        }
    }

    /// Deletes a group and its memberships; its contacts stay. False when there is none.
    package func delete(id: UUID, in book: AddressBook, by actor: AuditActor) async throws -> Bool {
        try await pool.withTransaction { connection in
            guard let before = try await Self.find(on: connection, id: id, in: book, lock: "UPDATE") else {
                return false
            }
            try await connection.query(
                """
                DELETE FROM contact_group WHERE reseller_id = \(book.resellerID) AND sub_account_id = \(book.subAccountID) AND id = \(id)
                """)
            try await AuditRepository.record(
                on: connection, by: actor, action: "contact_group.delete", targetType: "contact_group", targetID: id,
                resellerID: book.resellerID, before: before, after: nil)
            return true
        }
    }

    package enum MembershipResult: Sendable {
        case changed(MembershipChange)
        case notFound
        /// Ids (by their index in the request) that are no contact of this address book.
        case unknownContacts([Int])
    }

    /// Adds contacts to a group; those already in it are left as they are. All or nothing: any id that is not a
    /// contact of this address book refuses the whole change. One audit entry, none when nothing changed.
    package func addMembers(groupID: UUID, contactIDs: [UUID], in book: AddressBook, by actor: AuditActor) async throws
        -> MembershipResult
    {
        try await pool.withTransaction { connection in
            // KEY SHARE: a concurrent delete of the group waits until these memberships are in.
            guard try await Self.find(on: connection, id: groupID, in: book, lock: "KEY SHARE") != nil else {
                return .notFound
            }
            let unknown = try await connection.query(
                """
                SELECT u.position FROM unnest(\(contactIDs)::uuid[]) WITH ORDINALITY AS u (id, position)
                WHERE NOT EXISTS (
                    SELECT 1 FROM contact c WHERE c.reseller_id = \(book.resellerID) AND c.sub_account_id = \(book.subAccountID) AND c.id = u.id)
                ORDER BY u.position
                """
            ).decode(Int.self)
            guard unknown.isEmpty else { return .unknownContacts(unknown.map { $0 - 1 }) }
            let added = try await connection.query(
                """
                INSERT INTO contact_group_member (reseller_id, sub_account_id, group_id, contact_id)
                SELECT c.reseller_id, c.sub_account_id, \(groupID), c.id
                FROM contact c
                WHERE c.reseller_id = \(book.resellerID) AND c.sub_account_id = \(book.subAccountID) AND c.id = ANY(\(contactIDs)::uuid[])
                ORDER BY c.id
                ON CONFLICT DO NOTHING
                RETURNING contact_id
                """
            ).decode(UUID.self).sorted { $0.uuidString < $1.uuidString }
            return try await Self.finish(
                on: connection, groupID: groupID, changed: added, action: "contact_group.add_members", in: book,
                by: actor)
        }
    }

    /// Removes contacts from a group; ids that are not members (or no contacts at all) are ignored.
    /// One audit entry, none when nothing changed.
    package func removeMembers(groupID: UUID, contactIDs: [UUID], in book: AddressBook, by actor: AuditActor)
        async throws -> MembershipResult
    {
        try await pool.withTransaction { connection in
            guard try await Self.find(on: connection, id: groupID, in: book, lock: "KEY SHARE") != nil else {
                return .notFound
            }
            let removed = try await connection.query(
                """
                DELETE FROM contact_group_member
                WHERE reseller_id = \(book.resellerID) AND sub_account_id = \(book.subAccountID) AND group_id = \(groupID)
                  AND contact_id = ANY(\(contactIDs)::uuid[])
                RETURNING contact_id
                """
            ).decode(UUID.self).sorted { $0.uuidString < $1.uuidString }
            return try await Self.finish(
                on: connection, groupID: groupID, changed: removed, action: "contact_group.remove_members", in: book,
                by: actor)
        }
    }

    private static func finish(
        on connection: PostgresConnection, groupID: UUID, changed: [UUID], action: String, in book: AddressBook,
        by actor: AuditActor
    ) async throws -> MembershipResult {
        let group = try await find(on: connection, id: groupID, in: book)!
        let change = MembershipChange(group: group, contactIDs: changed)
        if !changed.isEmpty {
            try await AuditRepository.record(
                on: connection, by: actor, action: action, targetType: "contact_group", targetID: groupID,
                resellerID: book.resellerID, before: nil, after: change)
        }
        return .changed(change)
    }
}
