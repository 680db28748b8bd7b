import Foundation
import Gateway1601
import Logging
import Messaging
import PostgresLibpq
import PostgresTestSupport
import ResellerApp
import ResellerCore
import SMSCore
import Testing

/// Upstream connections below the API: the credential cipher, the repository's hooks for the dispatcher (which
/// connection sends for a reseller, pausing after a gateway error), the client cache and the bootstrap under
/// concurrency, on a migrated database of their own.
@Suite(.serialized, .timeLimit(.minutes(3))) struct UpstreamConnectionStoreTests {
    static let key = Data((0..<32).map { UInt8($0 * 7 % 256) }).base64EncodedString()
    static var logger: Logger { HTTPSkeletonTests.logger }

    /// A migrated database of its own, with a pool.
    static func withDatabase(_ body: (PostgresPool) async throws -> Void) async throws {
        try await TestDatabase.withFreshDatabase { database in
            try await TestDatabase.withPool(database, maximumConnections: 8) { pool in
                _ = try await Migrator(pool: pool, migrations: try BundledMigrations.load(), logger: logger).migrate()
                try await body(pool)
            }
        }
    }

    static func settings(_ name: String, password: String = "p4ss") -> UpstreamConnectionSettings {
        UpstreamConnectionSettings(name: name, baseURL: "http://gateway.example", username: "acme", password: password)
    }

    @Test func theDispatcherFindsItsConnectionAndPausesItOnAccountErrorsOnly() async throws {
        try await Self.withDatabase { pool in
            let repository = UpstreamConnectionRepository(
                pool: pool, cipher: try UpstreamCredentialCipher(base64Key: Self.key))
            let reseller = try await ResellerRepository(pool: pool).create(
                name: "Hooks", contactEmail: nil, refundPolicy: nil, by: .cli)
            // Nothing configured: nothing sends.
            #expect(try await repository.connection(forReseller: reseller.id) == nil)
            #expect(try await repository.sendingPolicy(forReseller: reseller.id).segmentation == .standard)

            let platform = try #require(try await repository.create(Self.settings("Platform"), by: .cli))
            var narrow = Self.settings("Narrow", password: "n4rrow")
            narrow.segmentation = SegmentationPolicy(gsmSinglePart: 140, gsmConcatenatedPart: 134, maximumParts: 2)
            let own = try #require(try await repository.create(narrow, by: .cli))
            #expect(try await repository.create(Self.settings("platform"), by: .cli) == nil)
            _ = try await repository.setDefault(connectionID: platform.id, by: .cli)
            #expect(try await repository.connection(forReseller: reseller.id)?.id == platform.id)
            _ = try await repository.assign(resellerID: reseller.id, connectionID: own.id, by: .cli)
            let connection = try #require(try await repository.connection(forReseller: reseller.id))
            #expect(connection.id == own.id && !connection.isPaused)
            #expect(connection.segmentationPolicy == narrow.segmentation)
            #expect(try await repository.sendingPolicy(forReseller: reseller.id).segmentation == narrow.segmentation)
            #expect(try connection.credentials() == GatewayCredentials(username: "acme", password: "n4rrow"))
            let configuration = try connection.gatewayConfiguration()
            #expect(
                configuration.baseURL == "http://gateway.example" && configuration.method == .post
                    && configuration.requestTimeout == .seconds(15))

            // Transient and message-level failures never pause; an account-level one pauses once, audited as the dispatcher.
            for error: Gateway1601Error in [
                .timeout, .connectionFailed("refused"), .httpStatus(503), .gateway(.maintenance),
                .gateway(.invalidMobileNumber),
            ] {
                #expect(try await repository.pause(id: own.id, after: error) == nil, "\(error)")
            }
            guard
                case .paused(let paused) = try await repository.pause(
                    id: own.id, after: .gateway(.accountBlockedForPayment))
            else {
                throw Failure("not paused")
            }
            #expect(paused.status == .paused && paused.pauseCode == 115 && paused.pausedBy == "system:dispatcher")
            guard case .alreadyPaused = try await repository.pause(id: own.id, after: .httpStatus(403)) else {
                throw Failure("paused twice")
            }
            #expect(try await repository.connection(forReseller: reseller.id)?.isPaused == true)
            let audit = try await pool.query(
                """
                SELECT actor, actor_role, target_id FROM audit_log WHERE action = 'upstream_connection.pause'
                """
            ).decode((String, String, String).self)
            #expect(
                audit.count == 1 && audit.first?.0 == "system:dispatcher" && audit.first?.1 == "system"
                    && audit.first?.2 == own.id.apiString)
            guard case .resumed(let resumed) = try await repository.resume(id: own.id, by: .cli) else {
                throw Failure("not resumed")
            }
            #expect(resumed.status == .active && resumed.pauseCode == nil && resumed.pausedBy == nil)
            guard case .notPaused = try await repository.resume(id: own.id, by: .cli) else {
                throw Failure("resumed twice")
            }
            // A malformed answer pauses too, without a code.
            guard
                case .paused(let malformed) = try await repository.pause(id: own.id, after: .malformedAnswer("<html>"))
            else { throw Failure("not paused") }
            #expect(malformed.pauseCode == nil && malformed.pauseReason?.contains("not understood") == true)

            // Unassigned and without a default: nothing again.
            _ = try await repository.assign(resellerID: reseller.id, connectionID: nil, by: .cli)
            _ = try await repository.setDefault(connectionID: nil, by: .cli)
            #expect(try await repository.connection(forReseller: reseller.id) == nil)
            #expect(try await repository.pauseStates().map(\.paused).sorted { !$0 && $1 } == [false, true])
        }
    }

    @Test func clientsAreSharedPerConnectionAndRebuiltWhenTheirSettingsChange() async throws {
        try await Self.withDatabase { pool in
            let repository = UpstreamConnectionRepository(
                pool: pool, cipher: try UpstreamCredentialCipher(base64Key: Self.key))
            let clients = UpstreamClients(logger: Self.logger)
            let id = try #require(
                try await repository.create(Self.settings("Cached", password: "s3cret-pass"), by: .cli)
            ).id
            let first = try clients.client(for: try #require(try await repository.connection(id: id)))
            #expect(
                first.configuration.credentials.password == "s3cret-pass"
                    && first.configuration.requestTimeout == .seconds(15))
            _ = try await repository.update(id: id, by: .cli) { current in
                var settings = UpstreamConnectionSettings(current)
                settings.concurrency = 9
                return settings
            }
            _ = try clients.client(for: try #require(try await repository.connection(id: id)))
            #expect(clients.count == 1)
            _ = try await repository.update(id: id, by: .cli) { current in
                var settings = UpstreamConnectionSettings(current)
                settings.password = "rotated-pass"
                settings.requestTimeoutMilliseconds = 2000
                return settings
            }
            let rebuilt = try clients.client(for: try #require(try await repository.connection(id: id)))
            #expect(
                rebuilt.configuration.credentials.password == "rotated-pass"
                    && rebuilt.configuration.requestTimeout == .seconds(2))
            #expect(clients.count == 1)
            // An instance with another key cannot build a client for it, and says why.
            let other = UpstreamConnectionRepository(pool: pool, cipher: .unencrypted)
            let unreadable = try #require(try await other.connection(id: id))
            #expect(throws: UpstreamCredentialCipher.Failure.keyMissing) { try clients.client(for: unreadable) }
        }
    }

    @Test func instancesStartingTogetherCreateOneDefaultConnection() async throws {
        try await Self.withDatabase { pool in
            let repository = UpstreamConnectionRepository(pool: pool)
            let created = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<6 {
                    group.addTask {
                        let settings = UpstreamConnectionSettings(
                            name: "instance \(index)", baseURL: "http://gateway.example", username: "u", password: "p")
                        return try await repository.bootstrapDefault(settings) != nil
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(created == 1)
            #expect(try await pool.query("SELECT count(*) FROM upstream_connection").first(as: Int.self) == 1)
            #expect(try await repository.defaultConnection() != nil)
        }
    }

    @Test func theCipherSealsPerConnectionAndRefusesOtherKeys() throws {
        let cipher = try UpstreamCredentialCipher(base64Key: Self.key)
        let id = UUID()
        let sealed = try cipher.seal("pässwörd", connectionID: id)
        #expect(sealed.first == 1 && sealed.range(of: Data("pässwörd".utf8)) == nil)
        #expect(try cipher.open(sealed, connectionID: id) == "pässwörd")
        #expect(try cipher.seal("pässwörd", connectionID: id) != sealed)
        #expect(throws: UpstreamCredentialCipher.Failure.corrupt) { try cipher.open(sealed, connectionID: UUID()) }
        #expect(throws: UpstreamCredentialCipher.Failure.keyMissing) {
            try UpstreamCredentialCipher.unencrypted.open(sealed, connectionID: id)
        }
        let other = try UpstreamCredentialCipher(base64Key: Data(repeating: 1, count: 32).base64EncodedString())
        #expect(throws: UpstreamCredentialCipher.Failure.wrongKey) { try other.open(sealed, connectionID: id) }
        var tampered = sealed
        tampered[tampered.count - 1] ^= 1
        #expect(throws: UpstreamCredentialCipher.Failure.corrupt) { try cipher.open(tampered, connectionID: id) }
        // Without a key the password is kept as it is, and a keyed cipher still reads it.
        let plain = try UpstreamCredentialCipher.unencrypted.seal("plain", connectionID: id)
        #expect(plain == Data([0]) + Data("plain".utf8))
        #expect(
            try cipher.open(plain, connectionID: id) == "plain" && cipher.needsSealing(plain)
                && !cipher.needsSealing(sealed))
        // URL-safe base64 without padding is a key too; anything but 32 bytes is not.
        let urlSafe = Self.key.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        #expect(try UpstreamCredentialCipher(base64Key: urlSafe).open(sealed, connectionID: id) == "pässwörd")
        #expect(throws: UpstreamCredentialCipher.InvalidKey.self) {
            try UpstreamCredentialCipher(base64Key: "c2hvcnQ=")
        }
        #expect(throws: UpstreamCredentialCipher.InvalidKey.self) {
            try UpstreamCredentialCipher(base64Key: "not base64 at all!")
        }
    }
}
