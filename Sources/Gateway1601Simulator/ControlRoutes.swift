import Foundation
import Gateway1601
import Hummingbird
import NIOCore

/// The JSON control API under `/_sim` (documented in `README.md`).
extension GatewaySimulator {
    func addControlRoutes(to router: Router<SimulatorRequestContext>) {
        let sim = router.group("_sim")
        sim.get("health") { _, _ in try JSONBody.response(["status": "ok"]) }
        sim.post("reset") { _, _ in
            self.reset()
            return try JSONBody.response(["status": "reset"])
        }

        sim.get("accounts") { _, _ in try JSONBody.response(self.accounts()) }
        sim.get("accounts/:username") { _, context in
            try JSONBody.response(try self.requireAccount(context.parameters.require("username")))
        }
        sim.put("accounts/:username") { request, context in
            let username = try context.parameters.require("username")
            var account = try await JSONBody.merge(SimulatedAccount(username: username, password: ""), with: request)
            account.username = username
            guard !account.password.isEmpty else { throw HTTPError(.badRequest, message: "password is required") }
            self.upsertAccount(account)
            return try JSONBody.response(account)
        }
        sim.patch("accounts/:username") { request, context in
            let username = try context.parameters.require("username")
            var account = try await JSONBody.merge(try self.requireAccount(username), with: request)
            account.username = username
            self.upsertAccount(account)
            return try JSONBody.response(account)
        }
        sim.post("accounts/:username/credits") { request, context in
            let username = try context.parameters.require("username")
            let change = try await JSONBody.decode(CreditChange.self, from: request)
            guard change.add != nil || change.set != nil else {
                throw HTTPError(.badRequest, message: "give \"add\" or \"set\"")
            }
            let found = self.updateAccount(username) { account in
                if let set = change.set { account.credits = set }
                if let add = change.add { account.credits = account.credits + add }
            }
            guard found else { throw HTTPError(.notFound, message: "no account \(username)") }
            return try JSONBody.response(try self.requireAccount(username))
        }
        sim.delete("accounts/:username") { _, context in
            let username = try context.parameters.require("username")
            guard self.removeAccount(username) else { throw HTTPError(.notFound, message: "no account \(username)") }
            return Response(status: .noContent)
        }

        sim.get("faults") { _, _ in try JSONBody.response(self.faults()) }
        sim.put("faults") { request, _ in
            let faults = try await JSONBody.merge(self.faults(), with: request)
            self.setFaults(faults)
            return try JSONBody.response(faults)
        }
        sim.get("delivery") { _, _ in try JSONBody.response(self.delivery()) }
        sim.put("delivery") { request, _ in
            let delivery = try await JSONBody.merge(self.delivery(), with: request)
            self.setDelivery(delivery)
            return try JSONBody.response(delivery)
        }
        sim.get("countries") { _, _ in try JSONBody.response(self.countries()) }
        sim.put("countries") { request, _ in
            let changes = try await JSONBody.decode([String: CountryRule?].self, from: request)
            for (code, rule) in changes { self.setCountry(code, rule) }
            return try JSONBody.response(self.countries())
        }

        sim.get("requests") { request, _ in
            let since = request.uri.queryParameters.get("since", as: Int.self) ?? 0
            return try JSONBody.response(self.receivedRequests().filter { $0.sequence > since })
        }
        sim.delete("requests") { _, _ in
            self.clearReceivedRequests()
            return Response(status: .noContent)
        }
        sim.get("messages") { _, _ in try JSONBody.response(self.messages()) }
        sim.get("messages/:id") { _, context in
            let id = try context.parameters.require("id")
            guard let message = self.message(id) else { throw HTTPError(.notFound, message: "no message \(id)") }
            return try JSONBody.response(message)
        }
        sim.post("messages/:id/status") { request, context in
            let id = try context.parameters.require("id")
            let change = try await JSONBody.decode(StatusChangeRequest.self, from: request)
            guard let status = DeliveryStatus(text: change.status) else {
                throw HTTPError(.badRequest, message: "unknown status \(change.status)")
            }
            guard let callbacks = await self.setStatus(of: id, to: status) else {
                throw HTTPError(.notFound, message: "no message \(id)")
            }
            return try JSONBody.response(callbacks)
        }
        sim.get("callbacks") { _, _ in try JSONBody.response(self.sentCallbacks()) }
    }

    private func requireAccount(_ username: String) throws -> SimulatedAccount {
        guard let account = account(username) else { throw HTTPError(.notFound, message: "no account \(username)") }
        return account
    }
}

/// `POST /_sim/accounts/{username}/credits` body.
struct CreditChange: Decodable {
    var add: CreditAmount?
    var set: CreditAmount?
}

/// `POST /_sim/messages/{id}/status` body.
struct StatusChangeRequest: Decodable {
    var status: String
}

/// JSON reading and writing of the control API: ISO 8601 dates, sorted keys.
enum JSONBody {
    static let maximumBytes = 1 << 20

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: try encoder().encode(value)))
        )
    }

    static func decode<Value: Decodable>(_ type: Value.Type, from request: Request) async throws -> Value {
        let data = try await body(of: request)
        do {
            return try decoder().decode(type, from: data)
        } catch {
            throw HTTPError(.badRequest, message: "invalid JSON: \(error)")
        }
    }

    /// `current` with the keys of the request's JSON object laid over it: keys left out keep their value (also
    /// inside nested objects), `null` clears an optional.
    static func merge<Value: Codable>(_ current: Value, with request: Request) async throws -> Value {
        let data = try await body(of: request)
        do {
            return try merge(current, with: data)
        } catch {
            throw HTTPError(.badRequest, message: "invalid JSON: \(error)")
        }
    }

    /// `current` with the keys of the JSON object `data` laid over it.
    static func merge<Value: Codable>(_ current: Value, with data: Data) throws -> Value {
        let base = try JSONSerialization.jsonObject(with: try encoder().encode(current)) as? [String: Any] ?? [:]
        guard let overlay = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "expected a JSON object"))
        }
        return try decoder().decode(Value.self, from: JSONSerialization.data(withJSONObject: deepMerge(base, overlay)))
    }

    /// `overlay` laid over `base`: nested objects merge key by key, everything else is replaced.
    private static func deepMerge(_ base: [String: Any], _ overlay: [String: Any]) -> [String: Any] {
        base.merging(overlay) { old, new in
            guard let old = old as? [String: Any], let new = new as? [String: Any] else { return new }
            return deepMerge(old, new)
        }
    }

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    private static func body(of request: Request) async throws -> Data {
        var request = request
        let buffer = try await request.collectBody(upTo: maximumBytes)
        return Data(buffer.readableBytesView)
    }
}
