import Foundation
import PostgresLibpq

/// A reseller's one-row choice in a table keyed by `reseller_id`: its own wholesale price list, its default retail
/// list, its upstream connection. Set or cleared under the row's lock; the audit log records a change, and only a
/// change (choosing what is already chosen writes nothing).
package enum ResellerAssignment {
    package struct Target {
        /// The table and the column holding the choice (code constants, never request input).
        package var table: String
        package var column: String
        /// Audit actions for setting and for clearing, and the field name the audit entry uses.
        package var setAction: String
        package var clearAction: String
        package var auditField: String

        package init(table: String, column: String, setAction: String, clearAction: String, auditField: String) {
            self.table = table
            self.column = column
            self.setAction = setAction
            self.clearAction = clearAction
            self.auditField = auditField
        }
    }

    package static func set(
        _ value: UUID?, _ target: Target, resellerID: UUID, by actor: AuditActor, on connection: PostgresConnection
    ) async throws {
        let before = try await connection.query(
            "SELECT \(unescaped: target.column) FROM \(unescaped: target.table) WHERE reseller_id = \(resellerID) FOR UPDATE"
        ).first(as: UUID.self)
        guard before != value else { return }
        if let value {
            try await connection.query(
                """
                INSERT INTO \(unescaped: target.table) (reseller_id, \(unescaped: target.column), assigned_by) VALUES (\(resellerID), \(value), \(actor.actor))
                ON CONFLICT (reseller_id) DO UPDATE
                    SET \(unescaped: target.column) = excluded.\(unescaped: target.column), assigned_by = excluded.assigned_by, assigned_at = now()
                """)
        } else {
            try await connection.query("DELETE FROM \(unescaped: target.table) WHERE reseller_id = \(resellerID)")
        }
        // A cleared choice is an empty object, as an absent optional field encodes.
        try await AuditRepository.record(
            on: connection, by: actor, action: value == nil ? target.clearAction : target.setAction,
            targetType: "reseller", targetID: resellerID, resellerID: resellerID,
            before: before.map { [target.auditField: $0] } ?? [:], after: value.map { [target.auditField: $0] } ?? [:])
    }
}
