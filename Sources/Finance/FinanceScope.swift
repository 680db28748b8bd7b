import Foundation
import PostgresLibpq
import ResellerCore

/// Whose figures a report or export covers, and which of them the caller may see.
///
/// The admin sees every tenant and every layer (retail, wholesale, upstream cost); a reseller its own tenant's retail
/// and wholesale, never the upstream cost or the platform's margin; a sub-account its own retail figures only. The
/// admin may narrow to one reseller or sub-account, a reseller to one of its sub-accounts.
package struct FinanceScope: Sendable, Equatable {
    package var role: Role
    /// The rows covered: the caller's tenant (or sub-account), narrowed by its filters.
    package var resellerID: UUID?
    package var subAccountID: UUID?
    /// The caller's own reseller, whatever the filters (nil for the admin): whose chart of accounts applies.
    package var ownReseller: UUID?

    package init(role: Role, resellerID: UUID?, subAccountID: UUID?) {
        self.role = role
        self.resellerID = resellerID
        self.subAccountID = subAccountID
        self.ownReseller = role == .admin ? nil : resellerID
    }

    /// The caller's own scope, narrowed by the filters it passed (a filter outside its scope finds nothing).
    package init(principal: Principal, resellerID: UUID? = nil, subAccountID: UUID? = nil) {
        self.role = principal.role
        self.ownReseller = principal.resellerID
        self.resellerID = principal.resellerID ?? resellerID
        self.subAccountID = principal.subAccountID ?? subAccountID
        if principal.resellerID != nil, let resellerID, resellerID != principal.resellerID {
            // A reseller naming another tenant: an impossible id matches nothing.
            self.resellerID = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        }
        if principal.subAccountID != nil, let subAccountID, subAccountID != principal.subAccountID {
            self.subAccountID = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        }
    }

    package static let admin = FinanceScope(role: .admin, resellerID: nil, subAccountID: nil)

    package var seesWholesale: Bool { role != .subAccount }
    package var seesUpstreamCost: Bool { role == .admin }

    /// SQL: rows of tenant data (`reseller_id`, `sub_account_id` columns of `alias`) in scope.
    func tenantFilter(_ alias: String) -> String {
        "(\(SQLLiteral.uuid(resellerID)) IS NULL OR \(alias).reseller_id = \(SQLLiteral.uuid(resellerID)))"
            + " AND (\(SQLLiteral.uuid(subAccountID)) IS NULL OR \(alias).sub_account_id = \(SQLLiteral.uuid(subAccountID)))"
    }

    /// SQL: ledger accounts (alias `alias`) in scope. A reseller does not see the platform's revenue account kept for
    /// it, nor any upstream account.
    func accountFilter(_ alias: String) -> String {
        var filter = tenantFilter(alias)
        if resellerID != nil || subAccountID != nil {
            filter += " AND \(alias).reseller_id IS NOT NULL"
        }
        if role != .admin {
            filter += " AND \(alias).kind <> 'platform_revenue'"
        }
        return filter
    }
}

/// SQL literals for statements that cannot take bind parameters (`COPY`), and for building one SQL text that reports
/// and exports share. Every value goes through here; text is quoted with standard_conforming_strings on.
enum SQLLiteral {
    static func uuid(_ value: UUID?) -> String {
        guard let value else { return "NULL::uuid" }
        return "'\(value.apiString)'::uuid"
    }

    static func timestamp(_ value: Date) -> String {
        "'\(APIDates.string(from: value))'::timestamptz"
    }

    static func text(_ value: String) -> String {
        "'" + value.replacing("'", with: "''").replacing("\u{0}", with: "") + "'"
    }

    static func text(_ value: String?) -> String {
        guard let value else { return "NULL::text" }
        return text(value)
    }
}
