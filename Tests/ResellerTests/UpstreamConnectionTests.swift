import Foundation
import Gateway1601
import HTTPTypes
import Hummingbird
import Ledger
import Messaging
import PostgresLibpq
import PostgresTestSupport
import ResellerApp
import ResellerCore
import SMSCore
import Testing

/// Upstream connections through the API on a live server whose built-in simulator (real HTTP) is the bootstrapped
/// default connection: CRUD and validation, credentials kept out of every answer and audit row, the default and
/// per-reseller resolution, pause/resume and the dispatcher's hooks, `check`, roles, the bootstrap and the cipher.
@Suite(.serialized, .timeLimit(.minutes(3))) struct UpstreamConnectionTests {
    static let key = Data((0..<32).map { UInt8($0 * 7 % 256) }).base64EncodedString()

    /// `TenancyHarness.run` with upstream passwords encrypted under `key`.
    static func run(_ body: @Sendable (TenancyHarness) async throws -> Void) async throws {
        try await TenancyHarness.run(upstreamCredentialsKey: key, body)
    }

    static func body(_ name: String, url: String = "http://gateway.example", password: String = "s3cret-pass")
        -> [String: Any]
    {
        ["name": name, "baseUrl": url, "username": "acme", "password": password]
    }

    static func fields(_ reply: Reply) -> [String] {
        ((reply["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String }
    }

    static func text(_ reply: Reply) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: reply.json), as: UTF8.self)
    }

    /// The bootstrapped default connection (the built-in simulator).
    static func bootstrapped(_ api: TenancyHarness) async throws -> [String: Any] {
        let list = try await api.call(.get, "/upstream-connections", key: api.adminKey)
        try #require(list.status == .ok && list.items.count >= 1, "\(list.json)")
        return try #require(list.items.first { $0["isDefault"] as? Bool == true })
    }

    @Test func adminCreatesReadsListsAndUpdatesConnectionsWithValidation() async throws {
        try await Self.run { api in
            var reply = try await api.call(.post, "/upstream-connections", key: api.adminKey, body: Self.body("Main"))
            #expect(reply.status == .created, "\(reply.json)")
            let id = try #require(reply.string("id"))
            #expect(reply.string("baseUrl") == "http://gateway.example" && reply.string("username") == "acme")
            #expect(reply["status"] as? String == "active" && reply["isDefault"] as? Bool == false)
            #expect(reply["passwordEncrypted"] as? Bool == true && reply["password"] == nil)
            let segmentation = try #require(reply["segmentation"] as? [String: Any])
            #expect(segmentation["gsmSinglePart"] as? Int == 160 && segmentation["gsmConcatenatedPart"] as? Int == 153)
            #expect(segmentation["ucs2SinglePart"] as? Int == 70 && segmentation["ucs2ConcatenatedPart"] as? Int == 67)
            #expect(segmentation["maximumParts"] as? Int == 3)
            #expect(
                reply["concurrency"] as? Int == 4 && reply["rateLimitPerSecond"] as? Int == 20
                    && reply["requestTimeoutMs"] as? Int == 15000)
            #expect(reply.string("createdBy")?.hasPrefix("key:") == true)

            // Trailing slashes go; the name is unique case-insensitively.
            reply = try await api.call(
                .post, "/upstream-connections", key: api.adminKey,
                body: Self.body("Second", url: "HTTPS://gw.example:8443/prefix/"))
            #expect(reply.status == .created && reply.string("baseUrl") == "https://gw.example:8443/prefix")
            let second = try #require(reply.string("id"))
            reply = try await api.call(.post, "/upstream-connections", key: api.adminKey, body: Self.body("MAIN"))
            #expect(reply.status == .conflict && reply.string("code") == "conflict")

            // Every invalid field is named.
            let invalid: [([String: Any], String)] = [
                (["baseUrl": "ftp://gateway.example"], "/baseUrl"),
                (["baseUrl": "gateway.example"], "/baseUrl"),
                (["baseUrl": "http://user:pw@gateway.example"], "/baseUrl"),
                (["baseUrl": "http://gateway.example/?x=1"], "/baseUrl"),
                (["baseUrl": "http://gateway.example/module/gateway.php"], "/baseUrl"),
                (["name": "  "], "/name"),
                (["name": String(repeating: "n", count: 101)], "/name"),
                (["username": ""], "/username"),
                (["password": ""], "/password"),
                (["password": "tab\there"], "/password"),
                (["segmentation": ["gsmSinglePart": 161]], "/segmentation/gsmSinglePart"),
                (["segmentation": ["gsmConcatenatedPart": 154]], "/segmentation/gsmConcatenatedPart"),
                (["segmentation": ["gsmSinglePart": 100]], "/segmentation/gsmConcatenatedPart"),
                (["segmentation": ["ucs2SinglePart": 71]], "/segmentation/ucs2SinglePart"),
                (
                    ["segmentation": ["ucs2SinglePart": 60, "ucs2ConcatenatedPart": 61]],
                    "/segmentation/ucs2ConcatenatedPart"
                ),
                (["segmentation": ["ucs2ConcatenatedPart": 1]], "/segmentation/ucs2ConcatenatedPart"),
                (["segmentation": ["maximumParts": 0]], "/segmentation/maximumParts"),
                (["segmentation": ["maximumParts": 256]], "/segmentation/maximumParts"),
                (["concurrency": 0], "/concurrency"),
                (["concurrency": 65], "/concurrency"),
                (["rateLimitPerSecond": 0], "/rateLimitPerSecond"),
                (["requestTimeoutMs": 999], "/requestTimeoutMs"),
            ]
            let auditBefore = try await api.auditCount()
            for (change, field) in invalid {
                let created = try await api.call(
                    .post, "/upstream-connections", key: api.adminKey, body: Self.body("Invalid").merging(change) { $1 }
                )
                #expect(created.status == .unprocessableContent, "create \(change): \(created.json)")
                #expect(Self.fields(created) == [field], "create \(change)")
                let updated = try await api.call(.patch, "/upstream-connections/\(id)", key: api.adminKey, body: change)
                #expect(updated.status == .unprocessableContent, "update \(change): \(updated.json)")
                #expect(Self.fields(updated) == [field], "update \(change)")
            }
            #expect(try await api.auditCount() == auditBefore)
            reply = try await api.call(
                .post, "/upstream-connections", key: api.adminKey,
                body: Self.body("X").merging(["colour": "red"]) { $1 })
            #expect(reply.status == .badRequest)

            // PATCH changes only what it names, within segmentation too; the whole is checked.
            reply = try await api.call(
                .patch, "/upstream-connections/\(id)", key: api.adminKey,
                body: [
                    "segmentation": ["maximumParts": 2, "gsmSinglePart": 153], "concurrency": 8, "name": "Main account",
                ])
            #expect(reply.status == .ok, "\(reply.json)")
            let changed = try #require(reply["segmentation"] as? [String: Any])
            #expect(
                changed["maximumParts"] as? Int == 2 && changed["gsmSinglePart"] as? Int == 153
                    && changed["gsmConcatenatedPart"] as? Int == 153)
            #expect(
                reply["concurrency"] as? Int == 8 && reply.string("name") == "Main account"
                    && reply.string("baseUrl") == "http://gateway.example")
            #expect(try await api.auditCount(action: "upstream_connection.update") == 1)
            // The same values again change and record nothing; another connection's name is a conflict.
            reply = try await api.call(
                .patch, "/upstream-connections/\(id)", key: api.adminKey, body: ["concurrency": 8])
            #expect(reply.status == .ok && reply["concurrency"] as? Int == 8)
            #expect(try await api.auditCount(action: "upstream_connection.update") == 1)
            reply = try await api.call(
                .patch, "/upstream-connections/\(id)", key: api.adminKey, body: ["name": "second"])
            #expect(reply.status == .conflict)

            // The dispatcher's segmentation comes from the row.
            let repository = UpstreamConnectionRepository(pool: api.pool)
            let uuid = try #require(UUID(uuidString: id))
            let record = try #require(try await repository.find(id: uuid))
            #expect(record.segmentationPolicy == SegmentationPolicy(gsmSinglePart: 153, maximumParts: 2))
            let counter = SegmentCounter(policy: record.segmentationPolicy)
            #expect(counter.lengthError(for: String(repeating: "a", count: 306), longAllowed: true) == nil)
            #expect(counter.lengthError(for: String(repeating: "a", count: 307), longAllowed: true) == .messageTooLong)

            // Reading and listing.
            reply = try await api.call(.get, "/upstream-connections/\(second)", key: api.adminKey)
            #expect(reply.status == .ok && reply.string("name") == "Second")
            #expect(
                try await api.call(.get, "/upstream-connections/\(UUID().uuidString)", key: api.adminKey).status
                    == .notFound)
            #expect(try await api.call(.get, "/upstream-connections/not-a-uuid", key: api.adminKey).status == .notFound)
            let all = try await api.call(.get, "/upstream-connections", key: api.adminKey)
            #expect(all.items.count == 3)
            let first = try await api.call(.get, "/upstream-connections?limit=2", key: api.adminKey)
            let cursor = try #require(first.string("nextCursor"))
            let rest = try await api.call(.get, "/upstream-connections?limit=2&cursor=\(cursor)", key: api.adminKey)
            #expect(first.items.count == 2 && rest.items.count == 1 && rest["nextCursor"] == nil)
            #expect(
                Set((first.items + rest.items).compactMap { $0["id"] as? String })
                    == Set(all.items.compactMap { $0["id"] as? String }))
            #expect(try await api.call(.get, "/upstream-connections?status=paused", key: api.adminKey).items.isEmpty)
            #expect(
                try await api.call(.get, "/upstream-connections?limit=0", key: api.adminKey).status
                    == .unprocessableContent)
        }
    }

    @Test func passwordsAppearInNoAnswerNoAuditRowAndNotInTheDatabase() async throws {
        try await Self.run { api in
            let first = "Pw-first-1f6a0c"
            let second = "Pw-second-99d2b7"
            var texts: [String] = []
            func keep(_ reply: Reply) throws -> Reply {
                texts.append(try Self.text(reply))
                return reply
            }
            let created = try keep(
                try await api.call(
                    .post, "/upstream-connections", key: api.adminKey,
                    body: Self.body("Secretive", url: "http://127.0.0.1:1", password: first).merging([
                        "requestTimeoutMs": 1000
                    ]) { $1 }))
            let id = try #require(created.string("id"))
            let tenant = try await api.onboard("Secrets")
            _ = try keep(
                try await api.call(.patch, "/upstream-connections/\(id)", key: api.adminKey, body: ["password": second])
            )
            _ = try keep(try await api.call(.get, "/upstream-connections/\(id)", key: api.adminKey))
            _ = try keep(try await api.call(.get, "/upstream-connections", key: api.adminKey))
            _ = try keep(
                try await api.call(.put, "/upstream-connection-default", key: api.adminKey, body: ["connectionId": id]))
            _ = try keep(try await api.call(.get, "/upstream-connection-default", key: api.adminKey))
            _ = try keep(
                try await api.call(
                    .put, "/resellers/\(tenant.resellerID)/upstream-connection", key: api.adminKey,
                    body: ["connectionId": id]))
            _ = try keep(
                try await api.call(.get, "/resellers/\(tenant.resellerID)/upstream-connection", key: tenant.resellerKey)
            )
            _ = try keep(
                try await api.call(
                    .post, "/upstream-connections/\(id)/pause", key: api.adminKey, body: ["reason": "test"]))
            _ = try keep(try await api.call(.post, "/upstream-connections/\(id)/resume", key: api.adminKey))
            _ = try keep(try await api.call(.post, "/upstream-connections/\(id)/check", key: api.adminKey))
            _ = try keep(try await api.call(.get, "/audit-log?limit=200", key: api.adminKey))
            let updated = try #require(created.string("passwordChangedAt"))
            #expect(
                try await api.call(.get, "/upstream-connections/\(id)", key: api.adminKey).string("passwordChangedAt")
                    != updated)
            let audit = try await api.pool.query(
                "SELECT coalesce(before::text, '') || coalesce(after::text, '') FROM audit_log"
            ).decode(String.self)
            #expect(audit.count >= 8)
            for text in texts + audit {
                #expect(!text.contains(first) && !text.contains(second), "\(text)")
                #expect(!text.contains("password_secret") && !text.contains("passwordSecret"))
            }
            // Encrypted at rest: neither password's bytes are in the table, and the stored form opens to the new one.
            let stored = try #require(
                try await api.pool.query(
                    "SELECT password_secret FROM upstream_connection WHERE id = \(UUID(uuidString: id)!)"
                ).first(as: Data.self))
            #expect(
                stored.first == 1 && stored.range(of: Data(second.utf8)) == nil
                    && stored.range(of: Data(first.utf8)) == nil)
            let repository = UpstreamConnectionRepository(
                pool: api.pool, cipher: try UpstreamCredentialCipher(base64Key: Self.key))
            let uuid = try #require(UUID(uuidString: id))
            let connection = try #require(try await repository.connection(id: uuid))
            #expect(try connection.credentials() == GatewayCredentials(username: "acme", password: second))
        }
    }

    @Test func resellersSendThroughTheirOwnConnectionElseTheDefaultElseNone() async throws {
        try await Self.run { api in
            let tenant = try await api.onboard("Routing")
            let resellerID = try #require(UUID(uuidString: tenant.resellerID))
            let repository = UpstreamConnectionRepository(
                pool: api.pool, cipher: try UpstreamCredentialCipher(base64Key: Self.key))
            let simulator = try await Self.bootstrapped(api)
            let simulatorID = try #require(simulator["id"] as? String)
            let path = "/resellers/\(tenant.resellerID)/upstream-connection"

            var reply = try await api.call(.get, path, key: tenant.resellerKey)
            #expect(reply.status == .ok && reply.string("source") == "default")
            var shown = try #require(reply["connection"] as? [String: Any])
            // The reseller learns which connection and whether it is paused; nothing more.
            #expect(Set(shown.keys) == ["id", "name", "status"] && shown["id"] as? String == simulatorID)
            #expect(try await repository.connection(forReseller: resellerID)?.id.apiString == simulatorID)

            let own = try await api.call(
                .post, "/upstream-connections", key: api.adminKey, body: Self.body("Dedicated"))
            let ownID = try #require(own.string("id"))
            reply = try await api.call(.put, path, key: api.adminKey, body: ["connectionId": ownID])
            #expect(reply.status == .ok && reply.string("source") == "own")
            shown = try #require(reply["connection"] as? [String: Any])
            #expect(shown["id"] as? String == ownID && shown["name"] as? String == "Dedicated")
            let resolved = try #require(try await repository.connection(forReseller: resellerID))
            #expect(resolved.id.apiString == ownID && !resolved.isPaused && resolved.segmentationPolicy == .standard)
            #expect(try resolved.credentials().password == "s3cret-pass")
            #expect(
                try await api.call(.get, "/upstream-connections/\(ownID)", key: api.adminKey)["assignedResellers"]
                    as? Int == 1)
            // Assigning the same again records nothing; an unknown connection is 422.
            #expect(try await api.call(.put, path, key: api.adminKey, body: ["connectionId": ownID]).status == .ok)
            #expect(try await api.auditCount(action: "reseller.upstream_connection.assign") == 1)
            reply = try await api.call(.put, path, key: api.adminKey, body: ["connectionId": UUID().uuidString])
            #expect(reply.status == .unprocessableContent && Self.fields(reply) == ["/connectionId"])
            #expect(
                try await api.call(
                    .put, "/resellers/\(UUID().uuidString)/upstream-connection", key: api.adminKey,
                    body: ["connectionId": ownID]
                ).status == .notFound)

            // Another default: the assigned reseller keeps its own; unassigned, it follows the default.
            let other = try await api.onboard("Unassigned")
            reply = try await api.call(
                .put, "/upstream-connection-default", key: api.adminKey, body: ["connectionId": ownID])
            #expect(reply.status == .ok && (reply["connection"] as? [String: Any])?["id"] as? String == ownID)
            #expect(
                try await api.call(.get, "/upstream-connections/\(simulatorID)", key: api.adminKey)["isDefault"]
                    as? Bool == false)
            let otherID = try #require(UUID(uuidString: other.resellerID))
            #expect(try await repository.connection(forReseller: otherID)?.id.apiString == ownID)
            reply = try await api.call(.delete, path, key: api.adminKey)
            #expect(reply.status == .ok && reply.string("source") == "default")
            #expect(try await api.auditCount(action: "reseller.upstream_connection.unassign") == 1)
            reply = try await api.call(
                .put, "/upstream-connection-default", key: api.adminKey, body: ["connectionId": simulatorID])
            #expect(try await repository.connection(forReseller: resellerID)?.id.apiString == simulatorID)
            #expect(try await api.auditCount(action: "upstream_connection_default.set") == 2)

            // No default: nothing sends for resellers without their own.
            reply = try await api.call(.delete, "/upstream-connection-default", key: api.adminKey)
            #expect(reply.status == .ok && reply["connection"] == nil)
            #expect(try await api.call(.get, "/upstream-connection-default", key: api.adminKey)["connection"] == nil)
            reply = try await api.call(.get, path, key: api.adminKey)
            #expect(reply.string("source") == "none" && reply["connection"] == nil)
            #expect(try await repository.connection(forReseller: resellerID) == nil)
            #expect(try await api.auditCount(action: "upstream_connection_default.clear") == 1)
            #expect(try await api.call(.delete, "/upstream-connection-default", key: api.adminKey).status == .ok)
            #expect(try await api.auditCount(action: "upstream_connection_default.clear") == 1)
            // The reseller's entries are in its own audit log.
            let log = try await api.call(
                .get, "/audit-log?action=reseller.upstream_connection.assign", key: tenant.resellerKey)
            #expect(log.items.count == 1)
        }
    }

    @Test func pauseAndResumeAreAuditedAndIllegalTransitionsConflict() async throws {
        try await Self.run { api in
            let created = try await api.call(
                .post, "/upstream-connections", key: api.adminKey, body: Self.body("Pausable"))
            let id = try #require(created.string("id"))
            let uuid = try #require(UUID(uuidString: id))
            let path = "/upstream-connections/\(id)"
            #expect(
                Self.fields(try await api.call(.post, "\(path)/pause", key: api.adminKey, body: ["reason": " "])) == [
                    "/reason"
                ])
            #expect(try await api.call(.post, "\(path)/pause", key: api.adminKey, body: [:]).status == .badRequest)
            #expect(try await api.call(.post, "\(path)/resume", key: api.adminKey).status == .conflict)

            var reply = try await api.call(
                .post, "\(path)/pause", key: api.adminKey, body: ["reason": "rotating the password"])
            #expect(
                reply.status == .ok && reply.string("status") == "paused"
                    && reply.string("pauseReason") == "rotating the password")
            #expect(
                reply.string("pausedBy")?.hasPrefix("key:") == true && reply["pausedAt"] != nil
                    && reply["pauseGatewayCode"] == nil)
            reply = try await api.call(.post, "\(path)/pause", key: api.adminKey, body: ["reason": "again"])
            #expect(reply.status == .conflict)
            #expect(try await api.call(.get, path, key: api.adminKey).string("pauseReason") == "rotating the password")
            #expect(try await api.call(.get, "/upstream-connections?status=paused", key: api.adminKey).items.count == 1)
            #expect(try await Self.gauge(api, id) == "1.0")
            reply = try await api.call(.post, "\(path)/resume", key: api.adminKey)
            #expect(
                reply.status == .ok && reply.string("status") == "active" && reply["pauseReason"] == nil
                    && reply["pausedAt"] == nil)
            #expect(try await api.call(.post, "\(path)/resume", key: api.adminKey).status == .conflict)
            #expect(try await api.auditCount(action: "upstream_connection.pause") == 1)
            #expect(try await api.auditCount(action: "upstream_connection.resume") == 1)
            #expect(try await Self.gauge(api, id) == "0.0")

            // The dispatcher's hook: account-level errors pause once, as system:dispatcher, with the code; others do not.
            let repository = UpstreamConnectionRepository(pool: api.pool)
            #expect(try await repository.pause(id: uuid, after: .timeout) == nil)
            #expect(try await repository.pause(id: uuid, after: .gateway(.maintenance)) == nil)
            #expect(try await repository.pause(id: uuid, after: .gateway(.messageTooLong)) == nil)
            guard case .paused(let paused) = try await repository.pause(id: uuid, after: .gateway(.invalidCredentials))
            else {
                throw Failure("not paused")
            }
            #expect(
                paused.pauseCode == 104 && paused.pausedBy == "system:dispatcher"
                    && paused.pauseReason?.hasPrefix("ERROR 104") == true)
            guard
                case .alreadyPaused(let still) = try await repository.pause(
                    id: uuid, after: .gateway(.insufficientCredits))
            else {
                throw Failure("paused twice")
            }
            #expect(still.pauseCode == 104)
            guard case .notFound = try await repository.pause(id: UUID(), reason: "x", code: nil) else {
                throw Failure("found")
            }
            #expect(try await api.auditCount(action: "upstream_connection.pause") == 2)
            let entry = try await api.pool.query(
                """
                SELECT actor, actor_role, after->>'pause_code' FROM audit_log WHERE action = 'upstream_connection.pause' ORDER BY id DESC LIMIT 1
                """
            ).first(as: (String, String, String?).self)
            #expect(entry?.0 == "system:dispatcher" && entry?.1 == "system" && entry?.2 == "104")
            reply = try await api.call(.get, path, key: api.adminKey)
            #expect(
                reply.string("status") == "paused" && reply["pauseGatewayCode"] as? Int == 104
                    && reply.string("pausedBy") == "system:dispatcher")
            #expect(try await repository.connection(id: uuid)?.isPaused == true)
            #expect(try await Self.gauge(api, id) == "1.0")

            // A renamed connection's series moves to its new name.
            #expect(try await api.call(.patch, path, key: api.adminKey, body: ["name": "Renamed"]).status == .ok)
            let metrics = try await Self.metrics(api)
            #expect(metrics.contains(#"upstream_connection_paused{connection="Renamed",connection_id="\#(id)"} 1.0"#))
            #expect(!metrics.contains(#"connection="Pausable""#))
            #expect(metrics.contains(#"upstream_connection_paused{connection="built-in simulator""#))
        }
    }

    static func metrics(_ api: TenancyHarness) async throws -> String {
        let response = try await api.client.execute(uri: "/metrics", method: .get, headers: [:], body: nil)
        return String(buffer: response.body)
    }

    /// The value of `upstream_connection_paused` for the connection `id`.
    static func gauge(_ api: TenancyHarness, _ id: String) async throws -> String? {
        try await metrics(api).split(separator: "\n").first {
            $0.hasPrefix("upstream_connection_paused{") && $0.contains(#"connection_id="\#(id)""#)
        }
        .flatMap { $0.split(separator: " ").last.map(String.init) }
    }

    @Test func checkReportsCreditsOrTheGatewayErrorWithoutChangingAnything() async throws {
        try await Self.run { api in
            let simulator = try await Self.bootstrapped(api)
            let simulatorID = try #require(simulator["id"] as? String)
            var reply = try await api.call(.post, "/upstream-connections/\(simulatorID)/check", key: api.adminKey)
            #expect(
                reply.status == .ok && reply["ok"] as? Bool == true && reply.string("credits") == "1000000",
                "\(reply.json)")
            #expect(reply["error"] == nil && reply.string("connectionId") == simulatorID && reply["durationMs"] is Int)

            let audit = try await api.auditCount()
            let wrong = try await api.call(
                .post, "/upstream-connections", key: api.adminKey,
                body: Self.body("Wrong password", url: try #require(simulator["baseUrl"] as? String)).merging([
                    "username": "sandbox"
                ]) { $1 })
            let wrongID = try #require(wrong.string("id"))
            reply = try await api.call(.post, "/upstream-connections/\(wrongID)/check", key: api.adminKey)
            #expect(reply.status == .ok && reply["ok"] as? Bool == false && reply["credits"] == nil, "\(reply.json)")
            let error = try #require(reply["error"] as? [String: Any])
            #expect(error["kind"] as? String == "gateway" && error["gatewayCode"] as? Int == 104)
            #expect(
                error["disposition"] as? String == "pause_connection"
                    && (error["message"] as? String)?.contains("104") == true)
            // Reported, not acted on: still active, nothing recorded but the creation.
            #expect(
                try await api.call(.get, "/upstream-connections/\(wrongID)", key: api.adminKey).string("status")
                    == "active")
            #expect(try await api.auditCount() == audit + 1)

            // Nobody listening: a transient failure the dispatcher would retry.
            let dead = try await api.call(
                .post, "/upstream-connections", key: api.adminKey,
                body: Self.body("Dead", url: "http://127.0.0.1:1").merging(["requestTimeoutMs": 1000]) { $1 })
            reply = try await api.call(
                .post, "/upstream-connections/\(try #require(dead.string("id")))/check", key: api.adminKey)
            let failure = try #require(reply["error"] as? [String: Any])
            #expect(
                reply.status == .ok && failure["kind"] as? String == "connection_failed"
                    && failure["disposition"] as? String == "retry", "\(reply.json)")

            // A password sealed under another key is reported, not a 500.
            let foreign = UpstreamConnectionRepository(
                pool: api.pool,
                cipher: try UpstreamCredentialCipher(base64Key: Data(repeating: 9, count: 32).base64EncodedString()))
            let sealed = try #require(
                try await foreign.create(
                    UpstreamConnectionSettings(
                        name: "Foreign key", baseURL: "http://127.0.0.1:1", username: "u", password: "p"),
                    by: .bootstrap))
            reply = try await api.call(.post, "/upstream-connections/\(sealed.id.apiString)/check", key: api.adminKey)
            #expect(
                reply.status == .ok
                    && (reply["error"] as? [String: Any])?["kind"] as? String == "credentials_unavailable",
                "\(reply.json)")
            #expect(
                try await api.call(.post, "/upstream-connections/\(UUID().uuidString)/check", key: api.adminKey).status
                    == .notFound)
        }
    }

    @Test func onlyTheAdminManagesConnectionsAndAResellerReadsOnlyWhichItUses() async throws {
        try await Self.run { api in
            let tenant = try await api.onboard("Roles")
            let id = try #require(try await Self.bootstrapped(api)["id"] as? String)
            let c = "/upstream-connections/\(id)"
            let r = "/resellers/\(tenant.resellerID)/upstream-connection"
            let reference: [String: Any] = ["connectionId": id]
            // (method, path, body, expected for admin, reseller, sub-account)
            let matrix:
                [(
                    HTTPRequest.Method, String, [String: Any]?, HTTPResponse.Status, HTTPResponse.Status,
                    HTTPResponse.Status
                )] = [
                    (.get, "/upstream-connections", nil, .ok, .forbidden, .forbidden),
                    (.post, "/upstream-connections", Self.body("Roles"), .created, .forbidden, .forbidden),
                    (.get, c, nil, .ok, .notFound, .notFound),
                    (.patch, c, ["concurrency": 5], .ok, .notFound, .notFound),
                    (.post, "\(c)/check", nil, .ok, .notFound, .notFound),
                    (.post, "\(c)/pause", ["reason": "roles"], .ok, .notFound, .notFound),
                    (.post, "\(c)/resume", nil, .ok, .notFound, .notFound),
                    (.get, "/upstream-connection-default", nil, .ok, .forbidden, .forbidden),
                    (.put, "/upstream-connection-default", reference, .ok, .forbidden, .forbidden),
                    (.get, r, nil, .ok, .ok, .forbidden),
                    (.put, r, reference, .ok, .forbidden, .forbidden),
                    (.delete, r, nil, .ok, .forbidden, .forbidden),
                    (.delete, "/upstream-connection-default", nil, .ok, .forbidden, .forbidden),
                ]
            for (method, path, body, admin, reseller, subAccount) in matrix {
                // The reseller and the sub-account go first, so the admin's change is the only one.
                for (role, key, expected) in [
                    ("reseller", tenant.resellerKey, reseller), ("sub_account", tenant.subAccountKey, subAccount),
                    ("admin", api.adminKey, admin),
                ] {
                    let reply = try await api.call(method, path, key: key, body: body)
                    #expect(reply.status == expected, "\(role) \(method) \(path): \(reply.json)")
                    if expected == .forbidden { #expect(reply.string("code") == "forbidden") }
                    if expected == .notFound { #expect(reply.string("code") == "not_found" && reply["id"] == nil) }
                }
            }
        }
    }
}
