import Finance
import Foundation
import Gateway1601Simulator
import HTTPTypes
import Hummingbird
import Logging
import Messaging
import PostgresLibpq
import PostgresTestSupport
import ResellerApp
import ResellerCore
import Testing

@Suite struct HTTPSkeletonTests {
    static func configuration(_ database: PostgresConfiguration) -> AppConfiguration {
        var configuration = AppConfiguration(database: database)
        configuration.port = 0
        // As `sms-reseller serve` without an upstream: the built-in simulator becomes the first default connection.
        configuration.upstream = .embedded(EmbeddedUpstream(GatewaySimulator.sandbox(logger: logger)))
        configuration.databasePoolMinimum = 0
        configuration.databasePoolMaximum = 2
        configuration.migrate = true
        // Background upkeep would hold pool connections at random moments; ledger tests run it by hand.
        configuration.ledgerMaintenance = false
        configuration.reportPolling = false
        // Likewise the dispatcher; its tests run it themselves.
        configuration.dispatcher = false
        // And the webhook sender; its tests run it themselves.
        configuration.webhooks = false
        // And reconciliation; its tests run it themselves.
        configuration.reconciliation.interval = .zero
        return configuration
    }

    static var logger: Logger {
        var logger = Logger(label: "test.http")
        logger.logLevel =
            ProcessInfo.processInfo.environment["TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        return logger
    }

    static func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
    }

    @Test func healthReadinessMetricsAndProblemsOverARealSocket() async throws {
        try await TestDatabase.withFreshDatabase { database in
            try await LiveApp.run(configuration: Self.configuration(database), logger: Self.logger) { client in
                try await client.execute(uri: "/health/live", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(try Self.json(response.body)["status"] as? String == "ok")
                    let requestID = try #require(response.headers[HTTPField.Name("X-Request-Id")!])
                    #expect(requestID.count == 32)
                }

                try await client.execute(uri: "/health/ready", method: .get) { response in
                    #expect(response.status == .ok)
                    let body = try Self.json(response.body)
                    #expect(body["status"] as? String == "ready")
                    let checks = try #require(body["checks"] as? [[String: Any]])
                    #expect(checks.first?["name"] as? String == "database")
                    #expect(checks.first?["status"] as? String == "ok")
                }

                try await client.execute(
                    uri: "/nowhere?x=1", method: .get, headers: [HTTPField.Name("X-Request-Id")!: "caller-chosen.id:42"]
                ) { response in
                    #expect(response.status == .notFound)
                    #expect(response.headers[.contentType] == "application/problem+json; charset=utf-8")
                    #expect(response.headers[HTTPField.Name("X-Request-Id")!] == "caller-chosen.id:42")
                    let problem = try Self.json(response.body)
                    #expect(problem["code"] as? String == "not_found")
                    #expect(problem["status"] as? Int == 404)
                    #expect(problem["title"] as? String == "Not Found")
                    #expect(problem["type"] as? String == "https://sms-reseller.dev/problems/not_found")
                    #expect(problem["instance"] as? String == "/nowhere")
                    #expect(problem["requestId"] as? String == "caller-chosen.id:42")
                    #expect((problem["detail"] as? String)?.contains("GET /nowhere") == true)
                }

                // A request id with characters outside the safe set is replaced, not echoed.
                try await client.execute(
                    uri: "/health/live", method: .get, headers: [HTTPField.Name("X-Request-Id")!: "bad id\u{7F}"]
                ) { response in
                    #expect(response.headers[HTTPField.Name("X-Request-Id")!] != "bad id\u{7F}")
                }

                try await client.execute(uri: "/metrics", method: .get) { response in
                    #expect(response.status == .ok)
                    let text = String(buffer: response.body)
                    #expect(text.contains(#"http_requests_total{operation="getLiveness",status="200"} 2"#))
                    #expect(text.contains(#"http_requests_total{operation="getReadiness",status="200"} 1"#))
                    #expect(text.contains(#"http_requests_total{operation="unmatched",status="404"} 1"#))
                    #expect(
                        text.contains(#"http_request_duration_seconds_bucket{operation="getReadiness",le="+Inf"} 1"#))
                    #expect(text.contains(#"db_pool_connections{state="leased"} 0.0"#))
                    #expect(text.contains(#"db_pool_connections{state="idle"}"#))
                }
            }
        }
    }

    @Test func migrationsRunBeforeServingAndTheSchemaIsRecorded() async throws {
        try await TestDatabase.withFreshDatabase { database in
            try await LiveApp.run(configuration: Self.configuration(database), logger: Self.logger) { client in
                try await client.execute(uri: "/health/ready", method: .get) { response in
                    #expect(response.status == .ok)
                }
            }
            let migrations = try BundledMigrations.load()
            #expect(!migrations.isEmpty)
            let recorded = try await TestDatabase.withPool(database) { pool in
                try await pool.query("SELECT version FROM schema_migrations ORDER BY version").decode(Int.self)
            }
            #expect(recorded == migrations.map(\.version))
        }
    }

    /// A step before the server starts that fails (here the migrations: the database is unreachable) stops the service
    /// before it listens, and the live harness fails with that error instead of waiting for a port forever.
    @Test(.timeLimit(.minutes(1))) func aServiceThatCannotStartFailsTheLiveHarnessWithItsError() async throws {
        var database = try TestDatabase.adminConfiguration()
        database.set("host", to: "127.0.0.1")
        database.set("port", to: "1")
        let configuration = Self.configuration(database)
        #expect(configuration.migrate)
        let error = try await #require(throws: LiveApp.StoppedBeforeListening.self) {
            try await LiveApp.run(configuration: configuration, logger: Self.logger) { _ in
                Issue.record("the test ran against a service that never started")
            }
        }
        #expect(error.cause is PostgresError, "\(error)")
    }

    @Test func readinessAnswers503WhenTheDatabaseIsUnreachable() async throws {
        var database = try TestDatabase.adminConfiguration()
        database.set("host", to: "127.0.0.1")
        database.set("port", to: "1")
        var configuration = Self.configuration(database)
        configuration.migrate = false
        try await LiveApp.run(configuration: configuration, logger: Self.logger) { client in
            try await client.execute(uri: "/health/live", method: .get) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/health/ready", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.headers[.contentType] == "application/problem+json; charset=utf-8")
                let problem = try Self.json(response.body)
                #expect(problem["code"] as? String == "not_ready")
                #expect((problem["detail"] as? String)?.hasPrefix("database:") == true)
            }
        }
    }
}
