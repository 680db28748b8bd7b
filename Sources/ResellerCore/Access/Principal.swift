import Foundation

/// What an API key is allowed to be.
package enum Role: String, Sendable, Codable, CaseIterable {
    case admin
    case reseller
    case subAccount = "sub_account"
}

/// The authenticated caller of a request: the owner of the API key it presented.
package struct Principal: Sendable, Equatable {
    package var role: Role
    /// The tenant; nil for the admin.
    package var resellerID: UUID?
    /// Set for sub-accounts only.
    package var subAccountID: UUID?
    package var keyID: UUID

    package init(role: Role, resellerID: UUID?, subAccountID: UUID?, keyID: UUID) {
        self.role = role
        self.resellerID = resellerID
        self.subAccountID = subAccountID
        self.keyID = keyID
    }

    /// How the audit log names this caller.
    package var actor: String { "key:\(keyID.uuidString.lowercased())" }

    /// The rows this caller may see: everything for the admin, its tenant for a reseller,
    /// itself for a sub-account.
    package var scope: TenantScope {
        TenantScope(resellerID: resellerID, subAccountID: subAccountID)
    }
}

/// A row filter every tenant query applies; nil fields do not restrict.
package struct TenantScope: Sendable, Equatable {
    package var resellerID: UUID?
    package var subAccountID: UUID?

    package static let everything = TenantScope(resellerID: nil, subAccountID: nil)
}

/// The request's principal, set by `AuthenticationMiddleware` (generated handlers get no request context).
package enum AuthScope {
    @TaskLocal package static var principal: Principal?
}

/// Authorization checks handlers make before touching data.
///
/// Order matters for isolation: first "is this resource visible to the caller" (404 when not, the
/// same answer as for an id that does not exist), then "may this role do it" (403).
///
/// See docs/tenancy.md.
package enum Access {
    /// The current principal, or 401.
    package static func principal() throws -> Principal {
        guard let principal = AuthScope.principal else { throw DomainError.unauthorized }
        return principal
    }

    /// The current principal when its role is one of `roles`, else 403. For operations without a target id.
    package static func require(_ roles: Role...) throws -> Principal {
        let principal = try principal()
        guard roles.contains(principal.role) else {
            throw DomainError.forbidden("This operation is not available to the \(principal.role.rawValue) role.")
        }
        return principal
    }

    /// For operations on a reseller by id: the admin sees every reseller; a reseller or sub-account
    /// sees only its own (others answer 404). Then the role must be one of `roles` (else 403).
    package static func requireReseller(_ id: UUID, roles: Role...) throws -> Principal {
        let principal = try principal()
        if principal.role != .admin, principal.resellerID != id {
            throw DomainError.notFound("No reseller \(id.uuidString.lowercased()).")
        }
        guard roles.contains(principal.role) else {
            throw DomainError.forbidden("This operation is not available to the \(principal.role.rawValue) role.")
        }
        return principal
    }

    /// The 403 for a caller who can see a resource but whose role may not change it.
    package static func ensure(_ principal: Principal, isOneOf roles: Role...) throws {
        guard roles.contains(principal.role) else {
            throw DomainError.forbidden("This operation is not available to the \(principal.role.rawValue) role.")
        }
    }
}
