import Foundation
import HTTPTypes
import PostgresLibpq
import PostgresTestSupport
import ResellerApp
import ResellerCore
import Testing

private let replicaDatabaseURL = ProcessInfo.processInfo.environment["REPLICA_DATABASE_URL"].flatMap {
    $0.isEmpty ? nil : $0
}

/// Reports and exports from a read replica (`REPORTS_DATABASE_URL`; docs/operations.md, "Read replica"). Without a
/// replica they read the primary and say so (lag 0); with `REPLICA_DATABASE_URL` set to a streaming standby of the
/// `TEST_DATABASE_URL` cluster (scripts/replica-check.sh sets both), they read the standby and show its lag.
@Suite struct ReadReplicaTests {
    static var replicaURL: String? { replicaDatabaseURL }

    static let period = "from=2026-01-01T00:00:00Z&to=2100-01-01T00:00:00Z"

    @Test func onThePrimaryReportsAndExportsAreCurrent() async throws {
        try await TenancyHarness.run { api in
            let before = Date()
            let usage = try await api.call(.get, "/reports/usage?\(Self.period)", key: api.adminKey)
            #expect(usage.status == .ok, "\(usage.json)")
            let asOf = try #require(Self.date(usage["dataAsOf"]))
            #expect(asOf >= before.addingTimeInterval(-5) && asOf <= Date().addingTimeInterval(5))
            #expect(usage["replicationLagSeconds"] as? Double == 0)
            let balances = try await api.call(.get, "/reports/balances", key: api.adminKey)
            #expect(balances.status == .ok)
            #expect(balances["replicationLagSeconds"] as? Double == 0)
            #expect(Self.date(balances["dataAsOf"]) != nil)
            let export = try await api.call(.get, "/exports/messages?\(Self.period)", key: api.adminKey)
            #expect(export.status == .ok)
            let header = try #require(export.headers[HTTPField.Name("X-Data-As-Of")!])
            #expect(Self.date(header) != nil, "\(header)")
            #expect(export.headers[HTTPField.Name("X-Replication-Lag-Seconds")!] == "0.000")
        }
    }

    @Test(.enabled(if: replicaDatabaseURL != nil, "REPLICA_DATABASE_URL is not set (scripts/replica-check.sh sets it)"))
    func reportsReadTheReplicaAndShowItsLagWhileWritesStayOnThePrimary() async throws {
        let replicaAdmin = try PostgresConfiguration(url: Self.replicaURL ?? "")
        try await TenancyHarness.run(configure: { configuration in
            var replica = replicaAdmin
            if let name = configuration.database.value(for: "dbname") { replica.set("dbname", to: name) }
            configuration.reportsDatabase = replica
        }) { api in
            let tenant = try await api.onboard("Replica")
            // Caught up: the replica's balance report shows the new tenant's wallet.
            let wallet = try await Self.waitForWallet(api, resellerID: tenant.resellerID)
            #expect(wallet)
            try await TestDatabase.withPool(replicaAdmin, maximumConnections: 1) { standby in
                try await standby.query("SELECT pg_wal_replay_pause()")
                do {
                    try await Task.sleep(for: .milliseconds(500))
                    let paused = Date()
                    // A write on the primary, answered from the primary, and visible there to its author at once.
                    let second = try await api.onboard("Later")
                    let own = try await api.call(.get, "/resellers/\(second.resellerID)", key: api.adminKey)
                    #expect(own.status == .ok)
                    try await Task.sleep(for: .seconds(1))
                    let report = try await api.call(.get, "/reports/balances", key: api.adminKey)
                    #expect(report.status == .ok)
                    let resellers = Set(
                        (report["wallets"] as? [[String: Any]] ?? []).compactMap { $0["resellerId"] as? String })
                    #expect(resellers.contains(tenant.resellerID))
                    #expect(!resellers.contains(second.resellerID), "the report came from the paused replica")
                    let asOf = try #require(Self.date(report["dataAsOf"]))
                    #expect(asOf <= paused)
                    let lag = try #require(report["replicationLagSeconds"] as? Double)
                    #expect(lag >= 1)
                    try await standby.query("SELECT pg_wal_replay_resume()")
                    #expect(try await Self.waitForWallet(api, resellerID: second.resellerID))
                } catch {
                    _ = try? await standby.query("SELECT pg_wal_replay_resume()")
                    throw error
                }
            }
        }
    }

    static func date(_ value: Any?) -> Date? {
        (value as? String).flatMap { try? APIDates.date(from: $0) }
    }

    /// Polls the balance report (up to 60 s) until it has a wallet of the reseller.
    static func waitForWallet(_ api: TenancyHarness, resellerID: String) async throws -> Bool {
        for _ in 0..<300 {
            let report = try await api.call(.get, "/reports/balances", key: api.adminKey)
            let wallets = report["wallets"] as? [[String: Any]] ?? []
            if wallets.contains(where: { $0["resellerId"] as? String == resellerID }) { return true }
            try await Task.sleep(for: .milliseconds(200))
        }
        return false
    }
}
