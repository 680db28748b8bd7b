import AsyncHTTPClient
import CompatibleGateway
import Foundation
import Gateway1601
import HTTPTypes
import Ledger
import Messaging
import NIOCore
import PostgresLibpq
import ResellerApp
import SMSCore
import Testing

/// The whole way: sends through the REST API, the service's own dispatcher, the built-in simulator over real HTTP.
@Suite(.serialized, .timeLimit(.minutes(3))) struct SendEndToEndTests {
    /// The simulator's record of `gateway.php` calls: each call's decoded parameters.
    static func sendCalls(simulatorURL: String) async throws -> [[String: String]] {
        let response = try await HTTPClient.shared.execute(
            HTTPClientRequest(url: simulatorURL + "/_sim/requests"), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 32 << 20)
        let entries = try #require(
            try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [[String: Any]])
        return entries.filter { $0["path"] as? String == GatewayCall.gatewayPath }.map { entry in
            var parameters: [String: String] = [:]
            for parameter in entry["parameters"] as? [[String: Any]] ?? [] {
                if let name = parameter["name"] as? String, let value = parameter["value"] as? String {
                    parameters[name] = value
                }
            }
            return parameters
        }
    }

    @Test func singleBulkGroupAndScheduledSendsEachReachTheUpstreamOnce() async throws {
        try await TenancyHarness.run(configure: {
            $0.dispatcher = true
            $0.dispatch.pollInterval = .milliseconds(50)
            $0.databasePoolMaximum = 8
        }) { api in
            let tenant = try await api.sendingTenant("EndToEnd").tenant
            let key = tenant.subAccountKey
            let connection = try #require(
                try await api.call(.get, "/upstream-connections", key: api.adminKey).items.first)
            let simulatorURL = try #require(connection["baseUrl"] as? String)
            let anna = try await api.contact(tenant.subAccountID, "+31 6 1111 1111", key: key)
            let group = try await api.group(tenant.subAccountID, "Staff", key: key)
            _ = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/contact-groups/\(group)/members", key: key,
                body: ["contactIds": [anna]])
            let before = try await api.walletState(tenant.subAccountID)

            let single = try await api.send(
                tenant, ["sender": "Jansen", "text": "Single", "recipients": ["31612345678"], "reference": "single"])
            let bulkNumbers = (0..<40).map { "3162\(String(format: "%07d", $0))" }
            let bulk = try await api.send(tenant, ["sender": "Jansen", "text": "Bulk", "recipients": bulkNumbers])
            let toGroup = try await api.send(
                tenant,
                ["sender": "Jansen", "text": String(repeating: "Long ", count: 40), "long": true, "group": "Staff"])
            let due = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 3).rounded(.down))
            let scheduled = try await api.send(
                tenant,
                [
                    "sender": "Jansen", "text": "Later", "recipients": ["447911123456"],
                    "scheduleAt": due.formatted(.iso8601),
                ])
            for reply in [single, bulk, toGroup, scheduled] { #expect(reply.status == .created, "\(reply.json)") }
            #expect(scheduled.string("status") == "scheduled")
            func ids(_ reply: Reply) -> [String] {
                (reply["messages"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            }
            let immediate = ids(single) + ids(bulk) + ids(toGroup)
            let later = ids(scheduled)
            #expect(immediate.count == 42 && later.count == 1)

            func status(_ id: String) async throws -> String? {
                try await api.call(.get, "/sub-accounts/\(tenant.subAccountID)/messages/\(id)", key: key).string(
                    "status")
            }
            try await eventually("every immediate message is submitted") {
                try await api.pool.query(
                    """
                    SELECT count(*) FROM message WHERE id = ANY (\(immediate.map { UUID(uuidString: $0)! })) AND status = 'submitted'
                    """
                ).first(as: Int.self) == immediate.count
            }
            // Not before it is due.
            if Date() < due.addingTimeInterval(-0.5) { #expect(try await status(later[0]) == "scheduled") }
            try await eventually("the scheduled message is submitted") { try await status(later[0]) == "submitted" }
            let sentAt = try #require(
                try await api.pool.query("SELECT submitted_at FROM message WHERE id = \(UUID(uuidString: later[0])!)")
                    .first(as: Date.self))
            #expect(sentAt >= due)

            // One upstream call per message, each with delivery=ja, its own id as referentie, its number and sender.
            let calls = try await Self.sendCalls(simulatorURL: simulatorURL)
            #expect(calls.count == 43, "\(calls.count) calls")
            let references = calls.compactMap { $0["referentie"] }
            #expect(Set(references) == Set(immediate + later) && references.count == 43, "every message exactly once")
            #expect(calls.allSatisfy { $0["delivery"] == "ja" && $0["afzender"] == "Jansen" })
            let groupCall = try #require(calls.first { $0["referentie"] == ids(toGroup).first })
            #expect(groupCall["naar"] == "31611111111" && groupCall["type"] == "long")
            #expect(calls.first { $0["referentie"] == ids(single).first }?["naar"] == "31612345678")

            // The message reads with its upstream id and history; its money is still reserved (settled on delivery).
            let message = try await api.call(
                .get, "/sub-accounts/\(tenant.subAccountID)/messages/\(ids(single)[0])", key: key)
            #expect(message.string("upstreamId") != nil && message.string("reference") == "single")
            #expect(
                (message["history"] as? [[String: Any]])?.compactMap { $0["status"] as? String } == [
                    "accepted", "queued", "submitted",
                ])
            let wallet = try await api.walletState(tenant.subAccountID)
            let reserved = Int64(1 + 40) * 725 + 725 * 2 + 400
            #expect(wallet.pending - before.pending == reserved && before.available - wallet.available == reserved)
        }
    }
}
