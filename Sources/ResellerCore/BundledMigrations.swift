import Foundation
import PostgresLibpq

/// The `Migrations/*.sql` files, shipped inside the binary's resource bundle.
package enum BundledMigrations {
    package static func load() throws -> [Migration] {
        guard let directory = Bundle.module.url(forResource: "Migrations", withExtension: nil) else {
            throw MigrationError.badFileName("Migrations folder missing from the resource bundle")
        }
        return try Migration.load(from: directory)
    }
}
