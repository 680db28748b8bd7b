import Foundation
import HTTPTypes
import Ledger
import PostgresLibpq
import ResellerCore
import SMSCore
import Testing

@Suite(.timeLimit(.minutes(3))) struct SenderNameTests {
    @Test func everySenderRuleAnswersItsGatewayCodeAtTheBoundaries() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Rules")
            #expect(
                try await api.call(
                    .post, "/sender-name-rules", key: api.adminKey,
                    body: ["name": "Bank", "kind": "blocked", "reason": "phishing"]
                ).status == .created)
            let cases: [(String, Int?)] = [
                ("", 109), ("   ", 109),
                ("ABCDEFGHIJK", nil), ("ABCDEFGHIJKL", 111),
                ("+" + String(repeating: "1", count: 15), nil), ("+" + String(repeating: "1", count: 16), 110),
                ("0612345678", 110), ("+31 612", 110),
                ("Café", 113), ("Hi😀", 113), ("My Shop", nil),
                ("Bank", 117), (" bANK ", 117),
            ]
            for (name, code) in cases {
                let reply = try await api.call(.post, "/sender-names", key: tenant.subAccountKey, body: ["name": name])
                if let code {
                    #expect(reply.status == .unprocessableContent, "\(name): \(reply.json)")
                    let error = (reply["errors"] as? [[String: Any]])?.first
                    #expect(error?["field"] as? String == "/name", "\(name)")
                    #expect(error?["gatewayCode"] as? Int == code, "\(name): \(reply.json)")
                } else {
                    #expect(reply.status == .created, "\(name): \(reply.json)")
                    #expect(reply.string("status") == "pending")
                }
            }
            // The same name twice while pending is a conflict; only sub-accounts request names.
            #expect(
                try await api.call(.post, "/sender-names", key: tenant.subAccountKey, body: ["name": "ABCDEFGHIJK"])
                    .status == .conflict)
            #expect(
                try await api.call(.post, "/sender-names", key: tenant.resellerKey, body: ["name": "Other"]).status
                    == .forbidden)
            #expect(try await api.call(.get, "/sender-names?status=pending", key: tenant.resellerKey).items.count == 3)
        }
    }

    @Test func resellersDecideTheAdminApprovesProtectedNamesAndSendsFollowTheOutcome() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Decide")
            let repository = SenderNameRepository(pool: api.pool)
            let subAccountID = try #require(UUID(uuidString: tenant.subAccountID))
            #expect(
                try await api.call(
                    .post, "/sender-name-rules", key: api.adminKey, body: ["name": "PayPal", "kind": "protected"]
                ).status == .created)

            // Plain name: the reseller approves; the sub-account itself may not.
            let shop = try await api.call(.post, "/sender-names", key: tenant.subAccountKey, body: ["name": "Shop"])
            let shopID = try #require(shop.string("id"))
            #expect(try await repository.sendCheck(subAccountID: subAccountID, sender: "Shop")?.rawValue == 117)
            #expect(
                try await api.call(.post, "/sender-names/\(shopID)/approve", key: tenant.subAccountKey).status
                    == .forbidden)
            var reply = try await api.call(.post, "/sender-names/\(shopID)/approve", key: tenant.resellerKey)
            #expect(reply.status == .ok)
            #expect(reply.string("status") == "approved")
            #expect(try await repository.sendCheck(subAccountID: subAccountID, sender: "Shop") == nil)
            #expect(
                try await repository.sendCheck(subAccountID: subAccountID, sender: "Shop!!!!!!!!!")?.rawValue == 111)

            // Revoking needs a reason, and sends are refused again.
            #expect(
                try await api.call(.post, "/sender-names/\(shopID)/revoke", key: tenant.resellerKey, body: [:]).status
                    == .badRequest)
            #expect(
                try await api.call(
                    .post, "/sender-names/\(shopID)/revoke", key: tenant.resellerKey, body: ["reason": ""]
                ).status == .unprocessableContent)
            reply = try await api.call(
                .post, "/sender-names/\(shopID)/revoke", key: tenant.resellerKey, body: ["reason": "customer left"])
            #expect(reply.string("status") == "revoked")
            #expect(reply.string("reason") == "customer left")
            #expect(try await repository.sendCheck(subAccountID: subAccountID, sender: "Shop")?.rawValue == 117)

            // Protected name: the reseller's approval hands it to the admin.
            let paypal = try await api.call(.post, "/sender-names", key: tenant.subAccountKey, body: ["name": "paypal"])
            #expect(paypal["requiresAdmin"] as? Bool == true)
            let paypalID = try #require(paypal.string("id"))
            reply = try await api.call(.post, "/sender-names/\(paypalID)/approve", key: tenant.resellerKey)
            #expect(reply.string("status") == "pending_admin")
            #expect(
                try await api.call(.post, "/sender-names/\(paypalID)/approve", key: tenant.resellerKey).status
                    == .conflict)
            #expect(try await api.call(.get, "/sender-names?status=pending_admin", key: api.adminKey).items.count == 1)
            reply = try await api.call(.post, "/sender-names/\(paypalID)/approve", key: api.adminKey)
            #expect(reply.string("status") == "approved")

            // Rejection with a reason; a rejected name cannot be approved afterwards.
            let other = try await api.call(.post, "/sender-names", key: tenant.subAccountKey, body: ["name": "Other"])
            let otherID = try #require(other.string("id"))
            reply = try await api.call(
                .post, "/sender-names/\(otherID)/reject", key: tenant.resellerKey, body: ["reason": "not your brand"])
            #expect(reply.string("status") == "rejected")
            #expect(
                try await api.call(.post, "/sender-names/\(otherID)/approve", key: tenant.resellerKey).status
                    == .conflict)

            // Every decision is in the audit log.
            for action in [
                "sender_name.request", "sender_name.approve", "sender_name.reject", "sender_name.revoke",
                "sender_name_rule.create",
            ] {
                #expect(try await api.auditCount(action: action) > 0, "\(action)")
            }
            #expect(try await api.auditCount(action: "sender_name.approve") == 3)
        }
    }

    /// A name that matches a protected rule is never used without the admin's approval, whatever came first: a rule
    /// made after the reseller's approval sends the name back to the admin (audited, with a reason the reseller sees),
    /// and an approval the rule did not see (it committed after the approval read the rules) is refused at send time.
    @Test func aProtectedRuleMadeAfterAnApprovalNeedsTheAdminsApprovalInEveryOrder() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.sendingTenant("Protect").tenant
            let repository = SenderNameRepository(pool: api.pool)
            let subAccountID = try #require(UUID(uuidString: tenant.subAccountID))
            let send: @Sendable (String) async throws -> Reply = { sender in
                try await api.send(tenant, ["sender": sender, "text": "Hi", "recipients": ["31612345678"]])
            }

            // First order: approved by the reseller, then protected by the admin.
            try await api.approvedSender("Bank", for: tenant)
            let pending = try await api.call(.post, "/sender-names", key: tenant.subAccountKey, body: ["name": "Loket"])
            #expect(try await send("Bank").status == .created)
            let auditBefore = try await api.auditCount(action: "sender_name.protect")
            let rule = try await api.call(
                .post, "/sender-name-rules", key: api.adminKey,
                body: ["name": " BANK", "kind": "protected", "reason": "a brand"])
            #expect(rule.status == .created)
            let bank = try #require(
                try await api.call(.get, "/sender-names?status=pending_admin", key: tenant.resellerKey).items.first)
            #expect(bank["name"] as? String == "Bank" && bank["requiresAdmin"] as? Bool == true)
            #expect((bank["reason"] as? String)?.contains("admin") == true, "\(bank)")
            #expect(try await api.auditCount(action: "sender_name.protect") == auditBefore + 1)
            #expect(try await repository.sendCheck(subAccountID: subAccountID, sender: "bank")?.rawValue == 117)
            let refused = try await send("Bank")
            #expect(refused.status == .unprocessableContent && refused.fieldErrorCodes["/sender"] == 117)
            // Names that do not match are left alone.
            let loket = try await api.call(
                .get, "/sender-names/\(try #require(pending.string("id")))", key: api.adminKey)
            #expect(loket.string("status") == "pending" && loket["requiresAdmin"] as? Bool == false)
            let bankID = try #require(bank["id"] as? String)
            #expect(
                try await api.call(.post, "/sender-names/\(bankID)/approve", key: tenant.resellerKey).status
                    == .conflict)
            let approved = try await api.call(.post, "/sender-names/\(bankID)/approve", key: api.adminKey)
            #expect(approved.string("status") == "approved" && approved["requiresAdmin"] as? Bool == true)
            #expect(try await send("Bank").status == .created)

            // Second order: the rule commits after the reseller's approval read the rules (written here straight into
            // the table, as a concurrent rule would land): the approval alone does not let the name send.
            try await api.approvedSender("Kas", for: tenant)
            try await api.pool.query(
                "INSERT INTO sender_name_rule (name_key, name, kind) VALUES ('kas', 'Kas', 'protected')")
            #expect(try await repository.sendCheck(subAccountID: subAccountID, sender: "Kas")?.rawValue == 117)
            #expect(try await send("Kas").fieldErrorCodes["/sender"] == 117)
            // The admin can still approve it where it stands.
            let kas = try #require(
                try await api.call(.get, "/sender-names?status=approved", key: tenant.resellerKey).items.first {
                    $0["name"] as? String == "Kas"
                })
            let kasApproved = try await api.call(
                .post, "/sender-names/\(try #require(kas["id"] as? String))/approve", key: api.adminKey)
            #expect(kasApproved.status == .ok && kasApproved["requiresAdmin"] as? Bool == true, "\(kasApproved.json)")
            #expect(try await send("Kas").status == .created)
        }
    }
}
