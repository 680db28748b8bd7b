import Foundation
import HTTPTypes
import ResellerAPI
import ResellerCore

/// Sub-accounts: a reseller manages its own; the admin may read them; a sub-account may read itself.
extension APIHandlers {
    package func listSubAccounts(_ input: Operations.ListSubAccounts.Input) async throws
        -> Operations.ListSubAccounts.Output
    {
        let principal = try Access.require(.admin, .reseller)
        var validator = Validator()
        let limit = validator.limit(input.query.limit)
        let cursor = validator.uuidCursor(input.query.cursor)
        try validator.check()
        let status = input.query.status.flatMap { AccountStatus(rawValue: $0.rawValue) }
        let name = input.query.name.flatMap { $0.isEmpty ? nil : $0 }
        let rows = try await subAccounts.list(
            scope: principal.scope, status: status, nameContains: name, after: cursor, limit: limit + 1)
        let page = Page(rows, limit: limit)
        return .ok(
            .init(
                body: .json(
                    .init(
                        items: page.items.map(Self.schema), nextCursor: page.nextCursor { $0.id.apiString }))))
    }

    package func createSubAccount(_ input: Operations.CreateSubAccount.Input) async throws
        -> Operations.CreateSubAccount.Output
    {
        let principal = try Access.require(.reseller)
        let resellerID = principal.resellerID!
        // Every attempt counts, refused ones too: a name that is not available must not be cheap to find out about.
        if let wait = subAccountCreations.take(resellerID) {
            throw APIProblem.rateLimited("Too many sub-accounts created or attempted; retry later.", wait: wait)
        }
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let name = validator.required(body.name, field: "/name", maximum: 200)
        let username = validator.username(body.username, field: "/username")
        let password = validator.password(body.password, field: "/password") ?? ""
        let sender = validator.sender(body.defaultSender, field: "/defaultSender")
        try validator.check()
        // Before the slow hash: a name that is not available costs no hash.
        if let holder = try await subAccounts.usernameHolder(username) {
            throw Self.usernameNotAvailable(username, holder: holder, asker: resellerID)
        }
        let hash = try await passwordHasher.hash(password)
        switch try await subAccounts.create(
            resellerID: resellerID, name: name, username: username, password: hash, defaultSender: sender,
            by: AuditActor(principal))
        {
        case .created(let record): return .created(.init(body: .json(Self.schema(record))))
        case .usernameTaken:
            // Taken in the meantime.
            throw Self.usernameNotAvailable(
                username, holder: try await subAccounts.usernameHolder(username), asker: resellerID)
        }
    }

    /// Usernames are 1601 logins, unique across all tenants (docs/tenancy.md): the reseller that has the name is told
    /// which of its sub-accounts has it; any other gets one answer that names no one.
    static func usernameNotAvailable(_ username: String, holder: (resellerID: UUID, subAccountID: UUID)?, asker: UUID)
        -> APIProblem
    {
        if let holder, holder.resellerID == asker {
            return APIProblem(
                .conflict, code: "username_taken",
                detail: "Your sub-account \(holder.subAccountID.apiString) already has the username \(username).")
        }
        return APIProblem(
            .conflict, code: "username_unavailable",
            detail: "This username is not available (usernames are logins, unique across the service); choose another.")
    }

    package func getSubAccount(_ input: Operations.GetSubAccount.Input) async throws -> Operations.GetSubAccount.Output
    {
        let (_, record) = try await findSubAccount(input.path.subAccountId)
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func updateSubAccount(_ input: Operations.UpdateSubAccount.Input) async throws
        -> Operations.UpdateSubAccount.Output
    {
        let (principal, account) = try await visibleSubAccount(input.path.subAccountId)
        let id = account.id
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let name = validator.text(body.name, field: "/name", maximum: 200)
        let password = validator.password(body.password, field: "/password")
        let sender = body.defaultSender == "" ? "" : validator.sender(body.defaultSender, field: "/defaultSender")
        try validator.check()
        let hash = if let password { try await passwordHasher.hash(password) } else { PasswordHasher.Hash?.none }
        guard
            let record = try await subAccounts.update(
                id: id, scope: principal.scope, name: name, password: hash, defaultSender: sender,
                by: AuditActor(principal))
        else { throw APIProblem.notFound("No sub-account \(id.apiString).") }
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func blockSubAccount(_ input: Operations.BlockSubAccount.Input) async throws
        -> Operations.BlockSubAccount.Output
    {
        let (principal, account) = try await visibleSubAccount(input.path.subAccountId)
        let id = account.id
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        let reason = try Self.validatedReason(body.reason, required: true)
        let status: AccountStatus = body.status == .blockedPayment ? .blockedPayment : .blocked
        let change = try await subAccounts.changeStatus(
            id: id, scope: principal.scope, to: status, from: [.active, .blockedPayment, .blocked], reason: reason,
            action: "sub_account.block", by: AuditActor(principal))
        return .ok(.init(body: .json(Self.schema(try Self.changed(change, "sub-account", id)))))
    }

    package func unblockSubAccount(_ input: Operations.UnblockSubAccount.Input) async throws
        -> Operations.UnblockSubAccount.Output
    {
        let (principal, account) = try await visibleSubAccount(input.path.subAccountId)
        let id = account.id
        let reason: String? =
            if case .json(let body) = input.body { try Self.validatedReason(body.reason, required: false) } else { nil }
        let change = try await subAccounts.changeStatus(
            id: id, scope: principal.scope, to: .active, from: [.blockedPayment, .blocked], reason: reason,
            action: "sub_account.unblock", by: AuditActor(principal))
        return .ok(.init(body: .json(Self.schema(try Self.changed(change, "sub-account", id)))))
    }

    package func closeSubAccount(_ input: Operations.CloseSubAccount.Input) async throws
        -> Operations.CloseSubAccount.Output
    {
        let (principal, account) = try await visibleSubAccount(input.path.subAccountId)
        let id = account.id
        let reason: String? =
            if case .json(let body) = input.body { try Self.validatedReason(body.reason, required: false) } else { nil }
        let change = try await subAccounts.changeStatus(
            id: id, scope: principal.scope, to: .closed, from: [.active, .blockedPayment, .blocked], reason: reason,
            action: "sub_account.close", by: AuditActor(principal))
        return .ok(.init(body: .json(Self.schema(try Self.changed(change, "sub-account", id)))))
    }

    /// The sub-account a path names, if the caller can see it (404 otherwise, also for another tenant's).
    package func findSubAccount(_ pathID: String) async throws -> (Principal, SubAccountRecord) {
        let principal = try Access.principal()
        let id = try self.pathID(pathID, "sub-account")
        guard let record = try await subAccounts.find(id: id, scope: principal.scope) else {
            throw APIProblem.notFound("No sub-account \(id.apiString).")
        }
        return (principal, record)
    }

    /// For reseller-only work on one sub-account: 404 unless the caller can see it, then 403 unless a reseller.
    package func visibleSubAccount(_ pathID: String) async throws -> (Principal, SubAccountRecord) {
        let (principal, record) = try await findSubAccount(pathID)
        try Access.ensure(principal, isOneOf: .reseller)
        return (principal, record)
    }
}
