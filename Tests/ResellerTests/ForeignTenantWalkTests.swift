import CompatibleGateway
import Contacts
import Foundation
import HTTPTypes
import Ledger
import PostgresLibpq
import ResellerApp
import ResellerCore
import SMSCore
import Testing
import Yams

/// Walks every operation of `openapi.yaml` that takes a path parameter with the keys of another
/// reseller (and of that reseller's sub-account), pointing at the first tenant's ids. Every answer
/// must be 404 `not_found`: never 403, never data. New endpoints are walked as soon as they are in
/// the spec; a new kind of path parameter fails the test until it gets a fixture below.
@Suite(.timeLimit(.minutes(3))) struct ForeignTenantWalkTests {
    struct Operation: CustomStringConvertible, @unchecked Sendable {
        var method: HTTPRequest.Method
        var path: String
        var operationID: String
        var body: [String: Any]?
        /// For operations that only take `text/csv`: a minimal file.
        var csv: String?
        var description: String { "\(operationID) \(method) \(path)" }
    }

    static func specification() throws -> [String: Any] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        return try #require(try Yams.load(yaml: text) as? [String: Any])
    }

    /// Every operation with a `{parameter}` in its path, with a minimal valid body when it takes one.
    static func operationsWithPathParameters(_ spec: [String: Any]) throws -> [Operation] {
        let paths = try #require(spec["paths"] as? [String: Any])
        var operations: [Operation] = []
        for (path, item) in paths where path.contains("{") {
            let item = try #require(item as? [String: Any])
            for (method, value) in item {
                guard let httpMethod = HTTPRequest.Method(method.uppercased()),
                    ["get", "post", "put", "patch", "delete"].contains(method),
                    let operation = value as? [String: Any]
                else { continue }
                var body: [String: Any]?
                var csv: String?
                if let requestBody = operation["requestBody"] as? [String: Any],
                    let content = requestBody["content"] as? [String: Any]
                {
                    if let schema = (content["application/json"] as? [String: Any])?["schema"] {
                        body = try example(for: schema, in: spec) as? [String: Any]
                    } else if content["text/csv"] != nil {
                        csv = "number\n31612345678\n"
                    }
                }
                operations.append(
                    Operation(
                        method: httpMethod, path: path + (try requiredQuery(operation, in: spec)),
                        operationID: operation["operationId"] as? String ?? "?",
                        body: body, csv: csv))
            }
        }
        return operations.sorted { $0.description < $1.description }
    }

    /// `?name=value&…` with an example for every required query parameter (statement periods, say), or "".
    static func requiredQuery(_ operation: [String: Any], in spec: [String: Any]) throws -> String {
        var pairs: [String] = []
        for parameter in operation["parameters"] as? [[String: Any]] ?? [] {
            guard parameter["in"] as? String == "query", parameter["required"] as? Bool == true,
                let name = parameter["name"] as? String
            else { continue }
            let schema = parameter["schema"] as? [String: Any] ?? [:]
            let value =
                schema["format"] as? String == "date-time"
                ? (name == "to" ? "2100-01-01T00:00:00Z" : "2000-01-01T00:00:00Z") : "walk"
            pairs.append("\(name)=\(value)")
        }
        return pairs.isEmpty ? "" : "?" + pairs.joined(separator: "&")
    }

    /// A minimal value that satisfies a schema: required properties only, first enum value, "walk" for strings.
    static func example(for schema: Any, in spec: [String: Any]) throws -> Any {
        var schema = try #require(schema as? [String: Any])
        if let reference = schema["$ref"] as? String {
            var node: Any = spec
            for part in reference.dropFirst(2).split(separator: "/") {
                node = try #require((node as? [String: Any])?[String(part)])
            }
            schema = try #require(node as? [String: Any])
        }
        if let values = schema["enum"] as? [Any], let first = values.first { return first }
        if schema["format"] as? String == "date-time" { return "2000-01-01T00:00:00Z" }
        switch schema["type"] as? String {
        case "object", nil:
            var object: [String: Any] = [:]
            let properties = schema["properties"] as? [String: Any] ?? [:]
            for name in schema["required"] as? [String] ?? [] {
                object[name] = try example(for: try #require(properties[name]), in: spec)
            }
            return object
        case "integer", "number": return 1
        case "boolean": return false
        case "array": return []
        default: return "walk"
        }
    }

    @Test func everyProtectedOperationAnswers401WithoutAKey() async throws {
        let spec = try Self.specification()
        let paths = try #require(spec["paths"] as? [String: Any])
        var operations: [Operation] = []
        var publicOperations: Set<String> = []
        var compatibleOperations: Set<String> = []
        for (template, item) in paths {
            let item = try #require(item as? [String: Any])
            for (method, value) in item {
                guard ["get", "post", "put", "patch", "delete"].contains(method),
                    let operation = value as? [String: Any],
                    let httpMethod = HTTPRequest.Method(method.uppercased())
                else { continue }
                // The 1601-compatible API authenticates with klantuser/klantpwd, outside the generated handlers
                // (GatewayEndpointTests).
                if (operation["tags"] as? [String])?.contains("1601-compatible") == true {
                    compatibleOperations.insert(operation["operationId"] as? String ?? "?")
                    continue
                }
                // `security: []` marks the public operations (health, metrics); everything else needs a key.
                if let security = operation["security"] as? [Any], security.isEmpty {
                    publicOperations.insert(operation["operationId"] as? String ?? "?")
                    continue
                }
                var path = template
                while let open = path.firstIndex(of: "{"), let close = path[open...].firstIndex(of: "}") {
                    path.replaceSubrange(open...close, with: UUID().uuidString.lowercased())
                }
                var body: [String: Any]?
                if let requestBody = operation["requestBody"] as? [String: Any],
                    let schema = ((requestBody["content"] as? [String: Any])?["application/json"] as? [String: Any])?[
                        "schema"]
                {
                    body = try Self.example(for: schema, in: spec) as? [String: Any]
                }
                operations.append(
                    Operation(
                        method: httpMethod, path: path, operationID: operation["operationId"] as? String ?? "?",
                        body: body))
            }
        }
        #expect(operations.count >= 30)
        #expect(
            publicOperations == RequireKeyMiddleware.publicOperations,
            "the middleware's public list must match the spec")
        #expect(
            compatibleOperations == ["gateway1601", "gateway1601Form", "gateway1601Report", "gateway1601ReportForm"])
        try await TenancyHarness.run { [operations] api in
            for operation in operations {
                let reply = try await api.call(operation.method, operation.path, key: nil, body: operation.body)
                #expect(reply.status == .unauthorized, "\(operation) answered \(reply.status.code) without a key")
                #expect(reply.string("code") == "unauthorized", "\(operation)")
            }
        }
    }

    @Test func everyOperationWithAPathParameterAnswers404ToAnotherTenant() async throws {
        let operations = try Self.operationsWithPathParameters(try Self.specification())
        #expect(operations.count >= 20)
        try await TenancyHarness.run { api in
            let victim = try await api.sendingTenant("Victim").tenant
            let intruder = try await api.onboard("Intruder")
            // Tariffs: the victim's retail list (the one its sub-account is priced by) and a version of it.
            let priceListID = try await api.createPriceList("retail", name: "Victim retail", key: victim.resellerKey)
            let tariffFixtures = [
                "priceListId": priceListID,
                "versionId": try await api.version(priceListID, key: victim.resellerKey, [TestEntry("31", "0.0725")]),
            ]
            let assigned = try await api.call(
                .put, "/resellers/\(victim.resellerID)/default-retail-price-list", key: victim.resellerKey,
                body: ["priceListId": priceListID])
            try #require(assigned.status == .ok)
            #expect(
                try await api.call(.get, "/price-lists", key: intruder.resellerKey).items.allSatisfy {
                    $0["id"] as? String != priceListID
                })
            #expect(try await api.call(.get, "/price-lists", key: intruder.subAccountKey).items.isEmpty)
            let sender = try await api.call(.post, "/sender-names", key: victim.subAccountKey, body: ["name": "Victim"])
            let senderNameID = try #require(sender.string("id"))
            let rule = try await api.call(
                .post, "/sender-name-rules", key: api.adminKey, body: ["name": "Bank", "kind": "blocked"])
            let ruleID = try #require(rule.string("id"))
            let topUp = try await api.call(
                .post, "/resellers/\(victim.resellerID)/top-ups", key: api.adminKey,
                body: ["amount": "10", "paymentReference": "walk"],
                headers: LedgerAPITests.key())
            let transferID = try #require((topUp["transfer"] as? [String: Any])?["id"] as? String)
            let accountID = try #require(
                try await LedgerAPITests.wallet(api, key: victim.subAccountKey, kind: "sub_account_wallet")["id"]
                    as? String)
            // Contacts: one of the victim's contacts in one of its groups.
            let contactID = try await api.contact(
                victim.subAccountID, "31612345678", name: "Victim contact", key: victim.subAccountKey)
            let groupID = try await api.group(victim.subAccountID, "Victim group", key: victim.subAccountKey)
            let membership = try await api.call(
                .post, "/sub-accounts/\(victim.subAccountID)/contact-groups/\(groupID)/members",
                key: victim.subAccountKey, body: ["contactIds": [contactID]])
            try #require(membership.status == .ok)
            // Upstream connections are the admin's: to resellers and sub-accounts they do not exist.
            let connections = try await api.call(.get, "/upstream-connections", key: api.adminKey)
            let connectionID = try #require(connections.items.first?["id"] as? String)
            // Messages: a scheduled send of the victim's.
            let sent = try await api.send(
                victim,
                [
                    "sender": "Jansen", "text": "Hi", "recipients": ["31612345678"],
                    "scheduleAt": Date().addingTimeInterval(3_600).formatted(.iso8601),
                ])
            try #require(sent.status == .created, "\(sent.json)")
            let batchID = try #require(sent.string("batchId"))
            let messageID = try #require((sent["messages"] as? [[String: Any]])?.first?["id"] as? String)
            // Webhooks: an endpoint of the victim's sub-account with one delivery.
            let webhook = try await api.call(
                .post, "/sub-accounts/\(victim.subAccountID)/webhooks", key: victim.subAccountKey,
                body: ["url": "http://93.184.216.34/hook", "eventTypes": ["account.blocked"]])
            try #require(webhook.status == .created, "\(webhook.json)")
            let webhookID = try #require((webhook["webhook"] as? [String: Any])?["id"] as? String)
            try await api.pool.query(
                """
                SELECT webhook_emit('account.blocked', \(UUID(uuidString: victim.resellerID)!), \(UUID(uuidString: victim.subAccountID)!), '{}')
                """)
            let deliveryID = try #require(
                try await api.pool.query("SELECT id FROM webhook_delivery").first(as: UUID.self)
            ).uuidString.lowercased()
            // Invoicing: a purchase invoice the victim's reseller issued to its sub-account this month.
            try #require(
                try await api.call(
                    .put, "/invoicing/issuer-profile", key: victim.resellerKey,
                    body: InvoicingTests.issuerProfile("Victim B.V.", prefix: "VIC", creditNotePrefix: "VICCN")
                ).status == .ok)
            try #require(
                try await api.call(
                    .put, "/sub-accounts/\(victim.subAccountID)/billing-profile", key: victim.resellerKey,
                    body: [
                        "legalName": "Victim customer", "address": ["Street 1"], "countryCode": "NL",
                        "vatRegime": "exempt", "billingMode": "prepaid", "creditPrice": "0.05",
                    ]
                ).status == .ok)
            let run = try await api.call(
                .post, "/invoice-runs", key: victim.resellerKey, body: ["month": InvoicingTests.thisMonth])
            let invoiceID = try #require((run["documents"] as? [[String: Any]])?.first?["id"] as? String, "\(run.json)")
            let fixtures = [
                "invoiceId": invoiceID,
                "messageId": messageID, "batchId": batchID, "webhookId": webhookID, "deliveryId": deliveryID,
                // The upstream's delivery callback is no tenant's: any caller with a wrong token gets 404.
                "token": String(repeating: "0", count: 64),
                "layer": "retail",
                "resellerId": victim.resellerID, "subAccountId": victim.subAccountID, "keyId": victim.subAccountKeyID,
                "senderNameId": senderNameID, "ruleId": ruleID, "accountId": accountID, "transferId": transferID,
                "contactId": contactID, "groupId": groupID, "connectionId": connectionID, "day": "2026-12-07",
            ]
            let walletBefore = try await LedgerAPITests.wallet(api, key: victim.resellerKey, kind: "reseller_wallet")
            let transfersBefore = try await api.pool.query("SELECT count(*) FROM ledger_transfer").first(as: Int.self)
            for operation in operations {
                // An export's path names a dataset, not a resource: exports are scoped by the caller (FinanceTests).
                if operation.path.hasPrefix("/exports/") { continue }
                var path = operation.path
                for (name, value) in fixtures.merging(tariffFixtures, uniquingKeysWith: { first, _ in first }) {
                    path = path.replacingOccurrences(of: "{\(name)}", with: value)
                }
                if path.contains("{") {
                    Issue.record("no fixture for a path parameter of \(operation); add one to this test")
                    continue
                }
                for (who, key) in [("reseller", intruder.resellerKey), ("sub-account", intruder.subAccountKey)] {
                    // Every call carries an Idempotency-Key so money operations get as far as their tenant check.
                    let reply =
                        if let csv = operation.csv {
                            try await api.call(operation.method, path, key: key, csv: csv)
                        } else {
                            try await api.call(
                                operation.method, path, key: key, body: operation.body, headers: LedgerAPITests.key())
                        }
                    #expect(
                        reply.status == .notFound,
                        "\(who) of another tenant: \(operation) answered \(reply.status.code) \(reply.json)")
                    #expect(reply.string("code") == "not_found", "\(operation)")
                    #expect(reply["id"] == nil && reply["items"] == nil, "\(operation) leaked data")
                }
            }
            // Lists are scoped too: nothing of the victim in the intruder's lists.
            for list in [
                "/sub-accounts", "/sender-names", "/audit-log?limit=200", "/api-keys", "/accounts", "/invoices",
            ] {
                let reply = try await api.call(.get, list, key: intruder.resellerKey)
                #expect(reply.status == .ok, "\(list)")
                let ids = reply.items.flatMap {
                    [$0["id"], $0["resellerId"], $0["targetId"], $0["subAccountId"]].compactMap { $0 as? String }
                }
                for victimID in [
                    victim.resellerID, victim.subAccountID, senderNameID, victim.subAccountKeyID, victim.resellerKeyID,
                    accountID, invoiceID,
                ] {
                    #expect(!ids.contains(victimID), "\(list) shows \(victimID)")
                }
            }
            // Finance: reports, balances and every export in the intruder's scope (with and without filters naming
            // the victim) hold nothing of the victim; its statement is 404; charts of accounts are per reseller.
            let victimIDs = [victim.resellerID, victim.subAccountID, accountID, messageID]
            let chart = LedgerAccountKind.allCases.map {
                ["accountKind": $0.rawValue, "code": "9\($0.rawValue.count)"]
            }
            let put = try await api.call(.put, "/account-codes", key: intruder.resellerKey, body: ["items": chart])
            #expect(put.status == .ok)
            #expect(try await api.call(.get, "/account-codes", key: victim.resellerKey).items.isEmpty)
            let allTime = "from=2020-01-01T00:00:00Z&to=2100-01-01T00:00:00Z"
            for key in [intruder.resellerKey, intruder.subAccountKey] {
                for filter in ["", "&resellerId=\(victim.resellerID)", "&subAccountId=\(victim.subAccountID)"] {
                    var paths = [
                        "/reports/usage?\(allTime)&groupBy=sub_account,country,status_class\(filter)",
                        "/reports/usage?\(allTime)&view=accepted&groupBy=sub_account\(filter)",
                        "/reports/balances?x=1\(filter)",
                    ]
                    paths += ["journal", "messages", "usage", "payments", "double_entry"].map {
                        "/exports/\($0)?\(allTime)&format=jsonl\(filter)"
                    }
                    for path in paths {
                        let reply = try await api.call(.get, path, key: key)
                        let body = String(decoding: reply.body, as: UTF8.self)
                        #expect(
                            reply.status == .ok || (path.contains("double_entry") && reply.status == .forbidden),
                            "\(path) answered \(reply.status.code)")
                        for victimID in victimIDs { #expect(!body.contains(victimID), "\(path) shows \(victimID)") }
                    }
                }
                let statement = try await api.call(
                    .get, "/exports/statement?\(allTime)&accountId=\(accountID)", key: key)
                #expect(statement.status == .notFound && statement.string("code") == "not_found")
            }
            // Nothing of the victim changed.
            #expect(
                try await api.call(.get, "/resellers/\(victim.resellerID)", key: api.adminKey).string("status")
                    == "active")
            let account = try await api.call(.get, "/sub-accounts/\(victim.subAccountID)", key: victim.resellerKey)
            #expect(account.string("status") == "active" && account.string("name") == "Victim customer")
            #expect(try await api.call(.get, "/me", key: victim.subAccountKey).status == .ok)
            #expect(
                try await api.call(.get, "/sender-names/\(senderNameID)", key: victim.resellerKey).string("status")
                    == "pending")
            #expect(try await api.call(.get, "/sender-name-rules", key: api.adminKey).items.count == 1)
            let victimWallet = try await LedgerAPITests.wallet(api, key: victim.resellerKey, kind: "reseller_wallet")
            #expect(
                victimWallet["balance"] as? String == walletBefore["balance"] as? String
                    && victimWallet["creditLimit"] == nil)
            #expect(
                try await api.pool.query("SELECT count(*) FROM ledger_transfer").first(as: Int.self) == transfersBefore)
            let message = try await api.call(
                .get, "/sub-accounts/\(victim.subAccountID)/messages/\(messageID)", key: victim.subAccountKey)
            #expect(message.string("status") == "scheduled" && message.string("text") == "Hi")
            let contact = try await api.call(
                .get, "/sub-accounts/\(victim.subAccountID)/contacts/\(contactID)", key: victim.subAccountKey)
            #expect(
                contact.string("name") == "Victim contact"
                    && (contact["groups"] as? [[String: Any]])?.first?["name"] as? String == "Victim group")
            let counts = [
                try await api.count("contact"), try await api.count("contact_group"),
                try await api.count("contact_group_member"),
            ]
            #expect(counts == [1, 1, 1])
            #expect(
                try await api.expand(victim.subAccountID, "victim group")
                    == .members([try PhoneNumber(parsing: "31612345678")]))
            let victimWebhook = try await api.call(.get, "/webhooks/\(webhookID)", key: victim.subAccountKey)
            #expect(
                victimWebhook.string("status") == "active" && victimWebhook.string("url") == "http://93.184.216.34/hook"
            )
            #expect(try await api.count("webhook_delivery") == 1)
            let connection = try await api.call(.get, "/upstream-connections/\(connectionID)", key: api.adminKey)
            #expect(connection.string("status") == "active" && connection["concurrency"] as? Int == 4)
        }
    }
}
