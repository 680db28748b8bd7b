import Foundation
import OpenAPIRuntime
import ResellerAPI
import ResellerCore
import SMSCore

/// Records → the schemas of `openapi.yaml`.
extension APIHandlers {
    /// A path id: one that is not even a UUID names nothing, so it is 404 like any other unknown id.
    package func pathID(_ text: String, _ what: String) throws -> UUID {
        guard let id = UUID(uuidString: text) else { throw APIProblem.notFound("No \(what) \(text).") }
        return id
    }

    package static func schema(_ key: APIKeyRecord) -> Components.Schemas.ApiKey {
        .init(
            id: key.id.apiString, name: key.name, prefix: key.prefix,
            ownerKind: .init(rawValue: key.ownerKind.rawValue)!,
            resellerId: key.resellerID?.apiString, subAccountId: key.subAccountID?.apiString, createdAt: key.createdAt,
            lastUsedAt: key.lastUsedAt, revokedAt: key.revokedAt)
    }

    package static func schema(_ reseller: ResellerRecord) -> Components.Schemas.Reseller {
        .init(
            id: reseller.id.apiString, name: reseller.name, contactEmail: reseller.contactEmail,
            refundPolicy: .init(rawValue: reseller.refundPolicy) ?? .refundUndelivered,
            status: .init(rawValue: reseller.status.rawValue)!, statusReason: reseller.statusReason,
            statusChangedBy: reseller.statusChangedBy, statusChangedAt: reseller.statusChangedAt,
            createdAt: reseller.createdAt, updatedAt: reseller.updatedAt)
    }

    package static func schema(_ account: SubAccountRecord) -> Components.Schemas.SubAccount {
        .init(
            id: account.id.apiString, resellerId: account.resellerID.apiString, name: account.name,
            username: account.username,
            defaultSender: account.defaultSender, status: .init(rawValue: account.status.rawValue)!,
            effectiveStatus: .init(rawValue: account.effectiveStatus.rawValue)!,
            effectiveGatewayCode: account.effectiveStatus.gatewayCode.map { Int32($0.rawValue) },
            statusReason: account.statusReason, statusChangedBy: account.statusChangedBy,
            statusChangedAt: account.statusChangedAt,
            createdAt: account.createdAt, updatedAt: account.updatedAt)
    }

    package static func schema(_ entry: AuditEntryRecord) throws -> Components.Schemas.AuditEntry {
        let decoder = JSONDecoder()
        return .init(
            id: entry.id, at: entry.at, actor: entry.actor, actorRole: .init(rawValue: entry.actorRole) ?? .system,
            resellerId: entry.resellerID?.apiString, action: entry.action, targetType: entry.targetType,
            targetId: entry.targetID,
            before: try entry.before.map {
                try decoder.decode(Components.Schemas.AuditEntry.BeforePayload.self, from: Data($0.utf8))
            },
            after: try entry.after.map {
                try decoder.decode(Components.Schemas.AuditEntry.AfterPayload.self, from: Data($0.utf8))
            },
            requestId: entry.requestID)
    }
}

/// One page of a listing read with `limit + 1` rows: the first `limit` rows, and whether more follow.
package struct Page<Row> {
    package let items: [Row]
    package let hasMore: Bool

    package init(_ rows: [Row], limit: Int) {
        items = Array(rows.prefix(limit))
        hasMore = rows.count > limit
    }

    /// The cursor of the next page (the last row's key), nil on the last page.
    package func nextCursor(_ key: (Row) -> String) -> String? {
        hasMore ? items.last.map(key) : nil
    }
}
