import Contacts
import Foundation
import HTTPTypes
import OpenAPIRuntime
import ResellerAPI
import ResellerCore
import SMSCore

/// Contacts and groups: each sub-account's address book. The sub-account owns it and its reseller may act for it;
/// the admin may read it; to everyone else it does not exist (404). Order of checks: 401, 404 (the sub-account, then
/// the contact or group within it), 403 (the admin changing something), then the body.
extension APIHandlers {
    package var contacts: ContactRepository { ContactRepository(pool: pool) }
    package var groups: GroupRepository { GroupRepository(pool: pool) }

    // MARK: - Contacts

    package func listContacts(_ input: Operations.ListContacts.Input) async throws -> Operations.ListContacts.Output {
        let (_, book) = try await readableAddressBook(input.path.subAccountId)
        var validator = Validator()
        let limit = validator.limit(input.query.limit)
        let cursor = validator.uuidCursor(input.query.cursor)
        let number = Self.numberFilter(input.query.number, validator: &validator)
        var groupID: UUID?
        if let text = input.query.groupId {
            groupID = UUID(uuidString: text)
            if groupID == nil { validator.fail("groupId", "must be a group id") }
        }
        try validator.check()
        let name = input.query.name.flatMap { $0.isEmpty ? nil : $0 }
        let rows = try await contacts.list(
            in: book, nameContains: name, numberContains: number, groupID: groupID, after: cursor, limit: limit + 1)
        let page = Page(rows, limit: limit)
        return .ok(
            .init(
                body: .json(.init(items: page.items.map(Self.schema), nextCursor: page.nextCursor { $0.id.apiString })))
        )
    }

    package func createContact(_ input: Operations.CreateContact.Input) async throws -> Operations.CreateContact.Output
    {
        let (principal, book) = try await writableAddressBook(input.path.subAccountId)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let number = validator.phoneNumber(body.number, field: "/number")
        let name = validator.text(body.name, field: "/name", maximum: ContactRules.maximumNameLength)
        let reference = validator.text(
            body.reference, field: "/reference", maximum: ContactRules.maximumReferenceLength)
        try validator.check()
        switch try await contacts.create(
            in: book, number: number!, name: name, reference: reference, by: AuditActor(principal))
        {
        case .done(let record): return .created(.init(body: .json(Self.schema(record))))
        case .numberTaken: throw Self.numberTaken(number!)
        case .notFound: throw APIProblem.notFound("No sub-account \(book.subAccountID.apiString).")
        }
    }

    package func getContact(_ input: Operations.GetContact.Input) async throws -> Operations.GetContact.Output {
        let (_, book) = try await readableAddressBook(input.path.subAccountId)
        let id = try pathID(input.path.contactId, "contact")
        guard let record = try await contacts.find(id: id, in: book) else { throw Self.noContact(id) }
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func updateContact(_ input: Operations.UpdateContact.Input) async throws -> Operations.UpdateContact.Output
    {
        let (principal, book, id) = try await writableContact(input.path.subAccountId, input.path.contactId)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let number = validator.phoneNumber(body.number, field: "/number")
        let name =
            body.name == "" ? "" : validator.text(body.name, field: "/name", maximum: ContactRules.maximumNameLength)
        let reference =
            body.reference == ""
            ? "" : validator.text(body.reference, field: "/reference", maximum: ContactRules.maximumReferenceLength)
        try validator.check()
        switch try await contacts.update(
            id: id, in: book, number: number, name: name, reference: reference, by: AuditActor(principal))
        {
        case .done(let record): return .ok(.init(body: .json(Self.schema(record))))
        case .numberTaken: throw Self.numberTaken(number!)
        case .notFound: throw Self.noContact(id)
        }
    }

    package func deleteContact(_ input: Operations.DeleteContact.Input) async throws -> Operations.DeleteContact.Output
    {
        let (principal, book, id) = try await writableContact(input.path.subAccountId, input.path.contactId)
        guard try await contacts.delete(id: id, in: book, by: AuditActor(principal)) else { throw Self.noContact(id) }
        return .noContent(.init())
    }

    package func importContacts(_ input: Operations.ImportContacts.Input) async throws
        -> Operations.ImportContacts.Output
    {
        let (principal, book) = try await writableAddressBook(input.path.subAccountId)
        guard case .csv(let body) = input.body else { throw APIProblem.badRequest("text/csv body expected") }
        var bytes: [UInt8] = []
        for try await chunk in body {
            guard bytes.count + chunk.count <= ContactCSV.maximumBytes else {
                throw APIProblem(
                    .contentTooLarge, code: "payload_too_large",
                    detail: "A contacts file is at most \(ContactCSV.maximumBytes >> 20) MiB.")
            }
            bytes.append(contentsOf: chunk)
        }
        var collector = ContactImportCollector()
        collector.read(bytes)
        let rows = try collector.result()
        let mode = ContactImportMode(rawValue: input.query.onExisting?.rawValue ?? "skip") ?? .skip
        let report = try await contacts.importContacts(
            rows, columns: collector.columns, mode: mode, in: book, by: AuditActor(principal))
        return .ok(
            .init(
                body: .json(
                    .init(
                        onExisting: .init(rawValue: report.onExisting.rawValue)!, contacts: Int32(report.contacts),
                        created: Int32(report.created),
                        updated: Int32(report.updated), unchanged: Int32(report.unchanged),
                        groupsCreated: Int32(report.groupsCreated),
                        membershipsAdded: Int32(report.membershipsAdded)))))
    }

    // MARK: - Groups

    package func listContactGroups(_ input: Operations.ListContactGroups.Input) async throws
        -> Operations.ListContactGroups.Output
    {
        let (_, book) = try await readableAddressBook(input.path.subAccountId)
        var validator = Validator()
        let limit = validator.limit(input.query.limit)
        let cursor = validator.uuidCursor(input.query.cursor)
        try validator.check()
        let name = input.query.name.flatMap { $0.isEmpty ? nil : $0 }
        let rows = try await groups.list(in: book, nameContains: name, after: cursor, limit: limit + 1)
        let page = Page(rows, limit: limit)
        return .ok(
            .init(
                body: .json(.init(items: page.items.map(Self.schema), nextCursor: page.nextCursor { $0.id.apiString })))
        )
    }

    package func createContactGroup(_ input: Operations.CreateContactGroup.Input) async throws
        -> Operations.CreateContactGroup.Output
    {
        let (principal, book) = try await writableAddressBook(input.path.subAccountId)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let name = validator.groupName(body.name, field: "/name")
        try validator.check()
        switch try await groups.create(in: book, name: name!, by: AuditActor(principal)) {
        case .done(let record): return .created(.init(body: .json(Self.schema(record))))
        case .nameTaken: throw Self.groupNameTaken(name!)
        case .notFound: throw APIProblem.notFound("No sub-account \(book.subAccountID.apiString).")
        }
    }

    package func getContactGroup(_ input: Operations.GetContactGroup.Input) async throws
        -> Operations.GetContactGroup.Output
    {
        let (_, book) = try await readableAddressBook(input.path.subAccountId)
        let id = try pathID(input.path.groupId, "group")
        guard let record = try await groups.find(id: id, in: book) else { throw Self.noGroup(id) }
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func renameContactGroup(_ input: Operations.RenameContactGroup.Input) async throws
        -> Operations.RenameContactGroup.Output
    {
        let (principal, book, id) = try await writableGroup(input.path.subAccountId, input.path.groupId)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let name = validator.groupName(body.name, field: "/name")
        try validator.check()
        switch try await groups.rename(id: id, in: book, to: name!, by: AuditActor(principal)) {
        case .done(let record): return .ok(.init(body: .json(Self.schema(record))))
        case .nameTaken: throw Self.groupNameTaken(name!)
        case .notFound: throw Self.noGroup(id)
        }
    }

    package func deleteContactGroup(_ input: Operations.DeleteContactGroup.Input) async throws
        -> Operations.DeleteContactGroup.Output
    {
        let (principal, book, id) = try await writableGroup(input.path.subAccountId, input.path.groupId)
        guard try await groups.delete(id: id, in: book, by: AuditActor(principal)) else { throw Self.noGroup(id) }
        return .noContent(.init())
    }

    package func listContactGroupMembers(_ input: Operations.ListContactGroupMembers.Input) async throws
        -> Operations.ListContactGroupMembers.Output
    {
        let (_, book) = try await readableAddressBook(input.path.subAccountId)
        let id = try pathID(input.path.groupId, "group")
        guard try await groups.find(id: id, in: book) != nil else { throw Self.noGroup(id) }
        var validator = Validator()
        let limit = validator.limit(input.query.limit)
        let cursor = validator.uuidCursor(input.query.cursor)
        try validator.check()
        let rows = try await contacts.list(
            in: book, nameContains: nil, numberContains: nil, groupID: id, after: cursor, limit: limit + 1)
        let page = Page(rows, limit: limit)
        return .ok(
            .init(
                body: .json(.init(items: page.items.map(Self.schema), nextCursor: page.nextCursor { $0.id.apiString })))
        )
    }

    package func addContactGroupMembers(_ input: Operations.AddContactGroupMembers.Input) async throws
        -> Operations.AddContactGroupMembers.Output
    {
        let (principal, book, id) = try await writableGroup(input.path.subAccountId, input.path.groupId)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        let contactIDs = try Self.validatedContactIDs(body.contactIds)
        switch try await groups.addMembers(groupID: id, contactIDs: contactIDs, in: book, by: AuditActor(principal)) {
        case .changed(let change): return .ok(.init(body: .json(Self.schema(change))))
        case .notFound: throw Self.noGroup(id)
        case .unknownContacts(let indices):
            throw APIProblem.validation(
                indices.map { .init(field: "/contactIds/\($0)", message: "is not a contact of this sub-account") })
        }
    }

    package func removeContactGroupMembers(_ input: Operations.RemoveContactGroupMembers.Input) async throws
        -> Operations.RemoveContactGroupMembers.Output
    {
        let (principal, book, id) = try await writableGroup(input.path.subAccountId, input.path.groupId)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        let contactIDs = try Self.validatedContactIDs(body.contactIds)
        switch try await groups.removeMembers(groupID: id, contactIDs: contactIDs, in: book, by: AuditActor(principal))
        {
        case .changed(let change): return .ok(.init(body: .json(Self.schema(change))))
        case .notFound: throw Self.noGroup(id)
        case .unknownContacts: throw APIProblem.internalError
        }
    }

    // MARK: - Access

    /// The address book of a sub-account the caller can see (404 otherwise): the sub-account itself, its reseller, the admin.
    package func readableAddressBook(_ pathID: String) async throws -> (Principal, AddressBook) {
        let (principal, account) = try await findSubAccount(pathID)
        return (principal, AddressBook(account))
    }

    /// For changes: 404 unless the caller can see the sub-account, then 403 for the admin (it reads, the owner and
    /// its reseller write), then 409 when the sub-account is closed.
    package func writableAddressBook(_ pathID: String) async throws -> (Principal, AddressBook) {
        let (principal, account) = try await findSubAccount(pathID)
        return (principal, try Self.writable(account, by: principal))
    }

    private static func writable(_ account: SubAccountRecord, by principal: Principal) throws -> AddressBook {
        try Access.ensure(principal, isOneOf: .subAccount, .reseller)
        guard account.status != .closed else { throw APIProblem.conflict("The sub-account is closed.") }
        return AddressBook(account)
    }

    /// A contact to change: 404 for the sub-account or the contact before 403 for the role.
    private func writableContact(_ subAccountPathID: String, _ contactPathID: String) async throws -> (
        Principal, AddressBook, UUID
    ) {
        let (principal, account) = try await findSubAccount(subAccountPathID)
        let id = try pathID(contactPathID, "contact")
        guard try await contacts.find(id: id, in: AddressBook(account)) != nil else { throw Self.noContact(id) }
        return (principal, try Self.writable(account, by: principal), id)
    }

    /// A group to change: 404 for the sub-account or the group before 403 for the role.
    private func writableGroup(_ subAccountPathID: String, _ groupPathID: String) async throws -> (
        Principal, AddressBook, UUID
    ) {
        let (principal, account) = try await findSubAccount(subAccountPathID)
        let id = try pathID(groupPathID, "group")
        guard try await groups.find(id: id, in: AddressBook(account)) != nil else { throw Self.noGroup(id) }
        return (principal, try Self.writable(account, by: principal), id)
    }

    // MARK: - Input

    /// Digits to search numbers for: separators and a leading `+` are dropped; nil when not given.
    package static func numberFilter(_ text: String?, validator: inout Validator) -> String? {
        guard let text else { return nil }
        var digits = ""
        for (index, character) in text.enumerated() {
            if character == "+", index == 0 { continue }
            if [" ", "-", ".", "(", ")", "/"].contains(character) { continue }
            guard character.isASCII, character.isWholeNumber else {
                validator.fail("number", "must be digits (a part of a number)")
                return nil
            }
            digits.append(character)
        }
        return digits.isEmpty ? nil : digits
    }

    package static func validatedContactIDs(_ texts: [String]) throws -> [UUID] {
        var validator = Validator()
        if texts.isEmpty || texts.count > ContactRules.maximumMembershipBatch {
            validator.fail("/contactIds", "must hold 1 to \(ContactRules.maximumMembershipBatch) contact ids")
        }
        var ids: [UUID] = []
        for (index, text) in texts.prefix(ContactRules.maximumMembershipBatch).enumerated() {
            if let id = UUID(uuidString: text) {
                ids.append(id)
            } else {
                validator.fail("/contactIds/\(index)", "is not a contact id")
            }
        }
        try validator.check()
        return ids
    }

    // MARK: - Problems

    package static func noContact(_ id: UUID) -> APIProblem { .notFound("No contact \(id.apiString).") }
    package static func noGroup(_ id: UUID) -> APIProblem { .notFound("No group \(id.apiString).") }

    package static func numberTaken(_ number: PhoneNumber) -> APIProblem {
        .conflict("The sub-account already has a contact with the number \(number.digits).")
    }

    package static func groupNameTaken(_ name: String) -> APIProblem {
        .conflict("The sub-account already has a group named \(name) (names are compared case-insensitively).")
    }

    // MARK: - Schemas

    package static func schema(_ record: ContactRecord) -> Components.Schemas.Contact {
        .init(
            id: record.id.apiString, resellerId: record.resellerID.apiString,
            subAccountId: record.subAccountID.apiString,
            number: record.number, name: record.name, reference: record.reference,
            groups: zip(record.groupIDs, record.groupNames).map { .init(id: $0.apiString, name: $1) },
            createdAt: record.createdAt, updatedAt: record.updatedAt)
    }

    package static func schema(_ record: ContactGroupRecord) -> Components.Schemas.ContactGroup {
        .init(
            id: record.id.apiString, resellerId: record.resellerID.apiString,
            subAccountId: record.subAccountID.apiString,
            name: record.name, memberCount: Int32(record.memberCount), createdAt: record.createdAt,
            updatedAt: record.updatedAt)
    }

    package static func schema(_ change: MembershipChange) -> Components.Schemas.MembershipChange {
        .init(group: schema(change.group), contactIds: change.contactIDs.map(\.apiString))
    }
}
