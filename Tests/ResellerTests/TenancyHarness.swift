import Foundation
import HTTPTypes
import Hummingbird
import Ledger
import Logging
import PostgresLibpq
import PostgresTestSupport
import ResellerAPI
import ResellerApp
import ResellerCore
import Testing

/// One answer of the API: status, headers and the JSON body (empty for no body), as an object or as one of the
/// generated schema types (`decode`).
struct Reply: @unchecked Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var json: [String: Any]
    var body: Data

    /// The body as a schema of `openapi.yaml` (the generated `Components.Schemas` types), dates as the API writes them.
    func decode<Schema: Decodable>(_ type: Schema.Type = Schema.self) throws -> Schema {
        try Self.decoder.decode(type, from: body)
    }

    init(_ response: LiveResponse) throws {
        status = response.status
        headers = response.headers
        body = Data(response.body.readableBytesView)
        let contentType = response.headers[.contentType] ?? ""
        let isJSON = contentType.contains("json") && !contentType.contains("ndjson")
        json = !isJSON || body.isEmpty ? [:] : (try JSONSerialization.jsonObject(with: body) as? [String: Any] ?? [:])
    }

    private static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = APIDates.decodingStrategy
        return decoder
    }()

    subscript(key: String) -> Any? { json[key] }
    var string: (String) -> String? { { json[$0] as? String } }
    var items: [[String: Any]] { json["items"] as? [[String: Any]] ?? [] }
}

/// A running app on a fresh database with an admin key, plus a pool for looking at the database directly.
struct TenancyHarness: Sendable {
    let client: LiveClient
    let pool: PostgresPool
    let adminKey: String

    /// Runs `body` against a live server (real socket) on its own database.
    static func run(
        configure: (inout AppConfiguration) -> Void = { _ in }, logger: Logger = HTTPSkeletonTests.logger,
        _ body: @Sendable (TenancyHarness) async throws -> Void
    ) async throws {
        try await TestDatabase.withFreshDatabase { database in
            var configuration = HTTPSkeletonTests.configuration(database)
            configuration.databasePoolMaximum = 6
            configuration.passwordIterations = 1_000
            configure(&configuration)
            try await LiveApp.run(configuration: configuration, logger: logger) { client in
                try await TestDatabase.withPool(database) { pool in
                    let admin = try await AdminBootstrap.createAdminKey(pool: pool, name: "test admin")
                    try await body(TenancyHarness(client: client, pool: pool, adminKey: admin.secret))
                }
            }
        }
    }

    /// Sends a request with an optional bearer key and JSON body.
    @discardableResult
    func call(
        _ method: HTTPRequest.Method, _ path: String, key: String?, body: [String: Any]? = nil,
        headers extra: HTTPFields = [:]
    ) async throws -> Reply {
        var headers = extra
        if let key { headers[.authorization] = "Bearer \(key)" }
        var buffer: ByteBuffer?
        if let body {
            headers[.contentType] = "application/json"
            buffer = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body))
        }
        return try Reply(try await client.execute(uri: path, method: method, headers: headers, body: buffer))
    }

    /// A tenant made through the API: a reseller with a key, one sub-account with a key.
    struct Tenant: Sendable {
        var resellerID: String
        var resellerKey: String
        var resellerKeyID: String
        var subAccountID: String
        var subAccountKey: String
        var subAccountKeyID: String
        var username: String
    }

    func onboard(_ name: String) async throws -> Tenant {
        let reseller = try await call(
            .post, "/resellers", key: adminKey,
            body: ["name": name, "contactEmail": "ops@\(name.lowercased()).example"])
        try #require(reseller.status == .created, "onboarding \(name): \(reseller.json)")
        let resellerID = try reseller.decode(Components.Schemas.Reseller.self).id
        let resellerKeyReply = try await call(
            .post, "/resellers/\(resellerID)/api-keys", key: adminKey, body: ["name": "main"])
        try #require(resellerKeyReply.status == .created)
        let resellerKey = try resellerKeyReply.decode(Components.Schemas.ApiKeyCreated.self)
        let secret = resellerKey.secret
        let username = "\(name.lowercased())-customer-\(UUID().uuidString.prefix(8))"
        let account = try await call(
            .post, "/sub-accounts", key: secret,
            body: ["name": "\(name) customer", "username": username, "password": "sup3r secret"])
        try #require(account.status == .created, "sub-account for \(name): \(account.json)")
        let subAccount = try account.decode(Components.Schemas.SubAccount.self)
        #expect(subAccount.username == username && subAccount.status == .active)
        let accountKeyReply = try await call(
            .post, "/sub-accounts/\(subAccount.id)/api-keys", key: secret, body: ["name": "app"])
        try #require(accountKeyReply.status == .created)
        let accountKey = try accountKeyReply.decode(Components.Schemas.ApiKeyCreated.self)
        return Tenant(
            resellerID: resellerID, resellerKey: secret, resellerKeyID: resellerKey.key.id, subAccountID: subAccount.id,
            subAccountKey: accountKey.secret, subAccountKeyID: accountKey.key.id, username: username)
    }

    func auditCount(action: String? = nil) async throws -> Int {
        try await pool.query("SELECT count(*) FROM audit_log WHERE \(action)::text IS NULL OR action = \(action)::text")
            .first(as: Int.self) ?? 0
    }
}
