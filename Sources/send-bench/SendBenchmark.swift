import AsyncHTTPClient
import Foundation
import Gateway1601
import Gateway1601Simulator
import Hummingbird
import Ledger
import Logging
import Messaging
import NIOCore
import NIOHTTP1
import PostgresLibpq
import ResellerApp
import ResellerCore

/// Send throughput over HTTP: the real application (router, authentication, planner, group commit, PostgreSQL) on a
/// local port, driven by concurrent HTTP clients. `scripts/bench-send.sh` runs it next to `pgbench` on the same
/// server. Everything it needs is set up through the API on a fresh database.
public enum SendBenchmark {
    public struct Rate: Sendable {
        public var accepted: Int
        public var refused: Int
        public var seconds: Double
        public var rate: Double { Double(accepted) / seconds }
    }

    /// A sub-account that can send, with its key.
    struct Sender: Sendable {
        var subAccountID: String
        var key: String
    }

    /// The API of a running application at `baseURL`, through one pooled HTTP client.
    struct Client: Sendable {
        let http: HTTPClient
        let baseURL: String

        /// Sends JSON and returns the status and the decoded JSON object (empty when there is none).
        func call(
            _ method: HTTPMethod, _ path: String, key: String?, body: Any? = nil, idempotencyKey: String? = nil
        ) async throws -> (status: Int, json: [String: Any]) {
            var request = HTTPClientRequest(url: baseURL + path)
            request.method = method
            if let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
            if let idempotencyKey { request.headers.add(name: "Idempotency-Key", value: idempotencyKey) }
            if let body {
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
            }
            let response = try await http.execute(request, timeout: .seconds(120))
            let buffer = try await response.body.collect(upTo: 64 << 20)
            let json =
                buffer.readableBytes == 0
                ? [:]
                : (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [String: Any] ?? [:]
            return (Int(response.status.code), json)
        }

        /// A call that must answer `expected`; its JSON.
        func require(
            _ expected: Int, _ method: HTTPMethod, _ path: String, key: String?, body: Any? = nil,
            idempotencyKey: String? = nil
        ) async throws -> [String: Any] {
            let reply = try await call(method, path, key: key, body: body, idempotencyKey: idempotencyKey)
            guard reply.status == expected else {
                throw BenchmarkError("\(method) \(path): \(reply.status) \(reply.json)")
            }
            return reply.json
        }
    }

    struct BenchmarkError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Onboards `resellers` resellers with `subAccountsPerReseller` sub-accounts each through the API: price lists
    /// of every layer for the Netherlands, sender `Bench` approved, and plenty of credit everywhere.
    static func onboard(_ api: Client, adminKey: String, resellers: Int, subAccountsPerReseller: Int, label: String)
        async throws -> [Sender]
    {
        var senders: [Sender] = []
        for index in 0..<resellers {
            let reseller = try await api.require(
                201, .POST, "/resellers", key: adminKey,
                body: ["name": "\(label) \(index)", "contactEmail": "ops@bench.example"])
            let resellerID = reseller["id"] as! String
            let resellerKey =
                try await api.require(
                    201, .POST, "/resellers/\(resellerID)/api-keys", key: adminKey, body: ["name": "bench"])["secret"]
                as! String
            _ = try await api.require(
                201, .POST, "/resellers/\(resellerID)/top-ups", key: adminKey,
                body: ["amount": "100000000", "paymentReference": "bench"], idempotencyKey: UUID().uuidString)
            let list =
                try await api.require(
                    201, .POST, "/price-lists", key: resellerKey, body: ["layer": "retail", "name": "retail"])["id"]
                as! String
            _ = try await api.require(
                201, .POST, "/price-lists/\(list)/versions", key: resellerKey,
                body: ["entries": [["prefix": "31", "price": "0.0725"]]])
            _ = try await api.require(
                200, .PUT, "/resellers/\(resellerID)/default-retail-price-list", key: resellerKey,
                body: ["priceListId": list])
            for sub in 0..<subAccountsPerReseller {
                let account = try await api.require(
                    201, .POST, "/sub-accounts", key: resellerKey,
                    body: [
                        "name": "bench \(index)-\(sub)", "username": "bench-\(label.lowercased())-\(index)-\(sub)",
                        "password": "bench password",
                    ])
                let subID = account["id"] as! String
                let key =
                    try await api.require(
                        201, .POST, "/sub-accounts/\(subID)/api-keys", key: resellerKey, body: ["name": "bench"])[
                        "secret"] as! String
                let sender =
                    try await api.require(201, .POST, "/sender-names", key: key, body: ["name": "Bench"])["id"]
                    as! String
                _ = try await api.require(200, .POST, "/sender-names/\(sender)/approve", key: resellerKey, body: [:])
                _ = try await api.require(
                    201, .POST, "/sub-accounts/\(subID)/credit-transfers", key: resellerKey,
                    body: ["amount": "10000000", "direction": "to_sub_account"], idempotencyKey: UUID().uuidString)
                senders.append(Sender(subAccountID: subID, key: key))
            }
        }
        return senders
    }

    /// The platform's upstream cost and wholesale lists for the Netherlands (once per database).
    static func platformPrices(_ api: Client, adminKey: String) async throws {
        var ids: [String] = []
        for layer in ["upstream_cost", "wholesale"] {
            let list =
                try await api.require(
                    201, .POST, "/price-lists", key: adminKey, body: ["layer": layer, "name": layer])["id"] as! String
            _ = try await api.require(
                201, .POST, "/price-lists/\(list)/versions", key: adminKey,
                body: ["entries": [["prefix": "31", "price": layer == "wholesale" ? "0.0500" : "0.0100"]]])
            ids.append(list)
        }
        _ = try await api.require(
            200, .PATCH, "/price-defaults", key: adminKey,
            body: ["upstreamCostPriceListId": ids[0], "wholesalePriceListId": ids[1]])
    }

    /// Single-recipient sends from `senders` (each client picks the next one in turn) by `clients` concurrent clients
    /// for `duration`; every send has its own Idempotency-Key and a distinct number.
    static func singleSends(_ api: Client, senders: [Sender], clients: Int, duration: Duration) async throws -> Rate {
        let started = ContinuousClock.now
        let deadline = started + duration
        let counts = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for client in 0..<clients {
                group.addTask {
                    var accepted = 0
                    var refused = 0
                    var turn = client
                    while ContinuousClock.now < deadline {
                        let sender = senders[turn % senders.count]
                        turn += clients
                        let number = "316\(String(format: "%08d", (client * 1_000_003 + turn) % 100_000_000))"
                        let reply = try await api.call(
                            .POST, "/sub-accounts/\(sender.subAccountID)/messages", key: sender.key,
                            body: [
                                "sender": "Bench", "text": "Your code is \(turn % 1_000_000)", "recipients": [number],
                            ],
                            idempotencyKey: UUID().uuidString)
                        if reply.status == 201 { accepted += 1 } else { refused += 1 }
                    }
                    return (accepted, refused)
                }
            }
            return try await group.reduce(into: (0, 0)) {
                $0.0 += $1.0
                $0.1 += $1.1
            }
        }
        let elapsed = ContinuousClock.now - started
        return Rate(
            accepted: counts.0, refused: counts.1,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// Single-recipient sends through the 1601-compatible endpoint (`GET /module/gateway.php`) as `username`, by
    /// `clients` concurrent clients for `duration`: what an existing 1601 integration costs.
    static func gatewaySends(_ api: Client, username: String, password: String, clients: Int, duration: Duration)
        async throws -> Rate
    {
        let started = ContinuousClock.now
        let deadline = started + duration
        let login = "klantuser=\(FormEncoding.percentEncode(username))&klantpwd=\(FormEncoding.percentEncode(password))"
        let counts = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for client in 0..<clients {
                group.addTask {
                    var accepted = 0
                    var refused = 0
                    var turn = client
                    while ContinuousClock.now < deadline {
                        turn += clients
                        let number = "316\(String(format: "%08d", (client * 1_000_003 + turn) % 100_000_000))"
                        let request = HTTPClientRequest(
                            url: api.baseURL
                                + "/module/gateway.php?\(login)&afzender=Bench&naar=\(number)&bericht=Code%20\(turn % 1_000_000)&delivery=ja"
                        )
                        let response = try await api.http.execute(request, timeout: .seconds(120))
                        let body = String(buffer: try await response.body.collect(upTo: 1024))
                        if body.hasPrefix("OK") { accepted += 1 } else { refused += 1 }
                    }
                    return (accepted, refused)
                }
            }
            return try await group.reduce(into: (0, 0)) {
                $0.0 += $1.0
                $0.1 += $1.1
            }
        }
        let elapsed = ContinuousClock.now - started
        return Rate(
            accepted: counts.0, refused: counts.1,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// One send to `count` distinct numbers; the seconds it took, client-side.
    static func bulkSend(_ api: Client, sender: Sender, count: Int) async throws -> Double {
        let numbers = (0..<count).map { "3162\(String(format: "%07d", $0))" }
        let started = ContinuousClock.now
        let reply = try await api.require(
            201, .POST, "/sub-accounts/\(sender.subAccountID)/messages", key: sender.key,
            body: ["sender": "Bench", "text": "Our shop opens at 9 tomorrow.", "recipients": numbers],
            idempotencyKey: UUID().uuidString)
        let elapsed = ContinuousClock.now - started
        guard reply["messageCount"] as? Int == count else {
            throw BenchmarkError("bulk send accepted \(reply["messageCount"] ?? "?") of \(count)")
        }
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}

extension SendBenchmark {
    public struct Options: Sendable {
        public var databaseURL: String
        public var clients = 32
        public var seconds = 10
        public var bulkRecipients = 10_000
        public var databasePoolMaximum = 40

        public init(databaseURL: String) { self.databaseURL = databaseURL }
    }

    /// Runs every phase against the application started on a fresh (migrated here) database and prints one line per figure.
    public static func run(_ options: Options, logger: Logger) async throws {
        var database = try PostgresConfiguration(url: options.databaseURL)
        database.applicationName = "send-bench"
        var configuration = AppConfiguration(database: database)
        configuration.port = 0
        configuration.migrate = true
        configuration.databasePoolMaximum = options.databasePoolMaximum
        configuration.databasePoolMinimum = options.databasePoolMaximum
        configuration.passwordIterations = 1_000
        configuration.ledgerMaintenance = false
        configuration.dispatch.pollInterval = .milliseconds(50)
        configuration.upstream = .embedded(EmbeddedUpstream(GatewaySimulator.sandbox(logger: logger)))
        let port = AsyncStream.makeStream(of: Int.self)
        let app = try buildApplication(configuration: configuration, logger: logger) { port.continuation.yield($0) }
        let setupPool = PostgresPool(
            configuration: database, poolConfiguration: .init(minimumConnections: 1, maximumConnections: 4),
            logger: logger)
        var httpConfiguration = HTTPClient.Configuration()
        httpConfiguration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(64, options.clients * 2))
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
        do {
            try await phases(options, app: app, ports: port.stream, setupPool: setupPool, http: http)
        } catch {
            try await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    static func phases(
        _ options: Options, app: some ApplicationProtocol, ports stream: AsyncStream<Int>, setupPool: PostgresPool,
        http: HTTPClient
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService(gracefulShutdownSignals: []) }
            group.addTask { try await setupPool.run() }
            defer { group.cancelAll() }
            var ports = stream.makeAsyncIterator()
            guard let bound = await ports.next() else { throw BenchmarkError("the server did not start") }
            let api = Client(http: http, baseURL: "http://127.0.0.1:\(bound)")
            let adminKey = try await AdminBootstrap.createAdminKey(pool: setupPool, name: "bench").secret

            try await platformPrices(api, adminKey: adminKey)
            let hot = try await onboard(api, adminKey: adminKey, resellers: 1, subAccountsPerReseller: 1, label: "Hot")
            let spread = try await onboard(
                api, adminKey: adminKey, resellers: 10, subAccountsPerReseller: 10, label: "Spread")
            let bulk = try await onboard(
                api, adminKey: adminKey, resellers: 1, subAccountsPerReseller: 1, label: "Bulk")
            // The sends of the HTTP phases stay queued (the default connection is paused); the bulk reseller sends
            // through a connection of its own to the same simulator, paused until the drain is measured.
            let connections =
                try await api.require(200, .GET, "/upstream-connections", key: adminKey)["items"] as! [[String: Any]]
            let defaultConnection = connections[0]["id"] as! String
            _ = try await api.require(
                200, .POST, "/upstream-connections/\(defaultConnection)/pause", key: adminKey,
                body: ["reason": "benchmark"])
            let drain =
                try await api.require(
                    201, .POST, "/upstream-connections", key: adminKey,
                    body: [
                        "name": "drain", "baseUrl": connections[0]["baseUrl"] as! String, "username": "sandbox",
                        "password": "sandbox",
                        "concurrency": 64, "rateLimitPerSecond": 10_000,
                    ])["id"] as! String
            _ = try await api.require(
                200, .POST, "/upstream-connections/\(drain)/pause", key: adminKey, body: ["reason": "benchmark"])
            let bulkReseller = try await setupPool.query(
                "SELECT reseller_id::text FROM sub_account WHERE id = \(UUID(uuidString: bulk[0].subAccountID)!)"
            ).first(as: String.self)!
            _ = try await api.require(
                200, .PUT, "/resellers/\(bulkReseller)/upstream-connection", key: adminKey,
                body: ["connectionId": drain])

            _ = try await singleSends(api, senders: hot, clients: options.clients, duration: .seconds(2))  // warm-up
            for (name, senders) in [("hot", hot), ("spread", spread)] {
                let rate = try await singleSends(
                    api, senders: senders, clients: options.clients, duration: .seconds(options.seconds))
                print(
                    "send-bench: phase=\(name) clients=\(options.clients) accepted=\(rate.accepted) refused=\(rate.refused) rate=\(String(format: "%.0f", rate.rate))"
                )
            }
            // The hot sub-account again, through the 1601-compatible endpoint (its username from `onboard`).
            let gateway = try await gatewaySends(
                api, username: "bench-hot-0-0", password: "bench password", clients: options.clients,
                duration: .seconds(options.seconds))
            print(
                "send-bench: phase=gateway clients=\(options.clients) accepted=\(gateway.accepted) refused=\(gateway.refused) rate=\(String(format: "%.0f", gateway.rate))"
            )
            _ = try await bulkSend(api, sender: bulk[0], count: 1_000)  // warm-up
            let seconds = try await bulkSend(api, sender: bulk[0], count: options.bulkRecipients)
            print(
                "send-bench: phase=bulk recipients=\(options.bulkRecipients) seconds=\(String(format: "%.3f", seconds))"
            )

            // Drain: resume the bulk reseller's connection and wait until its outbox is empty.
            let drainID = UUID(uuidString: drain)!
            let queued =
                try await setupPool.query("SELECT count(*) FROM message_outbox WHERE connection_id = \(drainID)").first(
                    as: Int.self) ?? 0
            let started = ContinuousClock.now
            _ = try await api.require(200, .POST, "/upstream-connections/\(drain)/resume", key: adminKey, body: [:])
            var left = queued
            while left > 0 {
                try await Task.sleep(for: .milliseconds(20))
                left =
                    try await setupPool.query("SELECT count(*) FROM message_outbox WHERE connection_id = \(drainID)")
                    .first(as: Int.self) ?? 0
            }
            let elapsed = ContinuousClock.now - started
            let drained = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let submitted =
                try await setupPool.query(
                    "SELECT count(*) FROM message WHERE reseller_id = \(UUID(uuidString: bulkReseller)!) AND status = 'submitted'"
                ).first(as: Int.self) ?? 0
            print(
                "send-bench: phase=drain messages=\(queued) submitted=\(submitted) seconds=\(String(format: "%.3f", drained)) rate=\(String(format: "%.0f", Double(queued) / drained))"
            )
        }
    }
}
