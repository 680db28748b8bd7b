import Foundation
import HTTPTypes
import Ledger
import Messaging
import PostgresLibpq
import ResellerApp
import ResellerCore
import Testing

@Suite(.timeLimit(.minutes(3))) struct TenancyTests {
    @Test func missingWrongAndRevokedKeysAnswer401WithABearerChallenge() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Acme")
            for key in [nil, "sk_live_" + String(repeating: "A", count: 43), "not-a-key"] as [String?] {
                let reply = try await api.call(.get, "/me", key: key)
                #expect(reply.status == .unauthorized)
                #expect(reply.string("code") == "unauthorized")
                #expect(reply.headers[.wwwAuthenticate] == "Bearer")
                #expect(reply.headers[.contentType] == "application/problem+json; charset=utf-8")
            }
            #expect(try await api.call(.get, "/me", key: tenant.subAccountKey).status == .ok)
            // The reseller revokes its customer's key: it fails at once.
            #expect(
                try await api.call(.delete, "/api-keys/\(tenant.subAccountKeyID)", key: tenant.resellerKey).status
                    == .noContent)
            let revoked = try await api.call(.get, "/me", key: tenant.subAccountKey)
            #expect(revoked.status == .unauthorized)
            // Health and metrics stay public.
            #expect(try await api.call(.get, "/health/live", key: nil).status == .ok)
            #expect(try await api.call(.get, "/metrics", key: nil).status == .ok)
        }
    }

    @Test func roleMatrixAllowsEachRoleOnlyItsOperations() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Matrix")
            let r = "/resellers/\(tenant.resellerID)"
            let s = "/sub-accounts/\(tenant.subAccountID)"
            let block: [String: Any] = ["status": "blocked", "reason": "test"]
            // (method, path, body, expected status for admin, reseller, sub-account)
            let matrix:
                [(
                    HTTPRequest.Method, String, [String: Any]?, HTTPResponse.Status, HTTPResponse.Status,
                    HTTPResponse.Status
                )] = [
                    (.get, "/me", nil, .ok, .ok, .ok),
                    (.get, "/api-keys", nil, .ok, .ok, .ok),
                    (.get, "/resellers", nil, .ok, .forbidden, .forbidden),
                    (.post, "/resellers", ["name": "Other"], .created, .forbidden, .forbidden),
                    (.get, r, nil, .ok, .ok, .forbidden),
                    (.patch, r, ["name": "Matrix BV"], .ok, .forbidden, .forbidden),
                    (.get, "\(r)/api-keys", nil, .ok, .forbidden, .forbidden),
                    (.post, "\(r)/block", block, .ok, .forbidden, .forbidden),
                    (.post, "\(r)/unblock", [:], .ok, .forbidden, .forbidden),
                    (.get, "/sub-accounts", nil, .ok, .ok, .forbidden),
                    (
                        .post, "/sub-accounts",
                        ["name": "x", "username": "matrix-\(UUID().uuidString.prefix(6))", "password": "password1"],
                        .forbidden, .created, .forbidden
                    ),
                    (.get, s, nil, .ok, .ok, .ok),
                    (.patch, s, ["name": "Renamed"], .forbidden, .ok, .forbidden),
                    (.post, "\(s)/block", block, .forbidden, .ok, .forbidden),
                    (.post, "\(s)/unblock", [:], .forbidden, .ok, .forbidden),
                    (.get, "\(s)/api-keys", nil, .forbidden, .ok, .forbidden),
                    (.post, "\(s)/api-keys", ["name": "k"], .forbidden, .created, .forbidden),
                    (.get, "/audit-log", nil, .ok, .ok, .forbidden),
                    (.get, "/sender-names", nil, .ok, .ok, .ok),
                    (.post, "/sender-names", ["name": "Matrix"], .forbidden, .forbidden, .created),
                    (.get, "/sender-name-rules", nil, .ok, .forbidden, .forbidden),
                    (
                        .post, "/sender-name-rules", ["name": "Matrix Bank", "kind": "blocked"], .created, .forbidden,
                        .forbidden
                    ),
                ]
            for (method, path, body, admin, reseller, subAccount) in matrix {
                for (role, key, expected) in [
                    ("admin", api.adminKey, admin), ("reseller", tenant.resellerKey, reseller),
                    ("sub_account", tenant.subAccountKey, subAccount),
                ] {
                    let reply = try await api.call(method, path, key: key, body: body)
                    #expect(reply.status == expected, "\(role) \(method) \(path): \(reply.json)")
                    if expected == .forbidden { #expect(reply.string("code") == "forbidden") }
                }
            }
            // A principal of the same reseller that is not the target: another sub-account sees nothing of its sibling.
            let sibling = try await api.call(
                .post, "/sub-accounts", key: tenant.resellerKey,
                body: ["name": "y", "username": "sibling-\(UUID().uuidString.prefix(6))", "password": "password1"])
            let siblingID = try #require(sibling.string("id"))
            #expect(
                try await api.call(.get, "/sub-accounts/\(siblingID)", key: tenant.subAccountKey).status == .notFound)
        }
    }

    @Test func blockingAResellerBlocksItsSubAccountsInEffectAndUnblockingRestoresThem() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Cascade")
            let path = "/sub-accounts/\(tenant.subAccountID)"
            let repository = SubAccountRepository(pool: api.pool)
            let subAccountID = try #require(UUID(uuidString: tenant.subAccountID))

            // The customer itself was blocked by its reseller: that stays its own status.
            var reply = try await api.call(
                .post, "/resellers/\(tenant.resellerID)/block", key: api.adminKey,
                body: ["status": "blocked_payment", "reason": "invoice overdue"])
            #expect(reply.status == .ok)
            #expect(reply.string("status") == "blocked_payment")
            #expect(reply.string("statusReason") == "invoice overdue")
            #expect(reply.string("statusChangedBy")?.hasPrefix("key:") == true)
            reply = try await api.call(.get, path, key: tenant.resellerKey)
            #expect(reply.string("status") == "active")
            #expect(reply.string("effectiveStatus") == "blocked_payment")
            #expect(reply["effectiveGatewayCode"] as? Int == 115)
            #expect(try await repository.effectiveStatus(subAccountID: subAccountID) == .blockedPayment)

            reply = try await api.call(
                .post, "/resellers/\(tenant.resellerID)/block", key: api.adminKey,
                body: ["status": "blocked", "reason": "abuse"])
            #expect(reply.status == .ok)
            reply = try await api.call(.get, path, key: tenant.subAccountKey)
            #expect(reply.string("effectiveStatus") == "blocked")
            #expect(reply["effectiveGatewayCode"] as? Int == 116)
            // The sub-account row itself was never rewritten.
            #expect(
                try await api.pool.query("SELECT status FROM sub_account WHERE id = \(subAccountID)").first(
                    as: String.self) == "active")

            reply = try await api.call(.post, "/resellers/\(tenant.resellerID)/unblock", key: api.adminKey)
            #expect(reply.status == .ok)
            reply = try await api.call(.get, path, key: tenant.resellerKey)
            #expect(reply.string("effectiveStatus") == "active")
            #expect(reply["effectiveGatewayCode"] == nil)

            // A sub-account blocked by its reseller stays blocked when the reseller is unblocked.
            #expect(
                try await api.call(
                    .post, "\(path)/block", key: tenant.resellerKey,
                    body: ["status": "blocked_payment", "reason": "unpaid"]
                ).status == .ok)
            #expect(
                try await api.call(
                    .post, "/resellers/\(tenant.resellerID)/block", key: api.adminKey,
                    body: ["status": "blocked", "reason": "x"]
                ).status == .ok)
            #expect(try await api.call(.get, path, key: tenant.resellerKey).string("effectiveStatus") == "blocked")
            #expect(
                try await api.call(.post, "/resellers/\(tenant.resellerID)/unblock", key: api.adminKey).status == .ok)
            #expect(
                try await api.call(.get, path, key: tenant.resellerKey).string("effectiveStatus") == "blocked_payment")

            // Closing is final: keys stop working, and unblocking a closed reseller is a conflict.
            #expect(
                try await api.call(
                    .post, "/resellers/\(tenant.resellerID)/close", key: api.adminKey,
                    body: ["reason": "contract ended"]
                ).status == .ok)
            #expect(try await api.call(.get, "/me", key: tenant.resellerKey).status == .unauthorized)
            #expect(try await repository.effectiveStatus(subAccountID: subAccountID) == .blocked)
            let conflict = try await api.call(.post, "/resellers/\(tenant.resellerID)/unblock", key: api.adminKey)
            #expect(conflict.status == .conflict)
            #expect(conflict.string("code") == "conflict")
        }
    }

    @Test func everyMutationIsAuditedInItsTransactionAndFailedOnesLeaveNoTrace() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Audit")
            // onboard: reseller.create, api_key.create ×2 (+ the admin's bootstrap key), sub_account.create
            #expect(try await api.auditCount(action: "reseller.create") == 1)
            #expect(try await api.auditCount(action: "api_key.create") == 3)
            #expect(try await api.auditCount(action: "sub_account.create") == 1)

            let path = "/sub-accounts/\(tenant.subAccountID)"
            #expect(
                try await api.call(
                    .post, "\(path)/block", key: tenant.resellerKey, body: ["status": "blocked", "reason": "spam"]
                ).status == .ok)
            let log = try await api.call(.get, "/audit-log?action=sub_account.block", key: tenant.resellerKey)
            #expect(log.status == .ok)
            let entry = try #require(log.items.first)
            #expect(entry["actorRole"] as? String == "reseller")
            #expect(entry["actor"] as? String == "key:\(tenant.resellerKeyID)")
            #expect(entry["resellerId"] as? String == tenant.resellerID)
            #expect(entry["targetId"] as? String == tenant.subAccountID)
            #expect((entry["before"] as? [String: Any])?["status"] as? String == "active")
            #expect((entry["after"] as? [String: Any])?["status"] as? String == "blocked")
            #expect((entry["requestId"] as? String)?.isEmpty == false)
            #expect((entry["after"] as? [String: Any])?["password_hash"] == nil)

            // Failed mutations write nothing: a taken username, an illegal status change, invalid input.
            // Asking for the status an account already has changes nothing and records nothing either.
            let before = try await api.auditCount()
            #expect(
                try await api.call(.post, "/resellers/\(tenant.resellerID)/unblock", key: api.adminKey).status == .ok)
            #expect(
                try await api.call(
                    .post, "/sub-accounts", key: tenant.resellerKey,
                    body: ["name": "dup", "username": tenant.username.uppercased(), "password": "password1"]
                ).status == .conflict)
            #expect(try await api.call(.post, "\(path)/close", key: tenant.resellerKey).status == .ok)
            #expect(try await api.call(.post, "\(path)/unblock", key: tenant.resellerKey).status == .conflict)
            #expect(
                try await api.call(.post, "/resellers", key: api.adminKey, body: ["name": ""]).status
                    == .unprocessableContent)
            #expect(try await api.auditCount() == before + 1)

            // A reseller reads only its own tenant's entries; the admin reads everything.
            let other = try await api.onboard("Other")
            let mine = try await api.call(.get, "/audit-log?limit=200", key: tenant.resellerKey)
            #expect(!mine.items.isEmpty)
            #expect(mine.items.allSatisfy { $0["resellerId"] as? String == tenant.resellerID })
            let all = try await api.call(.get, "/audit-log?limit=200", key: api.adminKey)
            #expect(all.items.contains { $0["resellerId"] as? String == other.resellerID })

            // Append-only.
            await #expect(throws: PostgresError.self) { try await api.pool.query("UPDATE audit_log SET action = 'x'") }
            await #expect(throws: PostgresError.self) { try await api.pool.query("DELETE FROM audit_log") }
        }
    }

    @Test func eachMutatingOperationWritesExactlyOneAuditRowNamingItsAction() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Each")
            let rule = try await api.call(
                .post, "/sender-name-rules", key: api.adminKey, body: ["name": "Each Bank", "kind": "protected"])
            let ruleID = try #require(rule.string("id"))
            let r = "/resellers/\(tenant.resellerID)"
            let s = "/sub-accounts/\(tenant.subAccountID)"
            let steps: [(String, HTTPRequest.Method, String, [String: Any]?, String)] = [
                ("admin", .patch, r, ["contactEmail": "new@each.example"], "reseller.update"),
                ("admin", .post, "\(r)/block", ["status": "blocked_payment", "reason": "late"], "reseller.block"),
                ("admin", .post, "\(r)/unblock", nil, "reseller.unblock"),
                ("reseller", .patch, s, ["name": "Renamed"], "sub_account.update"),
                ("reseller", .patch, s, ["password": "new password"], "sub_account.update_password"),
                ("reseller", .post, "\(s)/block", ["status": "blocked", "reason": "spam"], "sub_account.block"),
                ("reseller", .post, "\(s)/unblock", nil, "sub_account.unblock"),
                ("reseller", .post, "/api-keys", ["name": "extra"], "api_key.create"),
                ("reseller", .delete, "/api-keys/\(tenant.subAccountKeyID)", nil, "api_key.revoke"),
                ("admin", .delete, "/sender-name-rules/\(ruleID)", nil, "sender_name_rule.delete"),
                ("reseller", .post, "\(s)/close", nil, "sub_account.close"),
                ("admin", .post, "\(r)/close", nil, "reseller.close"),
            ]
            for (role, method, path, body, action) in steps {
                let before = try await api.auditCount()
                let reply = try await api.call(
                    method, path, key: role == "admin" ? api.adminKey : tenant.resellerKey, body: body)
                #expect(reply.status.kind == .successful, "\(action): \(reply.status.code) \(reply.json)")
                #expect(try await api.auditCount() == before + 1, "\(action)")
                let newest = try await api.pool.query(
                    "SELECT action, actor_role FROM audit_log ORDER BY id DESC LIMIT 1"
                ).first(as: (String, String).self)
                #expect(newest?.0 == action)
                #expect(newest?.1 == role)
            }
        }
    }

    @Test func concurrentCreationOfTheSameUsernameLetsExactlyOneWin() async throws {
        try await TenancyHarness.run { api in
            let first = try await api.onboard("First")
            let second = try await api.onboard("Second")
            let username = "shared-\(UUID().uuidString.prefix(8))"
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for key in [first.resellerKey, second.resellerKey] {
                    group.addTask {
                        try await api.call(
                            .post, "/sub-accounts", key: key,
                            body: ["name": "race", "username": username, "password": "password1"]
                        ).status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .created }.count == 1, "\(statuses)")
            #expect(statuses.filter { $0 == .conflict }.count == 1, "\(statuses)")
            #expect(try await api.auditCount(action: "sub_account.create") == 3)
        }
    }

    @Test func validationErrorsAre422NamingTheFieldAndUnknownFieldsAreRejected() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Valid")
            var reply = try await api.call(
                .post, "/sub-accounts", key: tenant.resellerKey,
                body: ["name": " ", "username": "a b", "password": "short", "defaultSender": "ThisIsTooLong"])
            #expect(reply.status == .unprocessableContent)
            #expect(reply.string("code") == "validation_failed")
            let errors = try #require(reply["errors"] as? [[String: Any]])
            #expect(
                Set(errors.compactMap { $0["field"] as? String }) == [
                    "/name", "/username", "/password", "/defaultSender",
                ])
            #expect(errors.first { $0["field"] as? String == "/defaultSender" }?["gatewayCode"] as? Int == 111)

            reply = try await api.call(
                .post, "/resellers", key: api.adminKey, body: ["name": "X", "contactEmail": "nope"])
            #expect(reply.status == .unprocessableContent)
            #expect((reply["errors"] as? [[String: Any]])?.first?["field"] as? String == "/contactEmail")

            reply = try await api.call(.get, "/resellers?limit=0", key: api.adminKey)
            #expect(reply.status == .unprocessableContent)
            #expect((reply["errors"] as? [[String: Any]])?.first?["field"] as? String == "limit")

            reply = try await api.call(.post, "/resellers", key: api.adminKey, body: ["name": "X", "colour": "blue"])
            #expect(reply.status == .badRequest)
            #expect(reply.string("code") == "invalid_body")
        }
    }

    @Test func resellerListingPagesWithACursorAndFilters() async throws {
        try await TenancyHarness.run { api in
            for index in 0..<5 {
                #expect(
                    try await api.call(.post, "/resellers", key: api.adminKey, body: ["name": "Page \(index)"]).status
                        == .created)
            }
            #expect(
                try await api.call(.post, "/resellers", key: api.adminKey, body: ["name": "Zebra"]).status == .created)
            var seen: [String] = []
            var cursor: String?
            repeat {
                let reply = try await api.call(
                    .get, "/resellers?limit=2&name=page" + (cursor.map { "&cursor=\($0)" } ?? ""), key: api.adminKey)
                #expect(reply.status == .ok)
                seen += reply.items.compactMap { $0["id"] as? String }
                cursor = reply.string("nextCursor")
            } while cursor != nil
            #expect(seen.count == 5)
            #expect(Set(seen).count == 5)
            let blockedID = seen[0]
            #expect(
                try await api.call(
                    .post, "/resellers/\(blockedID)/block", key: api.adminKey,
                    body: ["status": "blocked", "reason": "r"]
                ).status == .ok)
            let blocked = try await api.call(.get, "/resellers?status=blocked", key: api.adminKey)
            #expect(blocked.items.compactMap { $0["id"] as? String } == [blockedID])
        }
    }

    @Test func apiKeysAreListedWithoutSecretsAndOnlyTheirOwnersCanReachThem() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Keys")
            let created = try await api.call(.post, "/api-keys", key: tenant.subAccountKey, body: ["name": "second"])
            #expect(created.status == .created)
            let secret = try #require(created.string("secret"))
            #expect(secret.hasPrefix("sk_live_") && secret.count == 51)
            #expect(try await api.call(.get, "/me", key: secret).string("role") == "sub_account")
            let list = try await api.call(.get, "/api-keys", key: secret)
            #expect(list.items.count == 2)
            #expect(list.items.allSatisfy { $0["secret"] == nil && ($0["prefix"] as? String)?.count == 16 })
            #expect(list.items.contains { $0["lastUsedAt"] is String })
            // The reseller sees its customer's keys; the stored hash is SHA-256 of the secret.
            #expect(
                try await api.call(.get, "/sub-accounts/\(tenant.subAccountID)/api-keys", key: tenant.resellerKey).items
                    .count == 2)
            let stored = try await api.pool.query(
                "SELECT count(*) FROM api_key WHERE secret_sha256 = \(APIKeySecret.hash(secret))"
            ).first(as: Int.self)
            #expect(stored == 1)
            // A sub-account cannot revoke its reseller's key (not visible: 404).
            #expect(try await api.call(.delete, "/api-keys/\(tenant.resellerKeyID)", key: secret).status == .notFound)
        }
    }
}
