import Foundation
import Ledger
import PostgresLibpq
import ResellerCore

/// One line of a chart of accounts: the operator's code (and name) for a ledger account kind.
package struct AccountCode: Decodable, Sendable, Equatable {
    package var accountKind: LedgerAccountKind
    package var code: String
    package var name: String?

    package init(accountKind: LedgerAccountKind, code: String, name: String?) {
        self.accountKind = accountKind
        self.code = code
        self.name = name
    }

    package enum CodingKeys: String, CodingKey {
        case code, name
        case accountKind = "account_kind"
    }
}

/// Charts of accounts: the platform's (kept by the admin) and each reseller's own (kept by the reseller), used by the
/// double-entry journal export. See docs/finance.md.
package enum AccountCodes {
    /// The kinds a chart must map before a double-entry export of the scope can run. A reseller's journal touches its
    /// own accounts and, on the other side of its wholesale charges and top-ups, the platform's revenue and funding
    /// (in its books: what it pays the platform, and its payments).
    package static func requiredKinds(for role: Role) -> [LedgerAccountKind] {
        switch role {
        case .admin: LedgerAccountKind.allCases
        case .reseller:
            [
                .platformFunding, .platformRevenue, .resellerWallet, .resellerRevenue, .resellerIssuance,
                .subAccountWallet,
            ]
        case .subAccount: []
        }
    }

    /// The chart of `resellerID` (nil: the platform's), ordered by kind.
    package static func chart(resellerID: UUID?, on connection: PostgresConnection) async throws -> [AccountCode] {
        try await connection.query(
            """
            SELECT account_kind, code, name FROM account_code WHERE reseller_id IS NOT DISTINCT FROM \(resellerID)::uuid
            ORDER BY account_kind
            """
        ).decodeRecords(AccountCode.self)
    }

    /// Replaces the chart of `resellerID` (nil: the platform's) with `codes`, audited.
    package static func replace(
        resellerID: UUID?, with codes: [AccountCode], by actor: AuditActor, on connection: PostgresConnection
    ) async throws -> [AccountCode] {
        let before = try await chart(resellerID: resellerID, on: connection)
        try await connection.query(
            "DELETE FROM account_code WHERE reseller_id IS NOT DISTINCT FROM \(resellerID)::uuid")
        if !codes.isEmpty {
            try await connection.query(
                """
                INSERT INTO account_code (reseller_id, account_kind, code, name, updated_by)
                SELECT \(resellerID)::uuid, k, c, n, \(actor.actor)
                FROM unnest(\(codes.map(\.accountKind.rawValue)), \(codes.map(\.code)), \(codes.map(\.name))) AS u (k, c, n)
                """)
        }
        let after = try await chart(resellerID: resellerID, on: connection)
        try await AuditRepository.record(
            on: connection, by: actor, action: "finance.account_codes", targetType: "account_codes",
            targetID: resellerID?.apiString ?? "platform", resellerID: resellerID,
            before: before.map(Audit.init), after: after.map(Audit.init))
        return after
    }

    private struct Audit: Encodable {
        var accountKind: String
        var code: String
        var name: String?
        init(_ code: AccountCode) {
            accountKind = code.accountKind.rawValue
            self.code = code.code
            name = code.name
        }
    }
}
