import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import ResellerAPI
import ResellerApp
import Testing
import Webhooks

/// Request sizes, the username check of `POST /sub-accounts`, slow password checks and the contract's edges, over a
/// real socket (issue 16).
@Suite(.timeLimit(.minutes(5))) struct HTTPHardeningTests {
    /// Chunks of spaces (valid JSON whitespace, so a body read to its end is merely not a document); after the last,
    /// optionally hangs instead of ending, as a client that declared more than it sends.
    struct Chunks: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        var count: Int
        var size: Int = 64 << 10
        var hangAtTheEnd = false

        struct AsyncIterator: AsyncIteratorProtocol {
            var left: Int
            let size: Int
            let hang: Bool

            mutating func next() async throws -> ByteBuffer? {
                guard left > 0 else {
                    if hang { try await Task.sleep(for: .seconds(300)) }
                    return nil
                }
                left -= 1
                return ByteBuffer(repeating: UInt8(ascii: " "), count: size)
            }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(left: count, size: size, hang: hangAtTheEnd) }
    }

    struct Answer {
        var status: HTTPResponse.Status
        var headers: [(String, String)]
        var text: String
        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
        }
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    }

    /// Sends `body` (declared `length` bytes long, or chunked) with AsyncHTTPClient; the answer must come within a
    /// generous deadline.
    static func send(
        _ api: TenancyHarness, _ method: String, _ path: String, key: String?, contentType: String?,
        body: Chunks, length: Int64?
    ) async throws -> Answer {
        let port = api.client.port
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .init(rawValue: method)
        if let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        request.body = .stream(body, length: length.map { .known($0) } ?? .unknown)
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let buffer = try await response.body.collect(upTo: 1 << 20)
        return Answer(
            status: HTTPResponse.Status(code: Int(response.status.code)),
            headers: response.headers.map { ($0.name, $0.value) }, text: String(buffer: buffer))
    }

    // MARK: - Request size (2)

    @Test func aDeclaredLengthPastTheLimitIsRefusedBeforeTheBodyIsRead() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Sizes")
            // 64 MiB declared, 64 KiB sent, then nothing: only an answer from the header can come back.
            let json = try await Self.send(
                api, "POST", "/sub-accounts", key: tenant.resellerKey, contentType: "application/json",
                body: Chunks(count: 1, hangAtTheEnd: true), length: 64 << 20)
            #expect(json.status == .contentTooLarge, "\(json.text)")
            #expect(json.header("Content-Type") == "application/problem+json; charset=utf-8")
            #expect(json.json["code"] as? String == "payload_too_large")
            // A contacts file has its own, larger limit, refused the same way past it.
            let csv = try await Self.send(
                api, "POST", "/sub-accounts/\(tenant.subAccountID)/contact-imports", key: tenant.resellerKey,
                contentType: "text/csv", body: Chunks(count: 1, hangAtTheEnd: true), length: 9 << 20)
            #expect(csv.status == .contentTooLarge && csv.json["code"] as? String == "payload_too_large", "\(csv.text)")
            // The 1601-compatible endpoint answers in its own text.
            let form = try await Self.send(
                api, "POST", "/module/gateway.php", key: nil, contentType: "application/x-www-form-urlencoded",
                body: Chunks(count: 1, hangAtTheEnd: true), length: 64 << 20)
            #expect(form.status == .contentTooLarge, "\(form.text)")
            #expect(form.header("Content-Type") == "text/plain; charset=utf-8")
            #expect(form.text.contains("larger than"))
        }
    }

    @Test func aChunkedBodyIsRefusedOnceItGrowsPastTheLimit() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Chunks")
            // 16 MiB of whitespace without a length: refused at the JSON limit, not read to its end and decoded.
            let json = try await Self.send(
                api, "POST", "/sub-accounts", key: tenant.resellerKey, contentType: "application/json",
                body: Chunks(count: 256), length: nil)
            #expect(json.status == .contentTooLarge, "\(json.text)")
            #expect(json.json["code"] as? String == "payload_too_large")
            // Under the CSV limit but over the JSON one: a contacts file is read (and found to be no CSV).
            let csv = try await Self.send(
                api, "POST", "/sub-accounts/\(tenant.subAccountID)/contact-imports", key: tenant.resellerKey,
                contentType: "text/csv", body: Chunks(count: 80), length: nil)
            #expect(csv.status != .contentTooLarge, "\(csv.text)")
            let form = try await Self.send(
                api, "POST", "/module/gateway.php", key: nil, contentType: "application/x-www-form-urlencoded",
                body: Chunks(count: 40), length: nil)
            #expect(form.status == .contentTooLarge && form.text.contains("larger than"), "\(form.text)")
        }
    }

    // MARK: - Usernames (6)

    @Test func aTakenUsernameIsNamedOnlyToTheTenantThatHasIt() async throws {
        try await TenancyHarness.run { api in
            let alpha = try await api.onboard("Alpha")
            let beta = try await api.onboard("Beta")
            let foreign = try await api.call(
                .post, "/sub-accounts", key: beta.resellerKey,
                body: ["name": "Copy", "username": alpha.username, "password": "another secret"])
            #expect(foreign.status == .conflict)
            #expect(foreign.string("code") == "username_unavailable", "\(foreign.json)")
            let foreignDetail = foreign.string("detail") ?? ""
            #expect(!foreignDetail.contains(alpha.subAccountID) && !foreignDetail.contains(alpha.resellerID))
            // The same answer as for a name of its own tenant would be to anyone else: only the owner is told which.
            let own = try await api.call(
                .post, "/sub-accounts", key: alpha.resellerKey,
                body: ["name": "Copy", "username": alpha.username.uppercased(), "password": "another secret"])
            #expect(own.status == .conflict)
            #expect(own.string("code") == "username_taken", "\(own.json)")
            #expect(own.string("detail")?.contains(alpha.subAccountID) == true, "\(own.json)")
        }
    }

    @Test func creatingSubAccountsIsRateLimitedPerReseller() async throws {
        try await TenancyHarness.run { api in
            let alpha = try await api.onboard("Prober")
            let beta = try await api.onboard("Victim")
            var limited: Reply?
            for attempt in 0..<80 {
                let reply = try await api.call(
                    .post, "/sub-accounts", key: alpha.resellerKey,
                    body: ["name": "Probe \(attempt)", "username": beta.username, "password": "probe password"])
                if reply.status == .tooManyRequests {
                    limited = reply
                    break
                }
                #expect(reply.status == .conflict)
            }
            let refusal = try #require(limited, "80 probes in a row were all answered")
            #expect(refusal.string("code") == "rate_limited")
            #expect(Int(refusal.headers[.retryAfter] ?? "") ?? 0 >= 1)
            // Another reseller is not slowed down by it.
            let other = try await api.call(
                .post, "/sub-accounts", key: beta.resellerKey,
                body: [
                    "name": "Fine", "username": "victim-fine-\(UUID().uuidString.prefix(8))", "password": "x secret",
                ])
            #expect(other.status == .created)
        }
    }

    // MARK: - Slow password checks (10)

    @Test func aFloodOfWrongPasswordsDelaysNeitherAddressLookupsNorACorrectLogin() async throws {
        try await TenancyHarness.run(configure: {
            // Every wrong password costs a slow check: each from another address (through a trusted proxy), each for
            // a name no account can have (no database read), at a realistic cost.
            $0.trustedProxies = ["127.0.0.0/8"]
            $0.passwordIterations = 200_000
        }) { api in
            let tenant = try await api.onboard("Flooded")
            let port = api.client.port
            let flooders = 200
            let client = HTTPClient(
                eventLoopGroupProvider: .singleton,
                configuration: .init(
                    connectionPool: .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)))
            defer { _ = client.shutdown() }
            func login(_ user: String, _ password: String, from address: String) async throws -> Answer {
                var request = HTTPClientRequest(
                    url:
                        "http://127.0.0.1:\(port)/module/gateway.php?action=credits&klantuser=\(user)&klantpwd=\(password)"
                )
                request.headers.add(name: "X-Forwarded-For", value: address)
                let response = try await client.execute(request, timeout: .seconds(300))
                let body = try await response.body.collect(upTo: 1 << 16)
                return Answer(
                    status: HTTPResponse.Status(code: Int(response.status.code)),
                    headers: response.headers.map { ($0.name, $0.value) }, text: String(buffer: body))
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<flooders {
                    group.addTask {
                        _ = try await login(
                            "no%20such%20user%20\(index)", "wrong", from: "10.9.\(index / 250).\(index % 250)")
                    }
                }
                // Let the flood arrive first.
                try await Task.sleep(for: .milliseconds(500))
                let bound = Duration.seconds(10)
                let started = ContinuousClock.now
                _ = try await WebhookAddressGuard.resolve("localhost")
                let resolved = ContinuousClock.now - started
                #expect(resolved < bound, "resolving an address waited \(resolved) behind the flood")

                // A correct password is answered at once: checked, or refused as busy for the client to retry.
                let loginStarted = ContinuousClock.now
                let answer = try await login(tenant.username, "sup3r%20secret", from: "192.0.2.77")
                let answered = ContinuousClock.now - loginStarted
                #expect(answered < bound, "a correct login waited \(answered) behind the flood: \(answer.text)")
                #expect(
                    answer.text.hasPrefix("0") || answer.text.hasPrefix("ERROR 120"),
                    "\(answer.status) \(answer.text)")
                if answer.text.hasPrefix("ERROR 120") {
                    #expect(answer.status == .serviceUnavailable && answer.header("Retry-After") != nil)
                }
                try await group.waitForAll()
            }
            // Once the flood is over, the same login goes through.
            let after = try await login(tenant.username, "sup3r%20secret", from: "192.0.2.77")
            #expect(after.status == .ok && !after.text.hasPrefix("ERROR"), "\(after.text)")
        }
    }

    // MARK: - Found by contract fuzzing

    /// schemathesis found a usage report over centuries answered 500 when the statement timeout cut it short.
    @Test func aStatementCutShortByTheTimeoutIsAProblemNotA500() async throws {
        try await TenancyHarness.run(configure: { $0.databaseStatementTimeoutMilliseconds = 2_000 }) { api in
            let report = try await api.call(
                .get,
                "/reports/usage?from=0431-04-14T03:58:47Z&to=2026-12-07T05:12:46Z&timeZone=Europe/Amsterdam&groupBy=month,reseller",
                key: api.adminKey)
            // However long the report takes today: an answer, or the timeout said as such; never an opaque 500.
            #expect(report.status == .ok || report.status == .serviceUnavailable, "\(report.status) \(report.json)")
            if report.status == .serviceUnavailable {
                #expect(report.string("code") == "statement_timeout", "\(report.json)")
                #expect(report.headers[.contentType] == "application/problem+json; charset=utf-8")
            }
        }
    }

    // MARK: - The contract's edges (11)

    @Test func aPatchWithoutItsRequiredBodyIs400() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Patchy")
            for headers: HTTPFields in [[:], [.contentType: "application/json"]] {
                let reply = try await api.call(
                    .patch, "/sub-accounts/\(tenant.subAccountID)", key: tenant.resellerKey, headers: headers)
                #expect(reply.status == .badRequest, "\(headers): \(reply.json)")
                #expect(reply.headers[.contentType] == "application/problem+json; charset=utf-8")
            }
            // A POST whose body is required likewise; one whose body is optional still takes none.
            let block = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/block", key: tenant.resellerKey)
            #expect(block.status == .badRequest, "\(block.json)")
            let unblock = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/unblock", key: tenant.resellerKey)
            #expect(unblock.status == .ok || unblock.status == .conflict, "\(unblock.json)")
        }
    }

    @Test func nullIsRefusedWhereTheSchemaDoesNotAllowIt() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Nulls")
            let name = try await api.call(
                .patch, "/sub-accounts/\(tenant.subAccountID)", key: tenant.resellerKey,
                body: ["name": NSNull()])
            #expect(name.status == .badRequest, "\(name.json)")
            #expect(name.string("detail")?.contains("/name") == true, "\(name.json)")
            // Deep in a body too: an entry's optional status.
            let list = try await api.call(
                .post, "/price-lists", key: tenant.resellerKey, body: ["layer": "retail", "name": "retail"])
            let listID = try #require(list.string("id"), "\(list.json)")
            let nested = try await api.call(
                .post, "/price-lists/\(listID)/versions", key: tenant.resellerKey,
                body: ["entries": [["prefix": "31", "price": "0.0725", "status": NSNull()]]])
            #expect(nested.status == .badRequest, "\(nested.json)")
            #expect(nested.string("detail")?.contains("/entries/0/status") == true, "\(nested.json)")
            // Nothing changed.
            let account = try await api.call(.get, "/sub-accounts/\(tenant.subAccountID)", key: tenant.resellerKey)
            #expect(account.string("name") == "Nulls customer")
        }
    }

    @Test func refundPolicyStatesAreAtMostFour() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Policies")
            let states = ["delivered", "not_delivered", "rejected", "expired", "delivered"]
            let sub = try await api.call(
                .put, "/sub-accounts/\(tenant.subAccountID)/refund-policy", key: tenant.resellerKey,
                body: ["chargedStates": states])
            #expect(sub.status == .badRequest, "\(sub.json)")
            #expect(sub.string("detail")?.contains("/chargedStates") == true, "\(sub.json)")
            let reseller = try await api.call(
                .put, "/resellers/\(tenant.resellerID)/refund-policy/retail", key: tenant.resellerKey,
                body: ["chargedStates": states])
            #expect(reseller.status == .badRequest, "\(reseller.json)")
            let four = try await api.call(
                .put, "/sub-accounts/\(tenant.subAccountID)/refund-policy", key: tenant.resellerKey,
                body: ["chargedStates": Array(states.prefix(4))])
            #expect(four.status == .ok, "\(four.json)")
        }
    }

    @Test func anUnsupportedMethodOnAnExistingPathIs405WithAllow() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Methods")
            let collection = try await api.call(.delete, "/resellers", key: api.adminKey)
            #expect(collection.status == .methodNotAllowed, "\(collection.json)")
            #expect(collection.headers[.allow] == "GET, POST")
            #expect(collection.string("code") == "method_not_allowed")
            #expect(collection.headers[.contentType] == "application/problem+json; charset=utf-8")
            let item = try await api.call(.put, "/sub-accounts/\(tenant.subAccountID)", key: tenant.resellerKey)
            #expect(item.status == .methodNotAllowed && item.headers[.allow] == "GET, PATCH", "\(item.json)")
            let gateway = try await api.call(.delete, "/module/gateway.php", key: nil)
            #expect(gateway.status == .methodNotAllowed && gateway.headers[.allow] == "GET, POST")
            // A path that does not exist at all stays 404.
            let nowhere = try await api.call(.delete, "/nowhere", key: api.adminKey)
            #expect(nowhere.status == .notFound)
        }
    }
}
