import Foundation
import PostgresLibpq
import ResellerCore

/// Where a policy in force comes from.
package enum PolicySource: String, Sendable {
    /// The account's own row.
    case own
    /// The reseller's default for its sub-accounts (retail only).
    case reseller
    /// No row: `RefundPolicy.defaultChargedStates`.
    case `default`
}

/// Charged final states and where they come from.
package struct PolicyInForce: Sendable, Equatable {
    package var chargedStates: Set<MessageStatus>
    package var source: PolicySource
}

/// `refund_policy`: which final states are charged, per reseller (its sub-accounts' default, and the admin's
/// wholesale policy for it) and per sub-account (an override). Changes are audited; setting what is in force already
/// writes nothing.
package struct RefundPolicyRepository: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    package enum Layer: String, Sendable {
        case retail
        case wholesale
    }

    /// One `refund_policy` row.
    private struct Row {
        var resellerID: UUID
        var subAccountID: UUID?
        var layer: String
        var chargedStates: Set<MessageStatus>
    }

    private static func rows(resellerIDs: [UUID], on connection: PostgresConnection) async throws -> [Row] {
        try await connection.query(
            """
            SELECT reseller_id, sub_account_id, layer, charged_states FROM refund_policy WHERE reseller_id = ANY (\(resellerIDs))
            """
        ).decode((UUID, UUID?, String, [String]).self).map {
            Row(
                resellerID: $0.0, subAccountID: $0.1, layer: $0.2,
                chargedStates: Set($0.3.compactMap(MessageStatus.init(rawValue:))))
        }
    }

    /// The one reading of the rows: a sub-account's retail policy is its own row, else its reseller's, else the
    /// default; a reseller's wholesale policy is the admin's row for it, else the default.
    private static func inForce(_ rows: [Row], resellerID: UUID, subAccountID: UUID?, layer: Layer) -> PolicyInForce {
        let ofReseller = rows.filter { $0.resellerID == resellerID && $0.layer == layer.rawValue }
        if let subAccountID, let own = ofReseller.first(where: { $0.subAccountID == subAccountID }) {
            return PolicyInForce(chargedStates: own.chargedStates, source: .own)
        }
        if let reseller = ofReseller.first(where: { $0.subAccountID == nil }) {
            return PolicyInForce(chargedStates: reseller.chargedStates, source: subAccountID == nil ? .own : .reseller)
        }
        return PolicyInForce(chargedStates: RefundPolicy.defaultChargedStates, source: .default)
    }

    /// The policies settling messages of these (reseller, sub-account) pairs, by sub-account, inside the caller's
    /// transaction.
    package static func policies(for owners: [(UUID, UUID)], on connection: PostgresConnection) async throws -> [UUID:
        RefundPolicy]
    {
        guard !owners.isEmpty else { return [:] }
        let rows = try await rows(resellerIDs: Array(Set(owners.map(\.0))), on: connection)
        var result: [UUID: RefundPolicy] = [:]
        for (reseller, subAccount) in owners {
            result[subAccount] = RefundPolicy(
                retail: inForce(rows, resellerID: reseller, subAccountID: subAccount, layer: .retail).chargedStates,
                wholesale: inForce(rows, resellerID: reseller, subAccountID: nil, layer: .wholesale).chargedStates)
        }
        return result
    }

    /// The reseller's retail default and the admin's wholesale policy for it.
    package func reseller(_ resellerID: UUID) async throws -> (retail: PolicyInForce, wholesale: PolicyInForce) {
        let rows = try await pool.withConnection { try await Self.rows(resellerIDs: [resellerID], on: $0) }
        return (
            Self.inForce(rows, resellerID: resellerID, subAccountID: nil, layer: .retail),
            Self.inForce(rows, resellerID: resellerID, subAccountID: nil, layer: .wholesale)
        )
    }

    /// The retail policy in force for a sub-account.
    package func subAccount(_ subAccountID: UUID, resellerID: UUID) async throws -> PolicyInForce {
        let rows = try await pool.withConnection { try await Self.rows(resellerIDs: [resellerID], on: $0) }
        return Self.inForce(rows, resellerID: resellerID, subAccountID: subAccountID, layer: .retail)
    }

    /// Sets (or with nil, removes) one policy row, under its lock, audited.
    package func set(
        _ states: Set<MessageStatus>?, layer: Layer, resellerID: UUID, subAccountID: UUID?, by actor: AuditActor
    ) async throws {
        try await pool.withTransaction { connection in
            // The reseller row first: concurrent first-time sets of one policy then queue instead of colliding.
            try await connection.query("SELECT 1 FROM reseller WHERE id = \(resellerID) FOR UPDATE")
            let before = try await connection.query(
                """
                SELECT charged_states FROM refund_policy
                WHERE reseller_id = \(resellerID) AND layer = \(layer.rawValue) AND sub_account_id IS NOT DISTINCT FROM \(subAccountID)::uuid
                FOR UPDATE
                """
            ).first(as: [String].self).map { Set($0.compactMap(MessageStatus.init(rawValue:))) }
            guard before != states else { return }
            let sorted = states.map { $0.map(\.rawValue).sorted() }
            if let sorted {
                if before == nil {
                    try await connection.query(
                        """
                        INSERT INTO refund_policy (reseller_id, sub_account_id, layer, charged_states, updated_by)
                        VALUES (\(resellerID), \(subAccountID), \(layer.rawValue), \(sorted), \(actor.actor))
                        """)
                } else {
                    try await connection.query(
                        """
                        UPDATE refund_policy SET charged_states = \(sorted), updated_by = \(actor.actor), updated_at = now()
                        WHERE reseller_id = \(resellerID) AND layer = \(layer.rawValue) AND sub_account_id IS NOT DISTINCT FROM \(subAccountID)::uuid
                        """)
                }
            } else {
                try await connection.query(
                    """
                    DELETE FROM refund_policy
                    WHERE reseller_id = \(resellerID) AND layer = \(layer.rawValue) AND sub_account_id IS NOT DISTINCT FROM \(subAccountID)::uuid
                    """)
            }
            try await AuditRepository.record(
                on: connection, by: actor, action: sorted == nil ? "refund_policy.clear" : "refund_policy.set",
                targetType: subAccountID == nil ? "reseller" : "sub_account", targetID: subAccountID ?? resellerID,
                resellerID: resellerID,
                before: before.map {
                    ["layer": layer.rawValue, "chargedStates": $0.map(\.rawValue).sorted().joined(separator: ",")]
                } ?? [:],
                after: sorted.map { ["layer": layer.rawValue, "chargedStates": $0.joined(separator: ",")] } ?? [:])
        }
    }
}
