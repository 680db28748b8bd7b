import Foundation
import HTTPTypes

/// What an API key is allowed to be.
public enum Role: String, Sendable, Codable, CaseIterable {
    case admin
    case reseller
    case subAccount = "sub_account"
}

/// The authenticated caller of a request: the owner of the API key it presented.
public struct Principal: Sendable, Equatable {
    public var role: Role
    /// The tenant; nil for the admin.
    public var resellerID: UUID?
    /// Set for sub-accounts only.
    public var subAccountID: UUID?
    public var keyID: UUID

    public init(role: Role, resellerID: UUID?, subAccountID: UUID?, keyID: UUID) {
        self.role = role
        self.resellerID = resellerID
        self.subAccountID = subAccountID
        self.keyID = keyID
    }

    /// How the audit log names this caller.
    public var actor: String { "key:\(keyID.uuidString.lowercased())" }

    /// The rows this caller may see: everything for the admin, its tenant for a reseller,
    /// itself for a sub-account.
    public var scope: TenantScope {
        TenantScope(resellerID: resellerID, subAccountID: subAccountID)
    }
}

/// A row filter every tenant query applies; nil fields do not restrict.
public struct TenantScope: Sendable, Equatable {
    public var resellerID: UUID?
    public var subAccountID: UUID?

    public static let everything = TenantScope(resellerID: nil, subAccountID: nil)
}

/// The request's principal, set by `AuthenticationMiddleware` (generated handlers get no request context).
public enum AuthScope {
    @TaskLocal public static var principal: Principal?
}

extension APIProblem {
    static let unauthorized = APIProblem(
        .unauthorized, code: "unauthorized", detail: "A valid API key is required (Authorization: Bearer sk_live_…).")
    static func forbidden(_ detail: String) -> APIProblem { APIProblem(.forbidden, code: "forbidden", detail: detail) }
}

/// Authorization checks handlers make before touching data.
///
/// Order matters for isolation: first "is this resource visible to the caller" (404 when not, the
/// same answer as for an id that does not exist), then "may this role do it" (403).
enum Access {
    /// The current principal, or 401.
    static func principal() throws -> Principal {
        guard let principal = AuthScope.principal else { throw APIProblem.unauthorized }
        return principal
    }

    /// The current principal when its role is one of `roles`, else 403. For operations without a target id.
    static func require(_ roles: Role...) throws -> Principal {
        let principal = try principal()
        guard roles.contains(principal.role) else {
            throw APIProblem.forbidden("This operation is not available to the \(principal.role.rawValue) role.")
        }
        return principal
    }

    /// For operations on a reseller by id: the admin sees every reseller; a reseller or sub-account
    /// sees only its own (others answer 404). Then the role must be one of `roles` (else 403).
    static func requireReseller(_ id: UUID, roles: Role...) throws -> Principal {
        let principal = try principal()
        if principal.role != .admin, principal.resellerID != id { throw APIProblem.notFound("No reseller \(id.uuidString.lowercased()).") }
        guard roles.contains(principal.role) else {
            throw APIProblem.forbidden("This operation is not available to the \(principal.role.rawValue) role.")
        }
        return principal
    }

    /// The 403 for a caller who can see a resource but whose role may not change it.
    static func ensure(_ principal: Principal, isOneOf roles: Role...) throws {
        guard roles.contains(principal.role) else {
            throw APIProblem.forbidden("This operation is not available to the \(principal.role.rawValue) role.")
        }
    }
}
