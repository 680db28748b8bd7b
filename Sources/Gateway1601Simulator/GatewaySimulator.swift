import Foundation
import Gateway1601
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A stand-in for the 1601SMS gateway: `/module/gateway.php` and `/module/gatewayrapport.php` with the document's
/// parameters and answers, accounts and credits in memory, delivery callbacks, fault injection, and a JSON control
/// API under `/_sim` (see `README.md` beside this file).
///
/// Run it in a `ServiceGroup` or call ``run()`` in a task; it serves until graceful shutdown or cancellation.
/// ``listeningPort()`` gives the bound port once the server is up (port 0 picks a free one). A simulator runs once;
/// make a new one to serve again.
public final class GatewaySimulator: Service, Sendable {
    public let configuration: SimulatorConfiguration
    let engine: SimulatorEngine
    let worker: DeliveryWorker
    let logger: Logger
    private let binding = Mutex(Binding.pending([]))

    private enum Binding {
        case pending([CheckedContinuation<Int, any Error>])
        case bound(Int)
        case stopped
    }

    /// The simulator is not serving (it stopped, or failed to start).
    public struct NotRunning: Error, Sendable {}

    public init(configuration: SimulatorConfiguration = .sandbox, logger: Logger = Logger(label: "gateway1601-sim")) {
        self.configuration = configuration
        self.logger = logger
        self.engine = SimulatorEngine(configuration: configuration)
        self.worker = DeliveryWorker(engine: engine, logger: logger)
    }

    /// Serves until graceful shutdown or cancellation.
    public func run() async throws {
        let router = Router(context: SimulatorRequestContext.self)
        addGatewayRoutes(to: router)
        addControlRoutes(to: router)
        let application = Application(
            router: router,
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: "gateway1601-sim"
            ),
            services: [worker],
            onServerRunning: { [self] channel in bound(to: channel.localAddress?.port) },
            logger: logger
        )
        defer { stopped() }
        try await application.run()
    }

    /// The port the server listens on; waits until it is up. Throws ``NotRunning`` when it stopped or never started.
    public func listeningPort() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let result: Result<Int, any Error>? = binding.withLock { state in
                switch state {
                case .pending(let waiting):
                    state = .pending(waiting + [continuation])
                    return nil
                case .bound(let port): return .success(port)
                case .stopped: return .failure(NotRunning())
                }
            }
            if let result { continuation.resume(with: result) }
        }
    }

    /// `http://<host>:<port>`, the base URL for a ``Gateway1601Client``; waits until the server is up.
    public func baseURL() async throws -> String {
        "http://\(configuration.host):\(try await listeningPort())"
    }

    private func bound(to port: Int?) {
        let waiting = binding.withLock { state -> [CheckedContinuation<Int, any Error>] in
            guard case .pending(let waiting) = state else { return [] }
            if let port { state = .bound(port) } else { state = .stopped }
            return waiting
        }
        for continuation in waiting {
            if let port { continuation.resume(returning: port) } else { continuation.resume(throwing: NotRunning()) }
        }
        if let port { logger.info("gateway simulator listening", metadata: ["port": "\(port)"]) }
    }

    private func stopped() {
        let waiting = binding.withLock { state -> [CheckedContinuation<Int, any Error>] in
            defer { state = .stopped }
            guard case .pending(let waiting) = state else { return [] }
            return waiting
        }
        for continuation in waiting { continuation.resume(throwing: NotRunning()) }
    }

    // MARK: In-process control

    /// Every account, sorted by username.
    public func accounts() -> [SimulatedAccount] {
        engine.read { $0.accounts.values.sorted { $0.username < $1.username } }
    }

    /// The account called `username`, or `nil`.
    public func account(_ username: String) -> SimulatedAccount? {
        engine.read { $0.accounts[username] }
    }

    /// Creates or replaces an account.
    public func upsertAccount(_ account: SimulatedAccount) {
        engine.update { $0.accounts[account.username] = account }
    }

    /// Changes an existing account; `false` when there is none.
    @discardableResult
    public func updateAccount(_ username: String, _ change: (inout SimulatedAccount) -> Void) -> Bool {
        engine.update { state in
            guard var account = state.accounts[username] else { return false }
            change(&account)
            account.username = username
            state.accounts[username] = account
            return true
        }
    }

    /// Removes an account; `false` when there was none.
    @discardableResult
    public func removeAccount(_ username: String) -> Bool {
        engine.update { $0.accounts.removeValue(forKey: username) != nil }
    }

    /// The faults in force.
    public func faults() -> FaultConfiguration { engine.read(\.faults) }

    /// Replaces the faults in force.
    public func setFaults(_ faults: FaultConfiguration) { engine.update { $0.faults = faults } }

    /// The delivery behaviour in force.
    public func delivery() -> DeliveryBehaviour { engine.read(\.delivery) }

    /// Replaces the delivery behaviour for messages sent from now on.
    public func setDelivery(_ delivery: DeliveryBehaviour) { engine.update { $0.delivery = delivery } }

    /// The country rules, keyed by calling code.
    public func countries() -> [String: CountryRule] { engine.read(\.countries) }

    /// Sets (or with `nil` removes) the rule of one calling code.
    public func setCountry(_ code: String, _ rule: CountryRule?) { engine.update { $0.countries[code] = rule } }

    /// Every gateway call received since start or the last reset/clear, oldest first.
    public func receivedRequests() -> [ReceivedRequest] { engine.read { Array($0.requests) } }

    /// Forgets the received calls.
    public func clearReceivedRequests() { engine.update { $0.requests.removeAll() } }

    /// Every accepted message, oldest first.
    public func messages() -> [SimulatedMessage] {
        engine.read { state in state.messageOrder.compactMap { state.messages[$0] } }
    }

    /// The message with `id`, or `nil`.
    public func message(_ id: String) -> SimulatedMessage? { engine.read { $0.messages[id] } }

    /// Every delivery callback attempted, oldest first.
    public func sentCallbacks() -> [SentCallback] { engine.read { Array($0.callbacks) } }

    /// Sets a message's status now and sends its callback once, without callback faults (when the message was sent
    /// with `delivery=ja` and its account has a callback URL). `nil` when there is no such message.
    public func setStatus(of messageID: String, to status: DeliveryStatus) async -> [SentCallback]? {
        guard let change = engine.changeStatus(of: messageID, to: status, at: Date(), force: true) else { return nil }
        return await worker.callback(change, injectFaults: false)
    }

    /// Back to the start configuration: accounts, countries, faults, ids, logs and the random seed.
    public func reset() { engine.reset() }
}

/// The request context: Hummingbird's core context plus the channel, so a fault can close the connection unanswered.
struct SimulatorRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }
}
