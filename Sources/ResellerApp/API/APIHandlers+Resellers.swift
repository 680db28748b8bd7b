import Foundation
import ResellerAPI
import ResellerCore

/// Resellers: the admin onboards, updates, blocks, unblocks and closes them; a reseller may read itself.
extension APIHandlers {
    package func listResellers(_ input: Operations.ListResellers.Input) async throws -> Operations.ListResellers.Output
    {
        _ = try Access.require(.admin)
        var validator = Validator()
        let limit = validator.limit(input.query.limit)
        let cursor = validator.uuidCursor(input.query.cursor)
        try validator.check()
        let status = input.query.status.flatMap { AccountStatus(rawValue: $0.rawValue) }
        let name = input.query.name.flatMap { $0.isEmpty ? nil : $0 }
        let rows = try await resellers.list(status: status, nameContains: name, after: cursor, limit: limit + 1)
        let page = Page(rows, limit: limit)
        return .ok(
            .init(
                body: .json(
                    .init(
                        items: page.items.map(Self.schema), nextCursor: page.nextCursor { $0.id.apiString }))))
    }

    package func createReseller(_ input: Operations.CreateReseller.Input) async throws
        -> Operations.CreateReseller.Output
    {
        let principal = try Access.require(.admin)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let name = validator.required(body.name, field: "/name", maximum: 200)
        let email = validator.email(body.contactEmail, field: "/contactEmail")
        try validator.check()
        let record = try await resellers.create(
            name: name, contactEmail: email.flatMap { $0.isEmpty ? nil : $0 },
            refundPolicy: body.refundPolicy?.rawValue, by: AuditActor(principal))
        return .created(.init(body: .json(Self.schema(record))))
    }

    package func getReseller(_ input: Operations.GetReseller.Input) async throws -> Operations.GetReseller.Output {
        let id = try pathID(input.path.resellerId, "reseller")
        _ = try Access.requireReseller(id, roles: .admin, .reseller)
        guard let record = try await resellers.find(id: id) else {
            throw APIProblem.notFound("No reseller \(id.apiString).")
        }
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func updateReseller(_ input: Operations.UpdateReseller.Input) async throws
        -> Operations.UpdateReseller.Output
    {
        let id = try pathID(input.path.resellerId, "reseller")
        let principal = try Access.requireReseller(id, roles: .admin)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let name = validator.text(body.name, field: "/name", maximum: 200)
        let email = validator.email(body.contactEmail, field: "/contactEmail")
        try validator.check()
        guard
            let record = try await resellers.update(
                id: id, name: name, contactEmail: email, refundPolicy: body.refundPolicy?.rawValue,
                by: AuditActor(principal))
        else { throw APIProblem.notFound("No reseller \(id.apiString).") }
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func blockReseller(_ input: Operations.BlockReseller.Input) async throws -> Operations.BlockReseller.Output
    {
        let id = try pathID(input.path.resellerId, "reseller")
        let principal = try Access.requireReseller(id, roles: .admin)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        let reason = try Self.validatedReason(body.reason, required: true)
        let status: AccountStatus = body.status == .blockedPayment ? .blockedPayment : .blocked
        let change = try await resellers.changeStatus(
            id: id, to: status, from: [.active, .blockedPayment, .blocked], reason: reason, action: "reseller.block",
            by: AuditActor(principal))
        return .ok(.init(body: .json(Self.schema(try Self.changed(change, "reseller", id)))))
    }

    package func unblockReseller(_ input: Operations.UnblockReseller.Input) async throws
        -> Operations.UnblockReseller.Output
    {
        let id = try pathID(input.path.resellerId, "reseller")
        let principal = try Access.requireReseller(id, roles: .admin)
        let reason: String? =
            if case .json(let body) = input.body { try Self.validatedReason(body.reason, required: false) } else { nil }
        let change = try await resellers.changeStatus(
            id: id, to: .active, from: [.blockedPayment, .blocked], reason: reason, action: "reseller.unblock",
            by: AuditActor(principal))
        return .ok(.init(body: .json(Self.schema(try Self.changed(change, "reseller", id)))))
    }

    package func closeReseller(_ input: Operations.CloseReseller.Input) async throws -> Operations.CloseReseller.Output
    {
        let id = try pathID(input.path.resellerId, "reseller")
        let principal = try Access.requireReseller(id, roles: .admin)
        let reason: String? =
            if case .json(let body) = input.body { try Self.validatedReason(body.reason, required: false) } else { nil }
        let change = try await resellers.changeStatus(
            id: id, to: .closed, from: [.active, .blockedPayment, .blocked], reason: reason, action: "reseller.close",
            by: AuditActor(principal))
        return .ok(.init(body: .json(Self.schema(try Self.changed(change, "reseller", id)))))
    }

    package static func validatedReason(_ reason: String?, required: Bool) throws -> String? {
        var validator = Validator()
        let value =
            required
            ? validator.required(reason, field: "/reason", maximum: 500)
            : validator.text(reason, field: "/reason", maximum: 500)
        if required, reason == nil { validator.fail("/reason", "is required") }
        try validator.check()
        return value
    }

    /// The record of a status change, or the 404 / 409 it turned into.
    package static func changed<Record>(_ change: StatusChange<Record>, _ what: String, _ id: UUID) throws -> Record {
        switch change {
        case .changed(let record): return record
        case .notFound: throw APIProblem.notFound("No \(what) \(id.apiString).")
        case .conflict(let status):
            throw APIProblem.conflict("The \(what) is \(status.rawValue); this change is not allowed from there.")
        }
    }
}
