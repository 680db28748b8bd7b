import Logging
import ServiceLifecycle
import Synchronization
import Tracing

/// Sizes and timeouts of a `PostgresPool`.
public struct PostgresPoolConfiguration: Sendable {
    /// Connections kept open even when idle.
    public var minimumConnections: Int = 1
    /// Upper bound of open connections (each has a libpq thread of its own).
    public var maximumConnections: Int = 8
    /// How long `withConnection` waits for a free connection before failing with `.acquireTimeout`.
    public var acquireTimeout: Duration = .seconds(10)
    /// Idle connections above the minimum are closed after this long.
    public var idleTimeout: Duration = .seconds(300)
    /// How often idle connections are pruned and the minimum restored.
    public var maintenanceInterval: Duration = .seconds(5)
    /// On shutdown, how long to wait for leased connections to come back.
    public var shutdownTimeout: Duration = .seconds(30)
    /// Told how long each acquisition waited for a connection (zero when one was idle), whether it got one or not;
    /// for a histogram. Called on the acquiring task, outside the pool's lock: keep it cheap.
    public var acquireWaitObserver: (@Sendable (Duration) -> Void)?
    /// When set, each statement of `PostgresConnection.query` is a client span (`db.system` postgresql, `db.statement`
    /// the SQL text without its parameters). Nil: no span, no cost.
    public var tracer: (any Tracer)?

    public init(minimumConnections: Int = 1, maximumConnections: Int = 8) {
        precondition(maximumConnections >= 1 && minimumConnections >= 0 && minimumConnections <= maximumConnections)
        self.minimumConnections = minimumConnections
        self.maximumConnections = maximumConnections
    }
}

/// A snapshot of the pool, for gauges and tests.
public struct PostgresPoolStatistics: Sendable, Equatable {
    public var idle = 0
    public var leased = 0
    public var opening = 0
    public var waiting = 0
    public var opened = 0
    public var closed = 0
    public var acquireTimeouts = 0
    public var connectFailures = 0
    /// Connections open now (idle + leased).
    public var open: Int { idle + leased }
}

/// A pool of libpq connections; a swift-service-lifecycle `Service` whose `run()` owns it.
///
/// Requests made before `run()` starts wait for it. On graceful shutdown the pool stops
/// handing out connections, fails waiters, waits for leased connections to come back and
/// closes everything. A connection found broken is discarded and replaced on demand; one the
/// server closed while it sat idle is re-established before it is used.
public final class PostgresPool: Service, Sendable {
    public let configuration: PostgresConfiguration
    public let poolConfiguration: PostgresPoolConfiguration
    let logger: Logger
    private let state: Mutex<State>
    private let events: AsyncStream<Event>
    private let eventSink: AsyncStream<Event>.Continuation

    private enum Phase { case created, running, closing, closed }

    private enum Event {
        case open
    }

    private struct Waiter {
        let id: UInt64
        let deadline: ContinuousClock.Instant
        let continuation: CheckedContinuation<PostgresConnection, any Error>
    }

    private struct State: ~Copyable {
        var phase = Phase.created
        var idle: [(connection: PostgresConnection, since: ContinuousClock.Instant)] = []
        var waiters: [Waiter] = []
        var nextWaiterID: UInt64 = 0
        var statistics = PostgresPoolStatistics()
        var drained: CheckedContinuation<Void, Never>?

        var total: Int { idle.count + statistics.leased + statistics.opening }
    }

    public init(
        configuration: PostgresConfiguration,
        poolConfiguration: PostgresPoolConfiguration = .init(),
        logger: Logger = Logger(label: "postgres.pool")
    ) {
        self.configuration = configuration
        self.poolConfiguration = poolConfiguration
        self.logger = logger
        self.state = Mutex(State())
        (self.events, self.eventSink) = AsyncStream.makeStream(of: Event.self)
    }

    /// Current counts.
    public var statistics: PostgresPoolStatistics {
        state.withLock { state in
            var statistics = state.statistics
            statistics.idle = state.idle.count
            statistics.waiting = state.waiters.count
            return statistics
        }
    }

    // MARK: - Using connections

    /// Runs `body` with a connection of its own; the connection returns to the pool afterwards.
    /// A connection left inside a transaction block is closed rather than reused.
    public func withConnection<Result>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        let connection = try await acquire()
        defer { release(connection) }
        return try await body(connection)
    }

    /// Runs one statement on a pooled connection.
    @discardableResult
    public func query(_ query: PostgresQuery) async throws -> PostgresRows {
        try await withConnection { try await $0.query(query) }
    }

    /// Runs `body` in a transaction; commits on return, rolls back on throw. A serialization
    /// failure (40001) or deadlock (40P01) runs the whole transaction again, up to `maxAttempts`
    /// times, after a short randomized backoff. `body` must therefore have no effects outside the database.
    public func withTransaction<Result>(
        isolation: IsolationLevel = .readCommitted,
        readOnly: Bool = false,
        maxAttempts: Int = 5,
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        var attempt = 1
        while true {
            do {
                return try await withConnection { connection in
                    try await connection.withTransaction(isolation: isolation, readOnly: readOnly, body)
                }
            } catch let error as PostgresError where error.isRetryableTransactionFailure && attempt < maxAttempts {
                logger.debug(
                    "retrying transaction", metadata: ["attempt": "\(attempt)", "sqlstate": "\(error.sqlState ?? "")"])
                // Exponential backoff with full jitter: up to 2, 4, 8, … ms.
                let ceiling = 1 << min(attempt, 10)
                try await Task.sleep(for: .microseconds(Int.random(in: 0...(ceiling * 1000))))
                attempt += 1
            }
        }
    }

    // MARK: - Acquire and release

    func acquire() async throws -> PostgresConnection {
        let fast: Result<PostgresConnection, any Error>? = state.withLock { state in
            switch state.phase {
            case .closing, .closed:
                return .failure(PostgresError(kind: .poolClosed, message: "the connection pool is closed"))
            case .running:
                guard let entry = state.idle.popLast() else { return nil }
                state.statistics.leased += 1
                return .success(entry.connection)
            case .created:
                return nil
            }
        }
        if let fast {
            let connection = try fast.get()
            poolConfiguration.acquireWaitObserver?(.zero)
            return connection
        }

        let waitStarted = ContinuousClock.now
        defer { poolConfiguration.acquireWaitObserver?(ContinuousClock.now - waitStarted) }
        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation {
                (continuation: CheckedContinuation<PostgresConnection, any Error>) in
                enum Action {
                    case give(PostgresConnection)
                    case fail(any Error)
                    case wait(open: Bool)
                }
                let action: Action = state.withLock { state in
                    switch state.phase {
                    case .closing, .closed:
                        return .fail(PostgresError(kind: .poolClosed, message: "the connection pool is closed"))
                    case .running:
                        if let entry = state.idle.popLast() {
                            state.statistics.leased += 1
                            return .give(entry.connection)
                        }
                    case .created:
                        break
                    }
                    if Task.isCancelled { return .fail(CancellationError()) }
                    state.waiters.append(
                        Waiter(id: id, deadline: .now + poolConfiguration.acquireTimeout, continuation: continuation))
                    let open = state.phase == .running && state.total < poolConfiguration.maximumConnections
                    if open { state.statistics.opening += 1 }
                    return .wait(open: open)
                }
                switch action {
                case .give(let connection): continuation.resume(returning: connection)
                case .fail(let error): continuation.resume(throwing: error)
                case .wait(let open):
                    if open { eventSink.yield(.open) }
                }
            }
        } onCancel: {
            if let waiter = removeWaiter(id) { waiter.continuation.resume(throwing: CancellationError()) }
        }
    }

    private func removeWaiter(_ id: UInt64) -> Waiter? {
        state.withLock { state in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
    }

    func release(_ connection: PostgresConnection) {
        let reusable = connection.isUsable && connection.isIdleInTransactionTerms
        // Marked before anyone else can take it, so its next user checks it is still alive.
        if reusable { connection.markIdle() }
        enum Action {
            case none
            case give(Waiter)
            case retire(open: Bool)
        }
        let action: Action = state.withLock { state in
            state.statistics.leased -= 1
            if !reusable || state.phase != .running {
                state.statistics.closed += 1
                var open = false
                if state.phase == .running, !state.waiters.isEmpty, state.total < poolConfiguration.maximumConnections {
                    state.statistics.opening += 1
                    open = true
                }
                if state.phase == .closing, state.statistics.leased == 0, let drained = state.drained {
                    state.drained = nil
                    drained.resume()
                }
                return .retire(open: open)
            }
            if !state.waiters.isEmpty {
                state.statistics.leased += 1
                return .give(state.waiters.removeFirst())
            }
            state.idle.append((connection, .now))
            return .none
        }
        switch action {
        case .none:
            break
        case .give(let waiter):
            waiter.continuation.resume(returning: connection)
        case .retire(let open):
            if !reusable {
                logger.notice(
                    "discarding a database connection",
                    metadata: ["reason": "\(connection.isUsable ? "left inside a transaction" : "broken")"])
            }
            retire(connection)
            if open { eventSink.yield(.open) }
        }
    }

    /// Lets a connection go; its `deinit` finishes the libpq handle on the connection's own thread.
    private func retire(_ connection: PostgresConnection) {
        withExtendedLifetime(connection) {}
    }

    // MARK: - Service

    public func run() async throws {
        let initialOpens = state.withLock { state in
            state.phase = .running
            let wanted = max(
                poolConfiguration.minimumConnections, min(state.waiters.count, poolConfiguration.maximumConnections))
            let missing = max(0, wanted - state.total)
            state.statistics.opening += missing
            return missing
        }
        for _ in 0..<initialOpens { eventSink.yield(.open) }
        logger.info(
            "database pool started",
            metadata: [
                "database": "\(configuration.redactedDescription)",
                "min": "\(poolConfiguration.minimumConnections)", "max": "\(poolConfiguration.maximumConnections)",
            ])

        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.maintain() }
                group.addTask { await self.expireWaiters() }
                for await event in events {
                    switch event {
                    case .open:
                        group.addTask { await self.openConnection() }
                    }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.eventSink.finish()
        }
        await close()
        logger.info("database pool closed")
    }

    private func openConnection() async {
        do {
            let connection = try await PostgresConnection.connect(
                configuration: configuration, logger: logger, tracer: poolConfiguration.tracer)
            // Like a returned connection, a new one is checked before its first use: the server
            // may end it between the handshake and then (a restart, pg_terminate_backend).
            connection.markIdle()
            let waiter: Waiter? = state.withLock { state in
                state.statistics.opening -= 1
                state.statistics.opened += 1
                guard state.phase == .running else {
                    state.statistics.closed += 1
                    return nil
                }
                if !state.waiters.isEmpty {
                    state.statistics.leased += 1
                    return state.waiters.removeFirst()
                }
                state.idle.append((connection, .now))
                return nil
            }
            if let waiter {
                waiter.continuation.resume(returning: connection)
            } else if state.withLock({ $0.phase != .running }) {
                retire(connection)
            }
        } catch {
            if Task.isCancelled {
                logger.debug("connection attempt abandoned: the pool is shutting down")
            } else {
                logger.error("could not open a database connection", metadata: ["error": "\(error)"])
            }
            // Nobody should wait out the acquire timeout for a database that refuses connections:
            // waiters beyond what other connection attempts can serve fail now with the cause.
            let failed: [Waiter] = state.withLock { state in
                state.statistics.opening -= 1
                state.statistics.connectFailures += 1
                let servable = state.statistics.opening
                guard state.waiters.count > servable else { return [] }
                let failed = Array(state.waiters[servable...])
                state.waiters.removeSubrange(servable...)
                return failed
            }
            for waiter in failed { waiter.continuation.resume(throwing: error) }
        }
    }

    /// Fails waiters whose acquire timeout has passed (checked every 50 ms, so no timer per waiter).
    private func expireWaiters() async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: .milliseconds(50)) } catch { return }
            let now = ContinuousClock.now
            let expired: [Waiter] = state.withLock { state in
                guard state.waiters.contains(where: { $0.deadline <= now }) else { return [] }
                let expired = state.waiters.filter { $0.deadline <= now }
                state.waiters.removeAll { $0.deadline <= now }
                state.statistics.acquireTimeouts += expired.count
                return expired
            }
            for waiter in expired {
                waiter.continuation.resume(
                    throwing: PostgresError(
                        kind: .acquireTimeout,
                        message: "no database connection became free within \(poolConfiguration.acquireTimeout)"))
            }
        }
    }

    /// Closes idle connections above the minimum that sat unused too long; restores the minimum.
    private func maintain() async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: poolConfiguration.maintenanceInterval) } catch { return }
            let (expired, opens): ([PostgresConnection], Int) = state.withLock { state in
                guard state.phase == .running else { return ([], 0) }
                let cutoff = ContinuousClock.now - poolConfiguration.idleTimeout
                var expired: [PostgresConnection] = []
                // Oldest first; never go below the minimum.
                while state.total > poolConfiguration.minimumConnections, let oldest = state.idle.first,
                    oldest.since < cutoff
                {
                    expired.append(state.idle.removeFirst().connection)
                    state.statistics.closed += 1
                }
                let missing = max(0, poolConfiguration.minimumConnections - state.total)
                state.statistics.opening += missing
                return (expired, missing)
            }
            expired.forEach(retire)
            for _ in 0..<opens { eventSink.yield(.open) }
        }
    }

    private func close() async {
        let (idle, waiters, leased): ([PostgresConnection], [Waiter], Int) = state.withLock { state in
            state.phase = .closing
            let idle = state.idle.map(\.connection)
            state.statistics.closed += idle.count
            state.idle.removeAll()
            let waiters = state.waiters
            state.waiters.removeAll()
            return (idle, waiters, state.statistics.leased)
        }
        for waiter in waiters {
            waiter.continuation.resume(
                throwing: PostgresError(kind: .poolClosed, message: "the connection pool is shutting down"))
        }
        idle.forEach(retire)
        if leased > 0 {
            logger.info("waiting for leased database connections", metadata: ["leased": "\(leased)"])
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    await withCheckedContinuation { continuation in
                        let done = self.state.withLock { state -> Bool in
                            if state.statistics.leased == 0 { return true }
                            state.drained = continuation
                            return false
                        }
                        if done { continuation.resume() }
                    }
                }
                group.addTask { try? await Task.sleep(for: self.poolConfiguration.shutdownTimeout) }
                await group.next()
                group.cancelAll()
                // Whichever finished first, make sure the drain continuation is not left pending.
                if let pending = self.state.withLock({ state -> CheckedContinuation<Void, Never>? in
                    defer { state.drained = nil }
                    return state.drained
                }) {
                    self.logger.warning("shutting down with database connections still leased")
                    pending.resume()
                }
                await group.waitForAll()
            }
        }
        state.withLock { $0.phase = .closed }
    }
}
