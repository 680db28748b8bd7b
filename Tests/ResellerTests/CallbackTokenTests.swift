import Foundation
import HTTPTypes
import Logging
import Messaging
import PostgresLibpq
import PostgresTestSupport
import ResellerApp
import ResellerCore
import Testing

/// Callback tokens: a report for a message not yet recorded counts only through the connection that claimed it; tokens
/// rotate with a grace period for the old one; no audit row carries a token.
@Suite(.serialized, .timeLimit(.minutes(3))) struct CallbackTokenTests {
    /// The token of a callback path.
    static func token(_ path: String) -> String { String(path.split(separator: "/").last ?? "") }

    /// Audit rows whose text contains `token`.
    static func auditRows(containing token: String, _ api: TenancyHarness) async throws -> Int {
        try await api.pool.query(
            "SELECT count(*) FROM audit_log WHERE strpos(coalesce(before::text, '') || coalesce(after::text, ''), \(token)) > 0"
        ).first(as: Int.self) ?? 0
    }

    @Test func aReportForAClaimedMessageIsTheClaimingConnectionsOnly() async throws {
        // No dispatcher: the message stays queued, as if its OK were still being recorded.
        try await TenancyHarness.run { api in
            let tenant = try await api.sendingTenant("Claimed").tenant
            let claiming = try #require(
                try await api.call(.get, "/upstream-connections", key: api.adminKey).items.first)
            let claimingPath = try #require(claiming["callbackPath"] as? String)
            let other = try await api.call(
                .post, "/upstream-connections", key: api.adminKey, body: UpstreamConnectionTests.body("Other"))
            try #require(other.status == .created, "\(other.json)")
            let otherPath = try #require(other.string("callbackPath"))
            let reply = try await api.send(tenant, ["sender": "Jansen", "text": "Hi", "recipients": ["31612345678"]])
            let id = try #require((reply["messages"] as? [[String: Any]])?.first?["id"] as? String)
            let uuid = UUID(uuidString: id)!
            try await api.pool.query("UPDATE message_outbox SET possibly_sent = true WHERE message_id = \(uuid)")
            #expect(
                try await api.pool.query("SELECT connection_id::text FROM message_outbox WHERE message_id = \(uuid)")
                    .first(as: String.self) == claiming["id"] as? String)

            // Through another connection's token: kept as unmatched, the message untouched.
            let foreign = try await DeliveryReportTests.report(
                api, otherPath, smsID: "777", status: "NOT DELIVERED", reference: id)
            #expect(foreign.status == .ok)
            let untouched = try #require(
                try await api.pool.query("SELECT status, upstream_id FROM message WHERE id = \(uuid)").first(
                    as: (String, String?).self))
            #expect(untouched.0 == "queued" && untouched.1 == nil)
            #expect(try await DeliveryReportTests.ledger(api, id).states == ["pending", "pending"])
            #expect(
                try await api.pool.query(
                    "SELECT reason FROM unmatched_delivery_report WHERE connection_id = \(UUID(uuidString: other.string("id")!)!)"
                ).decode(String.self).count == 1)

            // Through the claiming connection's token: the report is the message's.
            #expect(
                try await DeliveryReportTests.report(
                    api, claimingPath, smsID: "777", status: "DELIVERED", reference: id
                )
                .status == .ok)
            let row = try #require(
                try await api.pool.query("SELECT status, upstream_id FROM message WHERE id = \(uuid)").first(
                    as: (String, String?).self))
            #expect(row.0 == "delivered" && row.1 == "777")
        }
    }

    @Test func tokensRotateWithAGracePeriodAndNoAuditRowOrLogLineCarriesOne() async throws {
        // Every log line of the service, down to debug.
        let lines = LoggingTests.Lines()
        var logger = Logger(label: "test.tokens") { label in JSONLogHandler(label: label, write: lines.append) }
        logger.logLevel = .debug
        let tokens = LoggingTests.Lines()
        try await TenancyHarness.run(logger: logger) { api in
            let created = try await api.call(
                .post, "/upstream-connections", key: api.adminKey, body: UpstreamConnectionTests.body("Rotating"))
            try #require(created.status == .created, "\(created.json)")
            let id = try #require(created.string("id"))
            let first = try #require(created.string("callbackPath"))
            let report = { (path: String) in
                try await DeliveryReportTests.report(
                    api, path, smsID: "1", status: "DELIVERED", reference: UUID().uuidString)
            }
            #expect(try await report(first).status == .ok)

            // Only the admin rotates (others learn of no connection); unknown connections are 404.
            let tenant = try await api.onboard("Rotate")
            #expect(
                try await api.call(.post, "/upstream-connections/\(id)/callback-token", key: tenant.resellerKey).status
                    == .notFound)
            #expect(
                try await api.call(.post, "/upstream-connections/\(UUID())/callback-token", key: api.adminKey).status
                    == .notFound)
            let auditBefore = try await api.auditCount(action: "upstream_connection.rotate_callback_token")
            let rotated = try await api.call(.post, "/upstream-connections/\(id)/callback-token", key: api.adminKey)
            #expect(rotated.status == .ok, "\(rotated.json)")
            let second = try #require(rotated.string("callbackPath"))
            #expect(second != first && second.hasPrefix("/callbacks/1601/") && Self.token(second).count == 64)
            #expect(rotated.string("previousCallbackPathValidUntil") != nil, "\(rotated.json)")
            #expect(
                try await api.auditCount(action: "upstream_connection.rotate_callback_token") == auditBefore + 1)
            let read = try await api.call(.get, "/upstream-connections/\(id)", key: api.adminKey)
            #expect(read.string("callbackPath") == second)

            // Both tokens work during the grace period; the old one not after it.
            #expect(try await report(second).status == .ok)
            #expect(try await report(first).status == .ok)
            try await api.pool.query(
                "UPDATE upstream_connection SET previous_callback_token_until = now() - interval '1 second' WHERE id = \(UUID(uuidString: id)!)"
            )
            #expect(try await report(first).status == .notFound)
            #expect(try await report(second).status == .ok)

            // A second rotation ends the first token's successor's life only after its own grace period.
            let third = try #require(
                try await api.call(.post, "/upstream-connections/\(id)/callback-token", key: api.adminKey)
                    .string("callbackPath"))
            #expect(try await report(third).status == .ok)
            #expect(try await report(second).status == .ok)
            #expect(try await report(first).status == .notFound)

            // Pause, resume and update are audited too; no audit row names any of the tokens.
            _ = try await api.call(
                .post, "/upstream-connections/\(id)/pause", key: api.adminKey, body: ["reason": "test"])
            _ = try await api.call(.post, "/upstream-connections/\(id)/resume", key: api.adminKey)
            _ = try await api.call(
                .patch, "/upstream-connections/\(id)", key: api.adminKey, body: ["concurrency": 2])
            let defaultConnection = try #require(
                try await api.call(.get, "/upstream-connections", key: api.adminKey).items.first {
                    $0["name"] as? String != "Rotating"
                })
            for path in [first, second, third, try #require(defaultConnection["callbackPath"] as? String)] {
                #expect(try await Self.auditRows(containing: Self.token(path), api) == 0, "\(path)")
            }
            #expect(try await api.auditCount(action: "upstream_connection.resume") >= 1)
            for path in [first, second, third] { tokens.append(Data(Self.token(path).utf8)) }
        }
        let logged = lines.all.map { String(decoding: $0, as: UTF8.self) }
        #expect(logged.contains { $0.contains("callback token rotated") })
        #expect(tokens.all.count == 3)
        for token in tokens.all.map({ String(decoding: $0, as: UTF8.self) }) {
            #expect(!logged.contains { $0.contains(token) }, "a log line carries \(token.prefix(8))…")
        }
    }

    /// Audit rows written before migration 0015 carried the token; the migration removes it and nothing else.
    @Test func theMigrationRemovesTokensFromEarlierAuditRows() async throws {
        try await TestDatabase.withFreshDatabase { database in
            try await TestDatabase.withPool(database) { pool in
                let all = try BundledMigrations.load()
                let logger = HTTPSkeletonTests.logger
                _ = try await Migrator(pool: pool, migrations: all.filter { $0.version < 15 }, logger: logger).migrate()
                let token = String(repeating: "ab", count: 32)
                try await pool.query(
                    """
                    INSERT INTO audit_log (actor, actor_role, action, target_type, target_id, before, after)
                    VALUES ('admin', 'admin', 'upstream_connection.update', 'upstream_connection', 'x',
                            jsonb_build_object('name', 'Main', 'callback_token', \(token)::text),
                            jsonb_build_object('name', 'Main 2', 'callback_token', \(token)::text)),
                           ('admin', 'admin', 'contact.create', 'contact', 'y', NULL, '"callback_token"'::jsonb)
                    """)
                _ = try await Migrator(pool: pool, migrations: all, logger: logger).migrate()
                let rows = try await pool.query(
                    "SELECT coalesce(before::text, ''), coalesce(after::text, '') FROM audit_log ORDER BY id"
                ).decode((String, String).self)
                #expect(rows.count == 2)
                #expect(rows.first.map { $0.0 == #"{"name": "Main"}"# && $0.1 == #"{"name": "Main 2"}"# } == true)
                #expect(rows.last.map { $0.1 == #""callback_token""# } == true)
                #expect(!rows.contains { $0.0.contains(token) || $0.1.contains(token) })
                // Still append-only afterwards.
                await #expect(throws: PostgresError.self) {
                    try await pool.query("UPDATE audit_log SET actor = 'someone else'")
                }
            }
        }
    }
}
