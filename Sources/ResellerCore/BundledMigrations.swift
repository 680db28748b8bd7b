import Foundation
import PostgresLibpq

/// The `Migrations/*.sql` files, shipped in SwiftPM's resource bundle of this target: the folder
/// `sms-reseller_ResellerCore.resources`, which must sit beside the executable's real path (`swift build`, the
/// Debian package and the container image all put it there).
///
/// SwiftPM's generated `Bundle.module` would end the process when the folder is missing (after also looking in the
/// build folder the binary was made in, a path baked into it). This looks beside the executable only, and a missing
/// folder is an error that says where it was looked for.
package enum BundledMigrations {
    package static let bundleName = "sms-reseller_ResellerCore.resources"

    /// The resource bundle is not beside the executable.
    package struct Missing: Error, CustomStringConvertible {
        package let path: String

        package var description: String {
            "the migrations are missing: no folder \(path); copy \(bundleName) (made by `swift build` beside the "
                + "binary) next to the executable, as the Debian package and the container image do"
        }
    }

    package static func load() throws -> [Migration] {
        let directory = Bundle.main.bundleURL.appendingPathComponent(bundleName).appendingPathComponent("Migrations")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue
        else { throw Missing(path: directory.path) }
        return try Migration.load(from: directory)
    }
}
