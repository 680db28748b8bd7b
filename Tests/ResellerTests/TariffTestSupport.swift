import Foundation
import HTTPTypes
import Hummingbird
import Ledger
import PostgresLibpq
import ResellerApp
import ResellerCore
import SMSCore
import Testing

/// An entry for a version body: `("4479", "0.0550")`, `("7", nil, "forbidden")`.
struct TestEntry: Sendable {
    var prefix: String
    var price: String?
    var status: String?

    init(_ prefix: String, _ price: String?, _ status: String? = nil) {
        self.prefix = prefix
        self.price = price
        self.status = status
    }

    var json: [String: Any] {
        var object: [String: Any] = ["prefix": prefix]
        if let price { object["price"] = price }
        if let status { object["status"] = status }
        return object
    }
}

/// The lists of all three layers, set up so that a tenant's sub-account can be priced.
struct PricedTenant: Sendable {
    var tenant: TenancyHarness.Tenant
    var upstreamListID: String
    var upstreamVersionID: String
    var wholesaleListID: String
    var wholesaleVersionID: String
    var retailListID: String
    var retailVersionID: String
}

extension TenancyHarness {
    /// Sends a `text/csv` body.
    func call(_ method: HTTPRequest.Method, _ path: String, key: String?, csv: String, contentType: String = "text/csv")
        async throws -> Reply
    {
        var headers: HTTPFields = [.contentType: contentType]
        if let key { headers[.authorization] = "Bearer \(key)" }
        return try Reply(
            try await client.execute(uri: path, method: method, headers: headers, body: ByteBuffer(string: csv)))
    }

    /// A GET whose body is text (the CSV export).
    func text(_ path: String, key: String?) async throws -> (
        status: HTTPResponse.Status, headers: HTTPFields, body: String
    ) {
        var headers: HTTPFields = [:]
        if let key { headers[.authorization] = "Bearer \(key)" }
        let response = try await client.execute(uri: path, method: .get, headers: headers, body: nil)
        return (response.status, response.headers, String(decoding: response.body.readableBytesView, as: UTF8.self))
    }

    func createPriceList(_ layer: String, name: String, key: String, allowLoss: Bool? = nil) async throws -> String {
        var body: [String: Any] = ["layer": layer, "name": name]
        if let allowLoss { body["allowLoss"] = allowLoss }
        let reply = try await call(.post, "/price-lists", key: key, body: body)
        try #require(reply.status == .created, "creating \(layer) list \(name): \(reply.json)")
        return try #require(reply.string("id"))
    }

    func createVersion(
        _ listID: String, key: String, _ entries: [TestEntry], effectiveFrom: Date? = nil, note: String? = nil
    ) async throws -> Reply {
        var body: [String: Any] = ["entries": entries.map(\.json)]
        if let effectiveFrom { body["effectiveFrom"] = APIDates.string(from: effectiveFrom) }
        if let note { body["note"] = note }
        return try await call(.post, "/price-lists/\(listID)/versions", key: key, body: body)
    }

    /// Creates a version that must succeed; its id.
    func version(_ listID: String, key: String, _ entries: [TestEntry], effectiveFrom: Date? = nil) async throws
        -> String
    {
        let reply = try await createVersion(listID, key: key, entries, effectiveFrom: effectiveFrom)
        try #require(reply.status == .created, "version of \(listID): \(reply.json)")
        return try #require((reply["version"] as? [String: Any])?["id"] as? String)
    }

    /// Onboards a tenant and gives every layer one list with one version in force: the platform's upstream cost
    /// and default wholesale lists, and the reseller's default retail list.
    func pricedTenant(
        _ name: String, upstream: [TestEntry], wholesale: [TestEntry], retail: [TestEntry], allowLoss: Bool = false
    ) async throws -> PricedTenant {
        let tenant = try await onboard(name)
        let upstreamList = try await createPriceList("upstream_cost", name: "1601 costs", key: adminKey)
        let upstreamVersion = try await version(upstreamList, key: adminKey, upstream)
        let wholesaleList = try await createPriceList("wholesale", name: "Standard wholesale", key: adminKey)
        let wholesaleVersion = try await version(wholesaleList, key: adminKey, wholesale)
        let defaults = try await call(
            .patch, "/price-defaults", key: adminKey,
            body: [
                "upstreamCostPriceListId": upstreamList, "wholesalePriceListId": wholesaleList,
            ])
        try #require(defaults.status == .ok, "\(defaults.json)")
        let retailList = try await createPriceList(
            "retail", name: "Standard retail", key: tenant.resellerKey, allowLoss: allowLoss)
        let retailVersion = try await version(retailList, key: tenant.resellerKey, retail)
        let assigned = try await call(
            .put, "/resellers/\(tenant.resellerID)/default-retail-price-list", key: tenant.resellerKey,
            body: ["priceListId": retailList])
        try #require(assigned.status == .ok, "\(assigned.json)")
        return PricedTenant(
            tenant: tenant, upstreamListID: upstreamList, upstreamVersionID: upstreamVersion,
            wholesaleListID: wholesaleList,
            wholesaleVersionID: wholesaleVersion, retailListID: retailList, retailVersionID: retailVersion)
    }

    /// Credits a sub-account's wallet from its reseller's issuance account (and, unless told not to, the reseller's
    /// wallet by as much from platform funding), through the ledger, and sets the sub-account's credit limit.
    func fundWallet(_ subAccountID: String, credits: String, creditLimit: String? = nil, fundReseller: Bool = true)
        async throws
    {
        let amount = try Money(parsing: credits).minorUnits
        let ledger = LedgerRepository(pool: pool)
        let wallet = try #require(try await ledger.wallet(subAccountID: UUID(uuidString: subAccountID)!))
        let issuance = try #require(
            try await ledger.account(kind: .resellerIssuance, resellerID: wallet.resellerID, subAccountID: nil))
        if amount > 0 {
            _ = try await ledger.apply([
                .posted(from: issuance.id, to: wallet.id, amount: amount, code: "credit_transfer", by: "test")
            ])
        }
        if fundReseller {
            // Sends also reserve the wholesale leg on the reseller's wallet: give it plenty.
            let funding = try #require(
                try await ledger.account(kind: .platformFunding, resellerID: nil, subAccountID: nil))
            let resellerWallet = try #require(
                try await ledger.account(kind: .resellerWallet, resellerID: wallet.resellerID, subAccountID: nil))
            _ = try await ledger.apply([
                .posted(
                    from: funding.id, to: resellerWallet.id, amount: Money(credits: 1_000).minorUnits, code: "top_up",
                    by: "test")
            ])
        }
        if let creditLimit {
            let limit = try Money(parsing: creditLimit).minorUnits
            _ = try await pool.withConnection {
                try await LedgerRepository.setCreditLimit(accountID: wallet.id, limit: limit, on: $0)
            }
        }
    }

    /// Requests a sender name as the sub-account and approves it as its reseller.
    func approvedSender(_ name: String, for tenant: Tenant) async throws {
        let requested = try await call(.post, "/sender-names", key: tenant.subAccountKey, body: ["name": name])
        try #require(requested.status == .created, "\(requested.json)")
        let id = try #require(requested.string("id"))
        let approved = try await call(.post, "/sender-names/\(id)/approve", key: tenant.resellerKey, body: [:])
        try #require(approved.string("status") == "approved", "\(approved.json)")
    }

    func auditCount(prefix: String) async throws -> Int {
        try await pool.query("SELECT count(*) FROM audit_log WHERE starts_with(action, \(prefix))").first(as: Int.self)
            ?? 0
    }
}

extension Reply {
    /// The problem's field errors as (field, message).
    var fieldErrors: [(field: String, message: String)] {
        (json["errors"] as? [[String: Any]] ?? []).map {
            ($0["field"] as? String ?? "", $0["message"] as? String ?? "")
        }
    }

    func fieldError(_ field: String) -> String? { fieldErrors.first { $0.field == field }?.message }
}
