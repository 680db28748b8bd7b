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

extension TenancyHarness {
    /// Creates a contact that must succeed; its id.
    func contact(_ subAccountID: String, _ number: String, name: String? = nil, key: String) async throws -> String {
        var body: [String: Any] = ["number": number]
        if let name { body["name"] = name }
        let reply = try await call(.post, "/sub-accounts/\(subAccountID)/contacts", key: key, body: body)
        try #require(reply.status == .created, "contact \(number): \(reply.json)")
        return try #require(reply.string("id"))
    }

    /// Creates a group that must succeed; its id.
    func group(_ subAccountID: String, _ name: String, key: String) async throws -> String {
        let reply = try await call(
            .post, "/sub-accounts/\(subAccountID)/contact-groups", key: key, body: ["name": name])
        try #require(reply.status == .created, "group \(name): \(reply.json)")
        return try #require(reply.string("id"))
    }

    /// A second sub-account of the tenant's reseller, with a key.
    func sibling(of tenant: Tenant, name: String = "Sibling") async throws -> (id: String, key: String) {
        let username = "sibling-\(UUID().uuidString.prefix(8))"
        let account = try await call(
            .post, "/sub-accounts", key: tenant.resellerKey,
            body: ["name": name, "username": username, "password": "sup3r secret"])
        try #require(account.status == .created, "\(account.json)")
        let id = try #require(account.string("id"))
        let key = try await call(.post, "/sub-accounts/\(id)/api-keys", key: tenant.resellerKey, body: ["name": "app"])
        return (id, try #require(key.string("secret")))
    }

    func count(_ table: String) async throws -> Int {
        try await pool.query("SELECT count(*) FROM \(unescaped: table)").first(as: Int.self) ?? 0
    }

    func expand(_ subAccountID: String, _ name: String, limit: Int = 10_000) async throws -> GroupExpansion {
        // Inside a transaction, as the send path will call it.
        try await pool.withTransaction { connection in
            try await GroupRepository.expand(
                subAccountID: UUID(uuidString: subAccountID)!, groupName: name, limit: limit, on: connection)
        }
    }
}

extension Reply {
    /// The problem's field errors with their gateway codes.
    var fieldErrorCodes: [String: Int] {
        var codes: [String: Int] = [:]
        for error in json["errors"] as? [[String: Any]] ?? [] {
            if let field = error["field"] as? String, let code = error["gatewayCode"] as? Int { codes[field] = code }
        }
        return codes
    }
}

@Suite(.timeLimit(.minutes(3))) struct ContactTests {
    // MARK: - Contacts

    @Test func contactsAreCreatedWithNormalisedNumbersReadChangedAndDeleted() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Book")
            let base = "/sub-accounts/\(tenant.subAccountID)/contacts"
            let created = try await api.call(
                .post, base, key: tenant.subAccountKey,
                body: ["number": "+31 6 1234-5678", "name": " Anna de Vries ", "reference": "CRM-1"])
            #expect(created.status == .created, "\(created.json)")
            #expect(
                created.string("number") == "31612345678" && created.string("name") == "Anna de Vries"
                    && created.string("reference") == "CRM-1")
            #expect(
                created.string("subAccountId") == tenant.subAccountID
                    && created.string("resellerId") == tenant.resellerID)
            #expect((created["groups"] as? [Any])?.isEmpty == true)
            let anna = try #require(created.string("id"))
            // Its reseller may add contacts for it too.
            let john = try await api.contact(
                tenant.subAccountID, "0044 7700 900123", name: "John Smith", key: tenant.resellerKey)

            // Numbers: 106 for anything that is not an international number, 103 when empty; the field is named.
            for (number, code) in [
                ("0612345678", 106), ("abc", 106), ("+31 6 1234 567a", 106), ("123456", 106), ("3161234567890123", 106),
                ("", 103),
            ] {
                let reply = try await api.call(.post, base, key: tenant.subAccountKey, body: ["number": number])
                #expect(
                    reply.status == .unprocessableContent && reply.string("code") == "validation_failed", "\(number)")
                #expect(reply.fieldErrorCodes == ["/number": code], "\(number): \(reply.json)")
            }
            let long = try await api.call(
                .post, base, key: tenant.subAccountKey,
                body: ["number": "31612345670", "name": String(repeating: "x", count: 201), "reference": "\u{7}"])
            #expect(long.fieldErrors.map(\.field) == ["/name", "/reference"])
            #expect(
                try await api.call(
                    .post, base, key: tenant.subAccountKey, body: ["number": "31612345670", "colour": "red"]
                ).status == .badRequest)
            // The same number, however it is written, is a conflict.
            let twice = try await api.call(.post, base, key: tenant.subAccountKey, body: ["number": "0031 612345678"])
            #expect(twice.status == .conflict && twice.string("code") == "conflict")

            let read = try await api.call(.get, "\(base)/\(anna)", key: tenant.resellerKey)
            #expect(read.status == .ok && read.string("number") == "31612345678")
            var patched = try await api.call(
                .patch, "\(base)/\(anna)", key: tenant.subAccountKey, body: ["name": "Anna B", "reference": ""])
            #expect(
                patched.status == .ok && patched.string("name") == "Anna B" && patched["reference"] == nil,
                "\(patched.json)")
            patched = try await api.call(
                .patch, "\(base)/\(anna)", key: tenant.subAccountKey, body: ["number": "+44 7700 900123"])
            #expect(patched.status == .conflict)
            patched = try await api.call(.patch, "\(base)/\(anna)", key: tenant.subAccountKey, body: ["number": "06"])
            #expect(patched.fieldErrorCodes == ["/number": 106])
            patched = try await api.call(
                .patch, "\(base)/\(anna)", key: tenant.resellerKey, body: ["number": "+31 6 11111111"])
            #expect(patched.string("number") == "31611111111" && patched.string("name") == "Anna B")

            // Listing: filters and pages.
            #expect(
                try await api.call(.get, "\(base)?name=ANNA", key: tenant.subAccountKey).items.map {
                    $0["id"] as? String
                } == [anna])
            #expect(
                try await api.call(.get, "\(base)?number=%2B44%207700", key: tenant.subAccountKey).items.map {
                    $0["id"] as? String
                } == [john])
            #expect(
                try await api.call(.get, "\(base)?number=316abc", key: tenant.subAccountKey).fieldErrors.map(\.field)
                    == ["number"])
            #expect(
                try await api.call(.get, "\(base)?groupId=nope", key: tenant.subAccountKey).fieldErrors.map(\.field)
                    == ["groupId"])
            let first = try await api.call(.get, "\(base)?limit=1", key: tenant.subAccountKey)
            let cursor = try #require(first.string("nextCursor"))
            let second = try await api.call(.get, "\(base)?limit=1&cursor=\(cursor)", key: tenant.subAccountKey)
            #expect(
                Set((first.items + second.items).compactMap { $0["id"] as? String }) == [anna, john]
                    && second["nextCursor"] == nil)

            #expect(try await api.call(.delete, "\(base)/\(anna)", key: tenant.subAccountKey).status == .noContent)
            #expect(try await api.call(.get, "\(base)/\(anna)", key: tenant.subAccountKey).status == .notFound)
            #expect(try await api.call(.delete, "\(base)/\(anna)", key: tenant.subAccountKey).status == .notFound)
            #expect(try await api.call(.get, "\(base)/not-a-uuid", key: tenant.subAccountKey).status == .notFound)
            // The number is free again.
            #expect(
                try await api.call(.post, base, key: tenant.subAccountKey, body: ["number": "31611111111"]).status
                    == .created)
        }
    }

    // MARK: - Groups

    @Test func groupsHaveUniqueNamesAndMembershipChangesAreBulkAndIdempotent() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Groups")
            let key = tenant.subAccountKey
            let s = "/sub-accounts/\(tenant.subAccountID)"
            let anna = try await api.contact(tenant.subAccountID, "31612345678", name: "Anna", key: key)
            let john = try await api.contact(tenant.subAccountID, "447700900123", name: "John", key: key)
            let created = try await api.call(.post, "\(s)/contact-groups", key: key, body: ["name": "Customers"])
            #expect(created.status == .created && created["memberCount"] as? Int == 0)
            let customers = try #require(created.string("id"))
            let staff = try await api.group(tenant.subAccountID, "Staff", key: tenant.resellerKey)

            // Names: unique case-insensitively, 1–100 characters, no ';'.
            #expect(
                try await api.call(.post, "\(s)/contact-groups", key: key, body: ["name": " CUSTOMERS "]).status
                    == .conflict)
            for name in ["", "  ", "a;b", String(repeating: "g", count: 101), "tab\there"] {
                let reply = try await api.call(.post, "\(s)/contact-groups", key: key, body: ["name": name])
                #expect(
                    reply.status == .unprocessableContent && reply.fieldErrors.map(\.field) == ["/name"],
                    "\(name.debugDescription): \(reply.json)")
            }
            #expect(
                try await api.call(
                    .post, "\(s)/contact-groups", key: key, body: ["name": String(repeating: "g", count: 100)]
                ).status == .created)

            // Adding: bulk, idempotent, all or nothing.
            let members = "\(s)/contact-groups/\(customers)/members"
            var reply = try await api.call(.post, members, key: key, body: ["contactIds": [anna, john, anna]])
            #expect(reply.status == .ok, "\(reply.json)")
            #expect(Set(reply["contactIds"] as? [String] ?? []) == [anna, john])
            #expect((reply["group"] as? [String: Any])?["memberCount"] as? Int == 2)
            reply = try await api.call(.post, members, key: tenant.resellerKey, body: ["contactIds": [anna]])
            #expect(reply.status == .ok && (reply["contactIds"] as? [String])?.isEmpty == true)
            #expect((reply["group"] as? [String: Any])?["memberCount"] as? Int == 2)
            let unknown = UUID().uuidString.lowercased()
            reply = try await api.call(
                .post, "\(s)/contact-groups/\(staff)/members", key: key, body: ["contactIds": [anna, unknown]])
            #expect(reply.status == .unprocessableContent && reply.fieldErrors.map(\.field) == ["/contactIds/1"])
            #expect(try await api.call(.get, "\(s)/contact-groups/\(staff)", key: key)["memberCount"] as? Int == 0)
            reply = try await api.call(.post, members, key: key, body: ["contactIds": ["nope", anna]])
            #expect(reply.fieldErrors.map(\.field) == ["/contactIds/0"])
            #expect(
                try await api.call(.post, members, key: key, body: ["contactIds": []]).fieldErrors.map(\.field) == [
                    "/contactIds"
                ])
            let tooMany = (0...ContactRules.maximumMembershipBatch).map { _ in anna }
            #expect(
                try await api.call(.post, members, key: key, body: ["contactIds": tooMany]).fieldErrors.map(\.field)
                    == ["/contactIds"])

            // Reading: members, the contact filter, and each contact's groups.
            #expect(
                Set(try await api.call(.get, members, key: key).items.compactMap { $0["id"] as? String }) == [
                    anna, john,
                ])
            #expect(
                Set(
                    try await api.call(.get, "\(s)/contacts?groupId=\(customers)", key: key).items.compactMap {
                        $0["id"] as? String
                    }) == [anna, john])
            #expect(try await api.call(.get, "\(s)/contacts?groupId=\(staff)", key: key).items.isEmpty)
            #expect(
                try await api.call(
                    .post, "\(s)/contact-groups/\(staff)/members", key: key, body: ["contactIds": [anna]]
                ).status == .ok)
            let annaRead = try await api.call(.get, "\(s)/contacts/\(anna)", key: key)
            let annaGroups = try #require(annaRead["groups"] as? [[String: Any]])
            #expect(
                annaGroups.map { $0["name"] as? String } == ["Customers", "Staff"]
                    && annaGroups.map { $0["id"] as? String } == [customers, staff])
            let listed = try await api.call(.get, "\(s)/contact-groups?name=CUST", key: key)
            #expect(
                listed.items.map { $0["id"] as? String } == [customers]
                    && listed.items.first?["memberCount"] as? Int == 2)

            // Renaming: to another group's name (in any case) is a conflict, to its own in another case is fine.
            #expect(
                try await api.call(.patch, "\(s)/contact-groups/\(customers)", key: key, body: ["name": "staff"]).status
                    == .conflict)
            reply = try await api.call(
                .patch, "\(s)/contact-groups/\(customers)", key: key, body: ["name": "CUSTOMERS"])
            #expect(reply.status == .ok && reply.string("name") == "CUSTOMERS")
            #expect(
                try await api.call(.patch, "\(s)/contact-groups/\(customers)", key: key, body: ["name": ""]).fieldErrors
                    .map(\.field) == ["/name"])
            #expect(
                try await api.call(.patch, "\(s)/contact-groups/\(customers)", key: key, body: [:]).status
                    == .badRequest)

            // Removing: ids that are not members are ignored.
            reply = try await api.call(.post, "\(members)/remove", key: key, body: ["contactIds": [john, unknown]])
            #expect(reply.status == .ok && reply["contactIds"] as? [String] == [john])
            #expect((reply["group"] as? [String: Any])?["memberCount"] as? Int == 1)
            reply = try await api.call(.post, "\(members)/remove", key: key, body: ["contactIds": [john]])
            #expect(reply.status == .ok && (reply["contactIds"] as? [String])?.isEmpty == true)

            // Deleting a contact removes its memberships; deleting a group keeps its contacts.
            #expect(try await api.call(.delete, "\(s)/contacts/\(anna)", key: key).status == .noContent)
            #expect(try await api.call(.get, "\(s)/contact-groups/\(staff)", key: key)["memberCount"] as? Int == 0)
            #expect(try await api.call(.post, members, key: key, body: ["contactIds": [john]]).status == .ok)
            #expect(try await api.call(.delete, "\(s)/contact-groups/\(customers)", key: key).status == .noContent)
            #expect(try await api.call(.get, "\(s)/contact-groups/\(customers)", key: key).status == .notFound)
            #expect(try await api.call(.get, members, key: key).status == .notFound)
            let johnRead = try await api.call(.get, "\(s)/contacts/\(john)", key: key)
            #expect(johnRead.status == .ok && (johnRead["groups"] as? [Any])?.isEmpty == true)
            #expect(try await api.count("contact_group_member") == 0)
            #expect(try await api.count("contact") == 1)
        }
    }

    // MARK: - Access

    @Test func theOwnerAndItsResellerWriteTheAdminReadsEveryoneElseGets404() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Owner")
            let other = try await api.onboard("Other")
            let sibling = try await api.sibling(of: tenant)
            let contact = try await api.contact(tenant.subAccountID, "31612345678", key: tenant.subAccountKey)
            let group = try await api.group(tenant.subAccountID, "Customers", key: tenant.subAccountKey)
            let s = "/sub-accounts/\(tenant.subAccountID)"
            let ids: [String: Any] = ["contactIds": [contact]]
            // (method, path, body, expected for admin, reseller, owner); a sibling sub-account and another tenant get 404 everywhere.
            let matrix:
                [(
                    HTTPRequest.Method, String, [String: Any]?, HTTPResponse.Status, HTTPResponse.Status,
                    HTTPResponse.Status
                )] = [
                    (.get, "\(s)/contacts", nil, .ok, .ok, .ok),
                    (.get, "\(s)/contacts/\(contact)", nil, .ok, .ok, .ok),
                    (.get, "\(s)/contact-groups", nil, .ok, .ok, .ok),
                    (.get, "\(s)/contact-groups/\(group)", nil, .ok, .ok, .ok),
                    (.get, "\(s)/contact-groups/\(group)/members", nil, .ok, .ok, .ok),
                    (.post, "\(s)/contacts", ["number": "31600000001"], .forbidden, .created, .notFound),
                    (.post, "\(s)/contacts", ["number": "31600000002"], .forbidden, .notFound, .created),
                    (.patch, "\(s)/contacts/\(contact)", ["name": "Anna"], .forbidden, .ok, .ok),
                    (.post, "\(s)/contact-groups", ["name": "A"], .forbidden, .created, .notFound),
                    (.post, "\(s)/contact-groups", ["name": "B"], .forbidden, .notFound, .created),
                    (.patch, "\(s)/contact-groups/\(group)", ["name": "Customers 2"], .forbidden, .ok, .ok),
                    (.post, "\(s)/contact-groups/\(group)/members", ids, .forbidden, .ok, .ok),
                    (.post, "\(s)/contact-groups/\(group)/members/remove", ids, .forbidden, .ok, .ok),
                ]
            // The third column's .notFound marks a row only one writer runs (the other would conflict): skip it there.
            for (method, path, body, admin, reseller, owner) in matrix {
                #expect(
                    try await api.call(method, path, key: nil, body: body).status == .unauthorized, "\(method) \(path)")
                for (who, key) in [
                    ("sibling", sibling.key), ("other reseller", other.resellerKey),
                    ("other sub-account", other.subAccountKey),
                ] {
                    let reply = try await api.call(method, path, key: key, body: body)
                    #expect(
                        reply.status == .notFound && reply.string("code") == "not_found" && reply["id"] == nil
                            && reply["items"] == nil, "\(who) \(method) \(path): \(reply.json)")
                }
                for (role, key, expected) in [
                    ("admin", api.adminKey, admin), ("reseller", tenant.resellerKey, reseller),
                    ("owner", tenant.subAccountKey, owner),
                ]
                where expected != .notFound {
                    let reply = try await api.call(method, path, key: key, body: body)
                    #expect(reply.status == expected, "\(role) \(method) \(path): \(reply.json)")
                    if expected == .forbidden { #expect(reply.string("code") == "forbidden") }
                }
            }
            // A contact or group id under another sub-account's path is 404, even to the reseller that sees both.
            let t = "/sub-accounts/\(sibling.id)"
            for (method, path, body) in [
                (HTTPRequest.Method.get, "\(t)/contacts/\(contact)", nil as [String: Any]?),
                (.patch, "\(t)/contacts/\(contact)", ["name": "x"]),
                (.delete, "\(t)/contacts/\(contact)", nil), (.get, "\(t)/contact-groups/\(group)", nil),
                (.patch, "\(t)/contact-groups/\(group)", ["name": "x"]), (.delete, "\(t)/contact-groups/\(group)", nil),
                (.get, "\(t)/contact-groups/\(group)/members", nil),
                (.post, "\(t)/contact-groups/\(group)/members", ids),
            ] {
                #expect(
                    try await api.call(method, path, key: tenant.resellerKey, body: body).status == .notFound,
                    "\(method) \(path)")
            }
            // …and the sibling cannot put the tenant's contact into its own group.
            let siblingGroup = try await api.group(sibling.id, "Mine", key: sibling.key)
            let borrowed = try await api.call(
                .post, "\(t)/contact-groups/\(siblingGroup)/members", key: sibling.key, body: ids)
            #expect(borrowed.status == .unprocessableContent && borrowed.fieldErrors.map(\.field) == ["/contactIds/0"])
            // The schema refuses such a link as well, whatever the code above it does.
            let crossLink = await #expect(throws: PostgresError.self) {
                try await api.pool.query(
                    """
                    INSERT INTO contact_group_member (reseller_id, sub_account_id, group_id, contact_id)
                    VALUES (\(UUID(uuidString: tenant.resellerID)!), \(UUID(uuidString: sibling.id)!), \(UUID(uuidString: siblingGroup)!), \(UUID(uuidString: contact)!))
                    """)
            }
            #expect(crossLink?.isForeignKeyViolation == true)
            // Nothing of the tenant in anyone else's lists, nor in their expansions.
            #expect(try await api.call(.get, "\(t)/contacts", key: sibling.key).items.isEmpty)
            #expect(
                try await api.call(.get, "\(t)/contact-groups", key: sibling.key).items.map { $0["id"] as? String } == [
                    siblingGroup
                ])
            #expect(try await api.expand(sibling.id, "Customers 2") == .notFound)
            #expect(try await api.expand(tenant.subAccountID, "customers 2") == .empty)
            #expect(
                try await api.call(.get, "\(s)/contacts/\(contact)", key: tenant.subAccountKey).string("name") == "Anna"
            )

            // A closed sub-account's address book can be read but no longer changed.
            #expect(try await api.call(.post, "\(t)/close", key: tenant.resellerKey, body: [:]).status == .ok)
            #expect(
                try await api.call(.post, "\(t)/contacts", key: tenant.resellerKey, body: ["number": "31600000009"])
                    .status == .conflict)
            #expect(try await api.call(.get, "\(t)/contact-groups", key: tenant.resellerKey).items.count == 1)
        }
    }

    // MARK: - CSV import

    @Test func csvImportIsAllOrNothingWithAnErrorPerLine() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Import")
            let path = "/sub-accounts/\(tenant.subAccountID)/contact-imports"
            let auditBefore = try await api.auditCount()
            let bad = try await api.call(
                .post, path, key: tenant.subAccountKey,
                csv: """
                    number,name,groups
                    +31 6 12345678,Anna,Customers
                    0612345678,Bert,Customers

                    0031612345678,Anna again,
                    447700900123,\(String(repeating: "n", count: 201)),
                    447700900124,Carl,Ok;\(String(repeating: "g", count: 101))
                    447700900125,Dora
                    ,Eve,
                    "447700900126,Fred,
                    447700900127,"Gina" x,
                    """)
            #expect(bad.status == .unprocessableContent)
            #expect(
                bad.fieldErrors.map(\.field) == [
                    "line 3: number", "line 5: number", "line 6: name", "line 7: groups", "line 8", "line 9: number",
                    "line 10", "line 11",
                ], "\(bad.json)")
            #expect(bad.fieldError("line 5: number") == "31612345678 is already on line 2")
            #expect(bad.fieldErrorCodes == ["line 3: number": 106, "line 9: number": 103])
            let stored = [try await api.count("contact"), try await api.count("contact_group")]
            #expect(stored == [0, 0])
            #expect(try await api.auditCount() == auditBefore)

            let header = try await api.call(.post, path, key: tenant.subAccountKey, csv: "name,groups\nAnna,x\n")
            #expect(
                header.fieldErrors.map(\.field) == ["line 1: header"]
                    && header.fieldError("line 1: header")?.contains("column number is missing") == true)
            #expect(
                try await api.call(.post, path, key: tenant.subAccountKey, csv: "number;name\n31612345678;Anna\n")
                    .fieldErrors.map(\.field) == ["line 1: header"])
            #expect(
                try await api.call(.post, path, key: tenant.subAccountKey, csv: "number,name\n\n").fieldError("file")
                    == "the file has no contacts")
            #expect(
                try await api.call(.post, path, key: tenant.subAccountKey, csv: "").fieldErrors.map(\.field) == [
                    "line 1: header"
                ])
            let huge = String(
                repeating: "31612345678,Somebody with a long name\n", count: ContactCSV.maximumBytes / 36 + 10)
            let tooLarge = try await api.call(.post, path, key: tenant.subAccountKey, csv: "number,name\n" + huge)
            #expect(tooLarge.status == .contentTooLarge && tooLarge.string("code") == "payload_too_large")
            #expect(
                try await api.call(.post, path, key: tenant.subAccountKey, body: ["number": "31612345678"]).status
                    == .unsupportedMediaType)
            #expect(try await api.auditCount() == auditBefore)

            // A good file: BOM, CRLF, quotes, any column order; groups created once, matched case-insensitively.
            let existing = try await api.group(tenant.subAccountID, "customers", key: tenant.subAccountKey)
            let good = try await api.call(
                .post, path, key: tenant.resellerKey,
                csv:
                    "\u{FEFF}Groups,Number,Name,Reference\r\n\"Customers;VIP\",+31 6 12345678,\"de Vries, Anna\",A-1\r\n\r\n VIP ; vip;Staff , 0044 7700 900123 ,John,\r\n,31687654321,,\r\n",
                contentType: "text/csv; charset=utf-8")
            #expect(good.status == .ok, "\(good.json)")
            #expect(
                good["contacts"] as? Int == 3 && good["created"] as? Int == 3 && good["updated"] as? Int == 0
                    && good["unchanged"] as? Int == 0)
            #expect(
                good["groupsCreated"] as? Int == 2 && good["membershipsAdded"] as? Int == 4
                    && good.string("onExisting") == "skip")
            let groups = try await api.call(
                .get, "/sub-accounts/\(tenant.subAccountID)/contact-groups?limit=200", key: tenant.subAccountKey
            ).items
            #expect(Set(groups.compactMap { $0["name"] as? String }) == ["customers", "VIP", "Staff"])
            #expect(groups.first { $0["id"] as? String == existing }?["memberCount"] as? Int == 1)
            let anna = try await api.call(
                .get, "/sub-accounts/\(tenant.subAccountID)/contacts?number=31612345678", key: tenant.subAccountKey
            ).items.first
            #expect(anna?["name"] as? String == "de Vries, Anna" && anna?["reference"] as? String == "A-1")
            #expect(
                (anna?["groups"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["customers", "VIP"])
            #expect(
                try await api.expand(tenant.subAccountID, "vip")
                    == .members([try PhoneNumber(parsing: "31612345678"), try PhoneNumber(parsing: "447700900123")]))
            #expect(try await api.auditCount() == auditBefore + 2)
            #expect(try await api.auditCount(action: "contact.import") == 1)
        }
    }

    @Test func csvImportSkipsOrUpdatesNumbersAlreadyPresent() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Again")
            let key = tenant.subAccountKey
            let s = "/sub-accounts/\(tenant.subAccountID)"
            let old = try await api.call(
                .post, "\(s)/contacts", key: key, body: ["number": "31612345678", "name": "Old", "reference": "R1"])
            let oldID = try #require(old.string("id"))
            let file = "number,name,groups\n31612345678,New,VIP\n447700900123,John,VIP\n"

            // skip (the default): the existing contact stays exactly as it was, groups included.
            var reply = try await api.call(.post, "\(s)/contact-imports", key: key, csv: file)
            #expect(reply.status == .ok, "\(reply.json)")
            #expect(reply["created"] as? Int == 1 && reply["unchanged"] as? Int == 1 && reply["updated"] as? Int == 0)
            #expect(reply["groupsCreated"] as? Int == 1 && reply["membershipsAdded"] as? Int == 1)
            var read = try await api.call(.get, "\(s)/contacts/\(oldID)", key: key)
            #expect(
                read.string("name") == "Old" && read.string("reference") == "R1"
                    && (read["groups"] as? [Any])?.isEmpty == true)

            // The same file again changes nothing and records nothing.
            let audit = try await api.auditCount()
            reply = try await api.call(.post, "\(s)/contact-imports?onExisting=skip", key: key, csv: file)
            #expect(
                reply["created"] as? Int == 0 && reply["unchanged"] as? Int == 2
                    && reply["membershipsAdded"] as? Int == 0)
            #expect(try await api.auditCount() == audit)

            // update: the file's columns replace the fields (reference is not in the file: kept), groups are added.
            reply = try await api.call(.post, "\(s)/contact-imports?onExisting=update", key: key, csv: file)
            #expect(reply.status == .ok && reply.string("onExisting") == "update")
            #expect(reply["created"] as? Int == 0 && reply["updated"] as? Int == 1 && reply["unchanged"] as? Int == 1)
            #expect(reply["groupsCreated"] as? Int == 0 && reply["membershipsAdded"] as? Int == 1)
            read = try await api.call(.get, "\(s)/contacts/\(oldID)", key: key)
            #expect(read.string("name") == "New" && read.string("reference") == "R1")
            #expect((read["groups"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["VIP"])
            #expect(try await api.auditCount() == audit + 1)

            // An empty cell of a column the file has clears the field; memberships are never removed.
            reply = try await api.call(
                .post, "\(s)/contact-imports?onExisting=update", key: key, csv: "number,reference\n31612345678,\n")
            #expect(reply["updated"] as? Int == 1)
            read = try await api.call(.get, "\(s)/contacts/\(oldID)", key: key)
            #expect(read.string("name") == "New" && read["reference"] == nil && (read["groups"] as? [Any])?.count == 1)
            #expect(
                try await api.call(.post, "\(s)/contact-imports?onExisting=replace", key: key, csv: file).status
                    == .badRequest)
            #expect(try await api.count("contact") == 2)
        }
    }

    // MARK: - The send path's hook

    @Test func groupExpansionFindsGroupsCaseInsensitivelyAndTellsNotFoundFromEmpty() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Expand")
            let other = try await api.onboard("Elsewhere")
            let key = tenant.subAccountKey
            let s = "/sub-accounts/\(tenant.subAccountID)"
            let customers = try await api.group(tenant.subAccountID, "Customers", key: key)
            _ = try await api.group(tenant.subAccountID, "Empty", key: key)
            let ids = [
                try await api.contact(tenant.subAccountID, "447700900123", key: key),
                try await api.contact(tenant.subAccountID, "+31 6 12345678", key: key),
            ]
            _ = try await api.contact(tenant.subAccountID, "31699999999", key: key)
            #expect(
                try await api.call(
                    .post, "\(s)/contact-groups/\(customers)/members", key: key, body: ["contactIds": ids]
                ).status == .ok)
            // The other tenant has a group of the same name with another member.
            let theirs = try await api.group(other.subAccountID, "customers", key: other.subAccountKey)
            let stranger = try await api.contact(other.subAccountID, "4915112345678", key: other.subAccountKey)
            _ = try await api.call(
                .post, "/sub-accounts/\(other.subAccountID)/contact-groups/\(theirs)/members", key: other.subAccountKey,
                body: ["contactIds": [stranger]])

            let expected = GroupExpansion.members([
                try PhoneNumber(parsing: "31612345678"), try PhoneNumber(parsing: "447700900123"),
            ])
            for name in ["Customers", "customers", "CUSTOMERS", " Customers "] {
                #expect(try await api.expand(tenant.subAccountID, name) == expected, "\(name)")
            }
            #expect(
                try await api.expand(other.subAccountID, "Customers")
                    == .members([try PhoneNumber(parsing: "4915112345678")]))
            let empty = try await api.expand(tenant.subAccountID, "empty")
            #expect(empty == .empty && empty.gatewayCode?.rawValue == 126)
            let missing = try await api.expand(tenant.subAccountID, "Customer")
            #expect(missing == .notFound && missing.gatewayCode?.rawValue == 125)
            #expect(try await api.expand(tenant.subAccountID, "") == .notFound)
            #expect(try await api.expand(UUID().uuidString, "Customers") == .notFound)
            #expect(expected.gatewayCode == nil)

            // Inside a transaction it sees that transaction's own changes, as a send accepted with them would.
            let seen = try await api.pool.withTransaction { connection in
                try await connection.query(
                    "DELETE FROM contact_group_member WHERE group_id = \(UUID(uuidString: customers)!)")
                return try await GroupRepository.expand(
                    subAccountID: UUID(uuidString: tenant.subAccountID)!, groupName: "customers", limit: 10,
                    on: connection)
            }
            #expect(seen == .empty)
            #expect(try await api.expand(tenant.subAccountID, "customers") == .empty)
        }
    }

    // MARK: - Audit

    @Test func everyMutationWritesOneAuditRowAndAFailedOneNone() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Audit")
            let key = tenant.subAccountKey
            let s = "/sub-accounts/\(tenant.subAccountID)"
            var expected = try await api.auditCount()
            func step(
                _ method: HTTPRequest.Method, _ path: String, _ body: [String: Any]?, _ status: HTTPResponse.Status,
                writes action: String?
            ) async throws -> Reply {
                let reply = try await api.call(method, path, key: key, body: body)
                #expect(reply.status == status, "\(method) \(path): \(reply.json)")
                if action != nil { expected += 1 }
                #expect(try await api.auditCount() == expected, "\(method) \(path)")
                if let action {
                    let last = try await api.pool.query("SELECT action FROM audit_log ORDER BY id DESC LIMIT 1").first(
                        as: String.self)
                    #expect(last == action)
                }
                return reply
            }
            let anna = try #require(
                try await step(.post, "\(s)/contacts", ["number": "31612345678"], .created, writes: "contact.create")
                    .string("id"))
            _ = try await step(.post, "\(s)/contacts", ["number": "+31612345678"], .conflict, writes: nil)
            _ = try await step(.post, "\(s)/contacts", ["number": "06"], .unprocessableContent, writes: nil)
            let john = try #require(
                try await step(.post, "\(s)/contacts", ["number": "447700900123"], .created, writes: "contact.create")
                    .string("id"))
            _ = try await step(.patch, "\(s)/contacts/\(anna)", ["name": "Anna"], .ok, writes: "contact.update")
            _ = try await step(.patch, "\(s)/contacts/\(anna)", ["number": "447700900123"], .conflict, writes: nil)
            let group = try #require(
                try await step(.post, "\(s)/contact-groups", ["name": "VIP"], .created, writes: "contact_group.create")
                    .string("id"))
            _ = try await step(.post, "\(s)/contact-groups", ["name": "vip"], .conflict, writes: nil)
            _ = try await step(
                .post, "\(s)/contact-groups/\(group)/members", ["contactIds": [anna, john]], .ok,
                writes: "contact_group.add_members")
            _ = try await step(.post, "\(s)/contact-groups/\(group)/members", ["contactIds": [anna]], .ok, writes: nil)
            _ = try await step(
                .post, "\(s)/contact-groups/\(group)/members", ["contactIds": [UUID().uuidString]],
                .unprocessableContent, writes: nil)
            _ = try await step(
                .post, "\(s)/contact-groups/\(group)/members/remove", ["contactIds": [john]], .ok,
                writes: "contact_group.remove_members")
            _ = try await step(
                .post, "\(s)/contact-groups/\(group)/members/remove", ["contactIds": [john]], .ok, writes: nil)
            _ = try await step(
                .patch, "\(s)/contact-groups/\(group)", ["name": "Gold"], .ok, writes: "contact_group.rename")
            _ = try await step(
                .patch, "\(s)/contact-groups/\(group)", ["name": "a;b"], .unprocessableContent, writes: nil)
            _ = try await step(.delete, "\(s)/contacts/\(john)", nil, .noContent, writes: "contact.delete")
            _ = try await step(.delete, "\(s)/contacts/\(john)", nil, .notFound, writes: nil)
            _ = try await step(.delete, "\(s)/contact-groups/\(group)", nil, .noContent, writes: "contact_group.delete")
            _ = try await step(.delete, "\(s)/contact-groups/\(group)", nil, .notFound, writes: nil)

            // The entries name the actor, the tenant and the target; the reseller reads them in its audit log.
            let log = try await api.call(.get, "/audit-log?limit=200", key: tenant.resellerKey).items
            let deleted = try #require(log.first { $0["action"] as? String == "contact.delete" })
            #expect(deleted["targetId"] as? String == john && deleted["actorRole"] as? String == "sub_account")
            #expect(
                (deleted["before"] as? [String: Any])?["number"] as? String == "447700900123" && deleted["after"] == nil
            )
            let added = try #require(log.first { $0["action"] as? String == "contact_group.add_members" })
            #expect(added["targetId"] as? String == group && added["resellerId"] as? String == tenant.resellerID)
            // (UUIDs inside audit payloads are Foundation's encoding, upper case, like every other record's.)
            #expect(
                Set((((added["after"] as? [String: Any])?["contact_ids"] as? [String]) ?? []).map { $0.lowercased() })
                    == [anna, john])
            // The admin's refused attempt writes nothing either.
            let refused = try await api.call(.post, "\(s)/contacts", key: api.adminKey, body: ["number": "31600000000"])
            let afterRefusal = try await api.auditCount()
            #expect(refused.status == .forbidden && afterRefusal == expected)
        }
    }

    // MARK: - The file format, without a database

    @Test func contactLinesAreValidatedOneByOne() throws {
        var collector = ContactImportCollector()
        collector.read(Array("reference,NUMBER,groups\nr1, +31 6 12345678 , a ; A ;; b \n,0044 20 7946 0000,\n".utf8))
        let rows = try collector.result()
        #expect(rows.map(\.number.digits) == ["31612345678", "442079460000"])
        #expect(rows[0].groups == ["a", "b"] && rows[0].reference == "r1" && rows[0].name == nil && rows[0].line == 2)
        #expect(rows[1].groups.isEmpty && rows[1].reference == nil)
        #expect(collector.columns == ["number", "reference", "groups"])

        var many = ContactImportCollector()
        many.read(Array(("number\n" + (0..<700).map { "x\($0)" }.joined(separator: "\n")).utf8))
        #expect(many.errors.count == ContactImportCollector.maximumReportedErrors)
        #expect(throws: DomainError.self) { try many.result() }
    }
}
