import Foundation
import PostgresLibpq

/// The way in: `sms-reseller admin create-key` makes a platform admin key (recorded in the audit
/// log as done by `cli`). It is the only way to get the first key.
package enum AdminBootstrap {
    package struct CreatedKey: Sendable {
        package var id: UUID
        package var prefix: String
        /// The full key; print it once, it is not stored.
        package var secret: String
    }

    package static func createAdminKey(pool: PostgresPool, name: String) async throws -> CreatedKey {
        let name = try APIKeyRepository.validatedName(name)
        let (record, secret) = try await APIKeyRepository(pool: pool).create(owner: .admin, name: name, by: .cli)
        return CreatedKey(id: record.id, prefix: record.prefix, secret: secret)
    }
}
