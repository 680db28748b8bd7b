import Foundation
import Gateway1601
import Gateway1601Simulator
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import ServiceTestSupport
import Synchronization
import Testing

let quietLogger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

extension SimulatorConfiguration {
    /// The sandbox on a free port with fast, seeded delivery and a few extra accounts:
    /// `alice`/`geheim` (10 credits, groups, a blocked sender), `payer` (115) and `blocked` (116).
    static func testing(seed: UInt64 = 42) -> SimulatorConfiguration {
        var configuration = SimulatorConfiguration.sandbox
        configuration.port = 0
        configuration.seed = seed
        configuration.outboxCheckMilliseconds = 20
        configuration.delivery = DeliveryBehaviour(
            submittedAfterMilliseconds: 5, bufferedAfterMilliseconds: 5, finalAfterMilliseconds: 5,
            deliveredWeight: 1, notDeliveredWeight: 0, rejectedWeight: 0
        )
        configuration.accounts += [
            SimulatedAccount(
                username: "alice", password: "geheim", credits: 10,
                groups: ["team": ["31612345678", "32478123456"], "leeg": []], blockedSenders: ["Bank"]
            ),
            SimulatedAccount(username: "payer", password: "p", status: .blockedPayment),
            SimulatedAccount(username: "blocked", password: "b", status: .blocked),
        ]
        return configuration
    }
}

/// Runs a simulator with `configuration` and hands `body` the simulator and its base URL.
func withSimulator<Result: Sendable>(
    _ configuration: SimulatorConfiguration = .testing(),
    _ body: (GatewaySimulator, String) async throws -> Result
) async throws -> Result {
    let simulator = GatewaySimulator(configuration: configuration, logger: quietLogger)
    return try await withRunning([simulator]) { try await body(simulator, try await simulator.baseURL()) }
}

/// A client of `baseURL` for `username`/`password`.
func makeClient(
    _ baseURL: String, _ username: String = "alice", _ password: String = "geheim",
    encoding: GatewayCredentials.PasswordEncoding = .plain, method: Gateway1601Configuration.Method = .post,
    timeout: Duration = .seconds(5)
) -> Gateway1601Client {
    Gateway1601Client(
        configuration: Gateway1601Configuration(
            baseURL: baseURL,
            credentials: GatewayCredentials(username: username, password: password, passwordEncoding: encoding),
            method: method, requestTimeout: timeout
        ),
        logger: quietLogger
    )
}

/// The `Gateway1601Error` that `operation` throws, or `nil` when it succeeds.
func gatewayError<Value>(
    _ operation: () async throws -> Value, sourceLocation: SourceLocation = #_sourceLocation
) async -> Gateway1601Error? {
    do {
        _ = try await operation()
        return nil
    } catch let error as Gateway1601Error {
        return error
    } catch {
        Issue.record("expected a Gateway1601Error, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns whether it held.
func eventually(timeout: Duration = .seconds(5), _ condition: () -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// A small HTTP server for tests: records delivery callbacks on `/dlr` and plays a broken gateway under
/// `/garbage/module/…` (a 200 answer that is not the protocol), `/down/module/…` (HTTP 503), `/bigdown/module/…`
/// (HTTP 503 with a 64 KiB page), `/stall/module/…` (the head and `OK`, then a body that never ends), and fixed
/// answers under `/ok/module/…` (`OK`) and `/oneid/module/…` (`OK 1000001`).
final class TestReceiver: Sendable {
    let queries = Mutex<[String]>([])
    private let port = Mutex<Int?>(nil)

    var application: some ApplicationProtocol {
        let router = Router()
        router.get("dlr") { request, _ -> String in
            self.queries.withLock { $0.append(request.uri.query ?? "") }
            return "thanks"
        }
        router.post("garbage/module/gateway.php") { _, _ in "<html>Welcome to nginx</html>" }
        router.post("down/module/gateway.php") { _, _ -> Response in Response(status: .serviceUnavailable) }
        router.post("bigdown/module/gateway.php") { _, _ -> Response in
            Response(
                status: .serviceUnavailable,
                body: .init(byteBuffer: ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 << 10)))
        }
        router.post("stall/module/gateway.php") { _, _ -> Response in
            Response(
                status: .ok,
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: "OK"))
                    try await Task.sleep(for: .seconds(10))
                    try await writer.finish(nil)
                })
        }
        router.post("ok/module/gateway.php") { _, _ in "OK" }
        router.post("oneid/module/gateway.php") { _, _ in "OK 1000001" }
        return Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in self.port.withLock { $0 = channel.localAddress?.port } },
            logger: quietLogger
        )
    }

    /// `http://127.0.0.1:<port>` once the server is up.
    func baseURL() async throws -> String {
        _ = try await eventually { port.withLock { $0 } != nil }
        return "http://127.0.0.1:\(try #require(port.withLock { $0 }))"
    }

    /// The callbacks received so far, parsed.
    func notifications() throws -> [DeliveryNotification] {
        try queries.withLock { $0 }.map { try DeliveryNotification(query: $0) }
    }
}

extension Array where Element == SimulatedMessage {
    var ids: [String] { map(\.id) }
}
