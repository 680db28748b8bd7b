import Foundation
import Gateway1601
import Ledger
import Messaging
import PostgresLibpq
import PostgresTestSupport
import ResellerApp
import ResellerCore
import Testing

extension TenancyHarness {
    /// `run` with upstream passwords encrypted under `upstreamCredentialsKey` (nil: stored as they are).
    static func run(upstreamCredentialsKey: String?, _ body: @Sendable (TenancyHarness) async throws -> Void)
        async throws
    {
        try await TestDatabase.withFreshDatabase { database in
            var configuration = HTTPSkeletonTests.configuration(database)
            configuration.databasePoolMaximum = 6
            configuration.passwordIterations = 1_000
            configuration.upstreamCredentialsKey = upstreamCredentialsKey
            try await LiveApp.run(configuration: configuration, logger: HTTPSkeletonTests.logger) { client in
                try await TestDatabase.withPool(database) { pool in
                    let admin = try await AdminBootstrap.createAdminKey(pool: pool, name: "test admin")
                    try await body(TenancyHarness(client: client, pool: pool, adminKey: admin.secret))
                }
            }
        }
    }
}

/// The first start: the configured upstream (here the built-in simulator) becomes the default connection, once;
/// a key configured later encrypts stored passwords; an upstream without credentials creates nothing.
@Suite(.serialized, .timeLimit(.minutes(3))) struct UpstreamBootstrapTests {
    static let key = UpstreamConnectionStoreTests.key

    @Test func theFirstStartCreatesTheDefaultConnectionExactlyOnce() async throws {
        try await TenancyHarness.run(upstreamCredentialsKey: nil) { api in
            let repository = UpstreamConnectionRepository(pool: api.pool)
            let all = try await repository.allConnections()
            #expect(all.count == 1)
            let connection = try #require(all.first).record
            #expect(
                connection.name == "built-in simulator" && connection.username == "sandbox"
                    && connection.status == .active)
            #expect(connection.isDefault && !connection.passwordEncrypted && connection.segmentationPolicy == .standard)
            #expect(connection.baseURL.hasPrefix("http://127.0.0.1:") && connection.createdBy == "system:bootstrap")
            #expect(try await repository.defaultConnection()?.id == connection.id)
            #expect(try await api.auditCount(action: "upstream_connection.bootstrap") == 1)
            let actor = try await api.pool.query(
                "SELECT actor, actor_role FROM audit_log WHERE action = 'upstream_connection.bootstrap'"
            ).first(as: (String, String).self)
            #expect(actor?.0 == "system:bootstrap" && actor?.1 == "system")

            // Another start, with another configured upstream: nothing is created.
            let other = UpstreamConnectionSettings(
                name: "1601SMS", baseURL: "http://gateway.example", username: "u", password: "p")
            try await UpstreamBootstrap.runThrowing(
                repository: repository, configured: other, logger: HTTPSkeletonTests.logger)
            #expect(try await repository.bootstrapDefault(other) == nil)
            #expect(try await repository.allConnections().count == 1)

            // A key configured later encrypts the stored password at the next start, and it still opens.
            let keyed = UpstreamConnectionRepository(
                pool: api.pool, cipher: try UpstreamCredentialCipher(base64Key: Self.key))
            try await UpstreamBootstrap.runThrowing(
                repository: keyed, configured: other, logger: HTTPSkeletonTests.logger)
            let sealed = try #require(try await keyed.allConnections().first)
            #expect(sealed.record.passwordEncrypted && UpstreamCredentialCipher.isSealed(sealed.storedPassword))
            #expect(sealed.record.passwordChangedAt == connection.passwordChangedAt)
            #expect(try sealed.credentials() == GatewayCredentials(username: "sandbox", password: "sandbox"))
            #expect(try await api.auditCount(action: "upstream_connection.seal_password") == 1)
            try await UpstreamBootstrap.runThrowing(
                repository: keyed, configured: other, logger: HTTPSkeletonTests.logger)
            #expect(try await api.auditCount(action: "upstream_connection.seal_password") == 1)
        }
    }

    @Test func anEncryptedStartStoresTheBootstrappedPasswordEncrypted() async throws {
        try await TenancyHarness.run(upstreamCredentialsKey: Self.key) { api in
            let stored = try await api.pool.query("SELECT password_secret FROM upstream_connection").decode(Data.self)
            #expect(
                stored.count == 1 && stored.first?.first == 1 && stored.first?.range(of: Data("sandbox".utf8)) == nil)
            #expect(try await api.auditCount(action: "upstream_connection.seal_password") == 0)
        }
    }

    @Test func anUpstreamWithoutCredentialsCreatesNoConnection() async throws {
        try await UpstreamConnectionStoreTests.withDatabase { pool in
            let repository = UpstreamConnectionRepository(pool: pool)
            let withoutPassword = UpstreamConnectionSettings(
                name: "1601SMS", baseURL: "http://gateway.example", username: "", password: nil)
            try await UpstreamBootstrap.runThrowing(
                repository: repository, configured: withoutPassword, logger: HTTPSkeletonTests.logger)
            try await UpstreamBootstrap.runThrowing(
                repository: repository, configured: nil, logger: HTTPSkeletonTests.logger)
            #expect(try await repository.allConnections().isEmpty)
            #expect(try await repository.defaultConnection() == nil)
        }
    }
}
