import Foundation
import ResellerAPI
import ResellerCore
import SMSCore

/// Sender names: sub-accounts request, resellers decide (and the admin for protected names),
/// the admin keeps the platform's blocked and protected list.
extension APIHandlers {
    package var senderNames: SenderNameRepository { SenderNameRepository(pool: pool) }

    package func listSenderNames(_ input: Operations.ListSenderNames.Input) async throws
        -> Operations.ListSenderNames.Output
    {
        let principal = try Access.principal()
        var validator = Validator()
        let limit = validator.limit(input.query.limit)
        let cursor = validator.uuidCursor(input.query.cursor)
        try validator.check()
        let status = input.query.status.flatMap { SenderNameStatus(rawValue: $0.rawValue) }
        let rows = try await senderNames.list(scope: principal.scope, status: status, after: cursor, limit: limit + 1)
        let page = Page(rows, limit: limit)
        return .ok(
            .init(
                body: .json(.init(items: page.items.map(Self.schema), nextCursor: page.nextCursor { $0.id.apiString })))
        )
    }

    package func requestSenderName(_ input: Operations.RequestSenderName.Input) async throws
        -> Operations.RequestSenderName.Output
    {
        let principal = try Access.require(.subAccount)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let name = validator.sender(body.name, field: "/name") ?? ""
        try validator.check()
        switch try await senderNames.request(
            resellerID: principal.resellerID!, subAccountID: principal.subAccountID!, name: name,
            by: AuditActor(principal))
        {
        case .requested(let record): return .created(.init(body: .json(Self.schema(record))))
        case .blocked: throw Self.senderNotAllowed
        case .duplicate:
            throw APIProblem.conflict("The sender name \(name) is already pending or approved for this account.")
        }
    }

    package func getSenderName(_ input: Operations.GetSenderName.Input) async throws -> Operations.GetSenderName.Output
    {
        let principal = try Access.principal()
        let id = try pathID(input.path.senderNameId, "sender name")
        guard let record = try await senderNames.find(id: id, scope: principal.scope) else {
            throw APIProblem.notFound("No sender name \(id.apiString).")
        }
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func approveSenderName(_ input: Operations.ApproveSenderName.Input) async throws
        -> Operations.ApproveSenderName.Output
    {
        let reason: String? =
            if case .json(let body) = input.body { try Self.validatedReason(body.reason, required: false) } else { nil }
        let record = try await decide(input.path.senderNameId, reason: reason, action: "sender_name.approve") {
            role, record, rule in
            if rule == .blocked { throw Self.senderNotAllowed }
            let needsAdmin = record.requiresAdmin || rule == .protected
            switch (role, record.status) {
            case (.reseller, .pending): return (needsAdmin ? .pendingAdmin : .approved, needsAdmin)
            case (.admin, .pending), (.admin, .pendingAdmin): return (.approved, needsAdmin)
            // Approved without the admin, then protected by a rule that approval did not see: the admin's approval
            // lets it send (the send check asks for it).
            case (.admin, .approved) where rule == .protected && !record.requiresAdmin: return (.approved, true)
            default: throw Self.notFrom(record.status, "approved")
            }
        }
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func rejectSenderName(_ input: Operations.RejectSenderName.Input) async throws
        -> Operations.RejectSenderName.Output
    {
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        let reason = try Self.validatedReason(body.reason, required: true)
        let record = try await decide(input.path.senderNameId, reason: reason, action: "sender_name.reject") {
            _, record, _ in
            guard [.pending, .pendingAdmin].contains(record.status) else {
                throw Self.notFrom(record.status, "rejected")
            }
            return (.rejected, record.requiresAdmin)
        }
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func revokeSenderName(_ input: Operations.RevokeSenderName.Input) async throws
        -> Operations.RevokeSenderName.Output
    {
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        let reason = try Self.validatedReason(body.reason, required: true)
        let record = try await decide(input.path.senderNameId, reason: reason, action: "sender_name.revoke") {
            _, record, _ in
            guard record.status == .approved else { throw Self.notFrom(record.status, "revoked") }
            return (.revoked, record.requiresAdmin)
        }
        return .ok(.init(body: .json(Self.schema(record))))
    }

    /// A decision by a reseller or the admin on a name the caller can see (404 otherwise, then 403 for sub-accounts).
    private func decide(
        _ pathID: String, reason: String?, action: String,
        _ transition:
            @escaping @Sendable (Role, SenderNameRecord, SenderNameRuleRecord.Kind?) throws -> (SenderNameStatus, Bool)
    ) async throws -> SenderNameRecord {
        let principal = try Access.principal()
        let id = try self.pathID(pathID, "sender name")
        let role = principal.role
        guard
            let record = try await senderNames.decide(
                id: id, scope: principal.scope, reason: reason, action: action, by: AuditActor(principal),
                transition: { record, rule in
                    try Access.ensure(principal, isOneOf: .admin, .reseller)
                    let (status, requiresAdmin) = try transition(role, record, rule)
                    return (status, requiresAdmin)
                })
        else { throw APIProblem.notFound("No sender name \(id.apiString).") }
        return record
    }

    package static var senderNotAllowed: APIProblem {
        let code = GatewayErrorCode.senderNotAllowed
        return .validation([
            .init(
                field: "/name", message: "is on the platform's blocklist (\(code.description))",
                gatewayCode: code.rawValue)
        ])
    }

    package static func notFrom(_ status: SenderNameStatus, _ target: String) -> APIProblem {
        .conflict("A sender name that is \(status.rawValue) cannot be \(target) by this role.")
    }

    // MARK: - The platform list

    package func listSenderNameRules(_ input: Operations.ListSenderNameRules.Input) async throws
        -> Operations.ListSenderNameRules.Output
    {
        _ = try Access.require(.admin)
        return .ok(.init(body: .json(.init(items: try await senderNames.rules().map(Self.schema)))))
    }

    package func createSenderNameRule(_ input: Operations.CreateSenderNameRule.Input) async throws
        -> Operations.CreateSenderNameRule.Output
    {
        let principal = try Access.require(.admin)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let name = validator.required(body.name, field: "/name", maximum: SenderName.maximumNumericLength)
        let reason = validator.text(body.reason, field: "/reason", maximum: 500)
        try validator.check()
        guard
            let record = try await senderNames.createRule(
                name: name, kind: body.kind == .blocked ? .blocked : .protected, reason: reason,
                by: AuditActor(principal))
        else { throw APIProblem.conflict("There is already a rule for \(name).") }
        return .created(.init(body: .json(Self.schema(record))))
    }

    package func deleteSenderNameRule(_ input: Operations.DeleteSenderNameRule.Input) async throws
        -> Operations.DeleteSenderNameRule.Output
    {
        let principal = try Access.principal()
        let id = try pathID(input.path.ruleId, "sender-name rule")
        // The platform list is the admin's: to anyone else its entries do not exist.
        guard principal.role == .admin, try await senderNames.deleteRule(id: id, by: AuditActor(principal)) else {
            throw APIProblem.notFound("No sender-name rule \(id.apiString).")
        }
        return .noContent(.init())
    }

    package static func schema(_ record: SenderNameRecord) -> Components.Schemas.SenderName {
        .init(
            id: record.id.apiString, resellerId: record.resellerID.apiString,
            subAccountId: record.subAccountID.apiString, name: record.name,
            status: .init(rawValue: record.status.rawValue)!, requiresAdmin: record.requiresAdmin,
            reason: record.reason,
            decidedBy: record.decidedBy, decidedAt: record.decidedAt, createdAt: record.createdAt,
            updatedAt: record.updatedAt)
    }

    package static func schema(_ record: SenderNameRuleRecord) -> Components.Schemas.SenderNameRule {
        .init(
            id: record.id.apiString, name: record.name, kind: .init(rawValue: record.kind.rawValue)!,
            reason: record.reason, createdAt: record.createdAt)
    }
}
