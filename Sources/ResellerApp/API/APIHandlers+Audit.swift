import Foundation
import ResellerAPI
import ResellerCore

/// The audit log: the admin reads everything, a reseller its own tenant.
extension APIHandlers {
    package func listAuditLog(_ input: Operations.ListAuditLog.Input) async throws -> Operations.ListAuditLog.Output {
        let principal = try Access.require(.admin, .reseller)
        var validator = Validator()
        let limit = validator.limit(input.query.limit)
        let cursor = validator.integerCursor(input.query.cursor)
        try validator.check()
        let rows = try await audit.list(
            scope: principal.scope, action: input.query.action, targetID: input.query.targetId?.lowercased(),
            before: cursor, limit: limit + 1)
        let page = Page(rows, limit: limit)
        return .ok(
            .init(
                body: .json(
                    .init(
                        items: try page.items.map(Self.schema), nextCursor: page.nextCursor { String($0.id) }))))
    }
}
