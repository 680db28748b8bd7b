import Foundation
import Gateway1601
import Ledger
import Logging
import PostgresLibpq
import ResellerCore
import ServiceLifecycle
import Synchronization
import Tracing

/// How the dispatcher runs: each setting's default is here, and `sms-reseller serve` can override it.
package struct DispatcherSettings: Sendable {
    /// How often an idle dispatcher looks for due messages (and for connections paused or resumed); the send path
    /// wakes it at once for new messages.
    package var pollInterval: Duration = .milliseconds(250)
    /// How long a claim holds a message: a worker that dies holding it delays the message by this much, after which
    /// another claims it. Raised per connection to twice its request timeout when shorter.
    package var lease: Duration = .seconds(60)
    /// Messages claimed at once per connection (fewer when the connection's rate limit could not start them within
    /// the lease).
    package var batchSize: Int = 100
    /// Waits between retries of transient failures: up to 1 s after the first (full jitter), doubling, at most 300 s.
    package var backoff = RetryBackoff(base: .seconds(1), cap: .seconds(300))
    /// How long transient upstream failures are retried before the message fails: the send path sets each message's
    /// deadline to its acceptance (or schedule) time plus this.
    package var retryDeadline: Duration = .seconds(86_400)
    /// How long after an attempt in doubt (its answer lost) the upstream is asked whether it took the message: the
    /// upstream may still be working on a call the client gave up on, and a look at its report table before it is done
    /// would wrongly find nothing. Also the shortest wait before such a message is looked at again.
    package var inDoubtSettle: Duration = .seconds(30)
    /// Rows of the upstream's report table (`action=rapport&aantal=`) read to resolve messages in doubt: the more,
    /// the longer after an attempt its absence can still be proven on a busy account.
    package var inDoubtReportRows: Int = 10_000
    /// Names this dispatcher in `message_outbox.leased_by`: unique per running dispatcher.
    package var worker: String = workerName()

    package init() {}

    /// The lease used for a connection: at least twice its request timeout, so that a call started within the first
    /// half of the lease (see ``startWindow(requestTimeout:)``) has been answered and recorded before the lease ends.
    package func lease(requestTimeout: Duration) -> Duration { max(lease, requestTimeout * 2) }

    /// How long after a claim its messages may still start: a call started later might outlive the lease.
    package func startWindow(requestTimeout: Duration) -> Duration {
        (lease(requestTimeout: requestTimeout) - requestTimeout) / 2
    }
}

/// Sends queued messages upstream: the worker side of the transactional outbox (docs/sending.md, "Dispatch").
///
/// Every poll interval it looks up the active upstream connections and keeps one lane per connection. A lane claims
/// due messages of its connection in batches (``OutboxRepository/claim(connectionID:limit:lease:worker:)``) — when
/// idle, at the next poll or at once when ``DispatchSignal/wake()`` is called — and sends each with one `gateway.php` call
/// (`delivery=ja`, `referentie` = the message id), at most `concurrency` calls in flight and `rate_limit_per_second`
/// calls started per second — both **per instance**: N instances may use N times the connection's figures. Results go
/// to a recorder that commits whatever has completed in one transaction while the previous one commits (group commit),
/// so an upstream answer is recorded one commit after it arrives.
///
/// What an error does follows `Gateway1601Error.disposition`: `failMessage` fails the message and voids its
/// reservations; `retry` waits with ``RetryBackoff`` until the message's deadline, then fails it; `pauseConnection`
/// pauses the connection (audited, `system:dispatcher`) and hands the message and the lane's unsent claims back,
/// still queued; the lane stops until an admin resumes the connection.
///
/// Several dispatchers never claim the same message while each finishes within its lease. A message whose attempt may
/// have reached the upstream without its answer being recorded (a timeout, a lost connection, a worker that died: the
/// outbox row's `possibly_sent`) is **in doubt** and is never sent again blindly: its next claim, no sooner than
/// ``DispatcherSettings/inDoubtSettle`` after the attempt, only reads the upstream's report table
/// (``resolveInDoubt(_:through:client:recorder:)``). Found there, it is recorded as submitted with the id found; proven
/// absent, it is due again and sent by the claim after; otherwise it keeps waiting (and asking) until its deadline, and
/// then fails unsent (docs/sending.md, "Sends in doubt").
///
/// Graceful shutdown stops claiming, lets calls in flight finish and records them; cancellation behaves like a crash.
package final class Dispatcher: Service, Sendable {
    package let outbox: OutboxRepository
    package let connections: UpstreamConnectionRepository
    package let clients: UpstreamClients
    package let signal: DispatchSignal
    package let settings: DispatcherSettings
    package let metrics: ServiceMetrics
    package let logger: Logger
    private let stopping = Atomic<Bool>(false)

    package init(
        connections: UpstreamConnectionRepository, clients: UpstreamClients, signal: DispatchSignal,
        settings: DispatcherSettings,
        metrics: ServiceMetrics, logger: Logger
    ) {
        self.outbox = OutboxRepository(pool: connections.pool)
        self.connections = connections
        self.clients = clients
        self.signal = signal
        self.settings = settings
        self.metrics = metrics
        var logger = logger
        logger[metadataKey: "worker"] = "\(settings.worker)"
        self.logger = logger
    }

    package func run() async throws {
        let recorder = ResultRecorder(outbox: outbox, worker: settings.worker, metrics: metrics, logger: logger)
        await withTaskCancellationOrGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await recorder.run() }
                await supervise(recorder)
                recorder.finish()
            }
        } onCancelOrGracefulShutdown: {
            self.stopping.store(true, ordering: .relaxed)
            self.signal.wake()
        }
    }

    private var isStopping: Bool { stopping.load(ordering: .relaxed) }

    // MARK: - Connections

    /// Keeps one lane per active connection until shutdown: starts lanes for connections that became active, stops
    /// those whose connection was paused, removed or changed (a changed one gets a new lane with its new settings).
    private func supervise(_ recorder: ResultRecorder) async {
        await withDiscardingTaskGroup { group in
            var lanes: [UUID: Lane] = [:]
            /// Connections this instance cannot open (password sealed under another key), by the version it failed on.
            var unusable: [UUID: Date] = [:]
            while !isStopping {
                do {
                    let active = try await outbox.activeConnections()
                    let versions = Dictionary(uniqueKeysWithValues: active.map { ($0.id, $0.updatedAt) })
                    var stopped = false
                    for (id, lane) in lanes {
                        if lane.isFinished {
                            lanes[id] = nil
                        } else if versions[id] != lane.connection.record.updatedAt {
                            if lane.stop() { stopped = true }
                        }
                    }
                    if stopped { signal.wake() }
                    for (id, version) in active where lanes[id] == nil && unusable[id] != version {
                        guard let connection = try await connections.connection(id: id), !connection.isPaused else {
                            continue
                        }
                        let client: Gateway1601Client
                        do {
                            client = try clients.client(for: connection)
                        } catch {
                            unusable[id] = version
                            logger.error(
                                "upstream connection cannot be used by this instance",
                                metadata: ["connection": "\(connection.record.name)", "error": "\(error)"])
                            continue
                        }
                        let lane = Lane(connection: connection)
                        lanes[id] = lane
                        group.addTask { await self.drive(lane, client: client, recorder: recorder) }
                    }
                } catch {
                    logDatabaseProblem(error, doing: "loading upstream connections")
                }
                try? await Task.sleep(for: settings.pollInterval)
            }
            for lane in lanes.values { lane.stop() }
        }
    }

    // MARK: - Lanes

    /// One connection's sending: claim, pace, send, until the lane is stopped, its connection paused, or shutdown.
    /// Claims it cannot start in time (or at all, when stopping) are released unattempted.
    private func drive(_ lane: Lane, client: Gateway1601Client, recorder: ResultRecorder) async {
        defer { lane.finished() }
        let record = lane.connection.record
        let timeout = Duration.milliseconds(record.requestTimeoutMilliseconds)
        let lease = settings.lease(requestTimeout: timeout)
        let startWindow = settings.startWindow(requestTimeout: timeout)
        let spacing = Duration.seconds(1) / record.rateLimitPerSecond
        var pacer = StartPacer(ratePerSecond: record.rateLimitPerSecond, now: ContinuousClock.now)
        // No more than can be started within the window at the rate limit.
        let claimSize = max(1, min(settings.batchSize, Int(startWindow / spacing)))
        /// One upstream call to start: a message's send, or one look at the report table for the claim's messages in
        /// doubt.
        enum Job {
            case send(ClaimedMessage)
            case resolve([ClaimedMessage])
            var messages: [ClaimedMessage] {
                switch self {
                case .send(let message): [message]
                case .resolve(let messages): messages
                }
            }
        }
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            /// Set when the last claim found less than it asked for: wait for a wake or the poll interval first.
            var idleSince: UInt64?
            while mayContinue(lane) {
                if let generation = idleSince {
                    await signal.wait(since: generation, timeout: settings.pollInterval)
                    idleSince = nil
                    continue
                }
                // Claim only with a free slot: claimed messages wait as little as possible.
                if running >= record.concurrency {
                    await group.next()
                    running -= 1
                    continue
                }
                let generation = signal.generation
                // The lease runs from the claim's own clock reading: measure the start window from before it.
                let claimStarted = ContinuousClock.now
                let claimed: [ClaimedMessage]
                do {
                    claimed = try await outbox.claim(
                        connectionID: record.id, limit: claimSize, lease: lease, settle: settings.inDoubtSettle,
                        worker: settings.worker)
                } catch {
                    logDatabaseProblem(error, doing: "claiming messages")
                    idleSince = generation
                    continue
                }
                if claimed.count < claimSize { idleSince = generation }
                let startBy = claimStarted + startWindow
                var jobs: [Job] = []
                var inDoubt: [ClaimedMessage] = []
                for message in claimed {
                    guard message.status == .queued else {
                        logger.error(
                            "outbox row of a message that is not queued",
                            metadata: ["message": "\(message.messageID)", "status": "\(message.status.rawValue)"])
                        recorder.submit([
                            DispatchResult(messageID: message.messageID, attempt: message.attempt, outcome: .discarded)
                        ])
                        continue
                    }
                    if message.wasPossiblySent { inDoubt.append(message) } else { jobs.append(.send(message)) }
                }
                // The look at the report table first: it is one call for all of them.
                if !inDoubt.isEmpty { jobs.insert(.resolve(inDoubt), at: 0) }
                var index = 0
                while index < jobs.count {
                    if running >= record.concurrency {
                        await group.next()
                        running -= 1
                        continue
                    }
                    guard mayContinue(lane), ContinuousClock.now < startBy else { break }
                    if let wait = pacer.take(now: ContinuousClock.now) {
                        try? await Task.sleep(until: wait)
                        continue
                    }
                    let job = jobs[index]
                    index += 1
                    running += 1
                    switch job {
                    case .send(let message):
                        group.addTask { await self.send(message, through: lane, client: client, recorder: recorder) }
                    case .resolve(let messages):
                        group.addTask {
                            await self.resolveInDoubt(messages, through: lane, client: client, recorder: recorder)
                        }
                    }
                }
                if index < jobs.count {
                    recorder.submit(
                        jobs[index...].flatMap(\.messages).map { message in
                            DispatchResult(
                                messageID: message.messageID, attempt: message.attempt,
                                outcome: .released(attempted: false, possiblySent: message.wasPossiblySent, error: nil))
                        })
                }
            }
        }
    }

    private func mayContinue(_ lane: Lane) -> Bool { !isStopping && lane.isRunning }

    /// One upstream call for one message, and its result handed to the recorder; a span `dispatch message` in the
    /// trace of the request that accepted it, when tracing is on.
    private func send(
        _ message: ClaimedMessage, through lane: Lane, client: Gateway1601Client, recorder: ResultRecorder
    ) async {
        guard let tracer = client.tracer else {
            return await call(message, through: lane, client: client, recorder: recorder)
        }
        var parent = InstrumentationContext.topLevel
        if let traceparent = message.traceparent {
            tracer.extract(["traceparent": traceparent], into: &parent, using: TraceparentExtractor())
        }
        await tracer.withAnySpan("dispatch message", context: parent, ofKind: .consumer) { span in
            span.attributes["message.id"] = message.messageID.apiString
            span.attributes["dispatch.attempt"] = message.attempt
            await call(message, through: lane, client: client, recorder: recorder)
        }
    }

    private func call(
        _ message: ClaimedMessage, through lane: Lane, client: Gateway1601Client, recorder: ResultRecorder
    ) async {
        let connection = lane.connection.record
        let request = Gateway1601.SendRequest(
            message: message.text, recipients: .numbers([message.recipient]), sender: message.sender,
            deliveryReport: true,
            long: message.long, reference: message.messageID.apiString)
        let started = ContinuousClock.now
        let outcome: DispatchResult.Outcome
        do throws(Gateway1601Error) {
            let answer = try await client.send(request)
            // With delivery=ja and one number the client guarantees exactly one id.
            guard let upstreamID = answer.messageIDs.first else {
                throw .malformedAnswer(GatewayAnswer.ok(answer.messageIDs))
            }
            metrics.recordUpstreamCall(
                connection: connection.name, result: "ok", duration: ContinuousClock.now - started)
            outcome = .submitted(upstreamID: upstreamID, connectionID: connection.id)
        } catch {
            metrics.recordUpstreamCall(
                connection: connection.name, error: error, duration: ContinuousClock.now - started)
            let code: Int? = if case .gateway(let code) = error { code.rawValue } else { nil }
            // Only messages not in doubt are sent: whether this attempt may have reached the upstream is all there is.
            let possiblySent = error.mayHaveBeenProcessed
            let metadata: Logger.Metadata = [
                "message": "\(message.messageID)", "attempt": "\(message.attempt)", "connection": "\(connection.name)",
                "error": "\(error)",
            ]
            switch error.disposition {
            case .failMessage:
                logger.info("upstream refused a message for good", metadata: metadata)
                outcome = .failed(code: code, detail: error.description)
            case .retry:
                logger.info("upstream call failed for now", metadata: metadata)
                // In doubt: its next claim only asks, once the upstream has had time to finish the call.
                let delay = settings.backoff.delay(afterAttempt: message.attempt)
                outcome = .retry(
                    code: code, error: error.description, possiblySent: possiblySent,
                    delay: possiblySent ? max(delay, settings.inDoubtSettle) : delay)
            case .pauseConnection:
                outcome = await pause(
                    lane, after: error, message: message, possiblySent: possiblySent, metadata: metadata)
            }
        }
        recorder.submit([DispatchResult(messageID: message.messageID, attempt: message.attempt, outcome: outcome)])
    }

    /// Pauses the lane's connection after an account-level error (before the message is handed back, so that no other
    /// instance claims it and hits the same error); when the pause cannot be written, the message is retried instead.
    private func pause(
        _ lane: Lane, after error: Gateway1601Error, message: ClaimedMessage, possiblySent: Bool,
        metadata: Logger.Metadata
    ) async -> DispatchResult.Outcome {
        let connection = lane.connection.record
        do {
            let result = try await connections.pause(id: connection.id, after: error)
            lane.pause()
            if case .paused(let paused)? = result {
                let code: Int? = if case .gateway(let code) = error { code.rawValue } else { nil }
                metrics.recordDispatchPause(connection: connection.name, code: code)
                logger.error(
                    "upstream connection paused: nothing is sent through it until an admin resumes it",
                    metadata: metadata.merging(["reason": "\(paused.pauseReason ?? "")"]) { $1 })
            }
            return .released(attempted: true, possiblySent: possiblySent, error: error.description)
        } catch let failure {
            logger.error(
                "pausing the upstream connection failed", metadata: metadata.merging(["failure": "\(failure)"]) { $1 })
            return .retry(
                code: nil, error: error.description, possiblySent: possiblySent,
                delay: settings.backoff.delay(afterAttempt: message.attempt))
        }
    }

    // MARK: - Sends in doubt

    /// Rows of the report table the upstream's document shows (`aantal=100`): a table shorter than that (and than
    /// asked for) lists every message of the account. A longer request might be cut short by an upstream limit the
    /// document does not mention, so only this size proves completeness by itself.
    static let documentedReportRows = 100

    /// Rows asked for at the first look: enough to reach back past an attempt on all but busy accounts, and a small
    /// table for the upstream to build.
    static let firstReportRows = 1_000

    /// Finds out whether the upstream took `messages` (a claim's messages in doubt). A message a delivery report has
    /// already named (``ClaimedMessage/reportedUpstreamID``) was taken: recorded as submitted under that id. For the
    /// others, a look at the upstream's report table (`action=rapport`; ``firstReportRows`` rows, and all
    /// ``DispatcherSettings/inDoubtReportRows`` only when that table is full and proves too little), which lists the
    /// account's latest messages, newest first, each with the `referentie` it was sent with (our message id):
    /// - listed: the upstream took it; recorded as submitted under the (first) id listed, with what was found in its
    ///   history;
    /// - not listed, and the table provably reaches back past the attempt in doubt: not taken; due again at once. The
    ///   proof is a table shorter than both the rows asked for and ``documentedReportRows`` (the whole account), or a
    ///   listed message of this connection that we recorded as submitted no later than the attempt started (the table
    ///   is ordered by acceptance, so any message taken after it is listed above it);
    /// - otherwise (the table cannot be read, or does not reach back far enough): still in doubt, asked again after a
    ///   backoff (at least the settle time), and failed unsent at the deadline.
    private func resolveInDoubt(
        _ messages: [ClaimedMessage], through lane: Lane, client: Gateway1601Client, recorder: ResultRecorder
    ) async {
        let connection = lane.connection.record
        var results: [DispatchResult] = messages.compactMap { message in
            message.reportedUpstreamID.map { upstreamID in
                DispatchResult(
                    messageID: message.messageID, attempt: message.attempt,
                    outcome: .found(
                        upstreamID: upstreamID, connectionID: connection.id,
                        detail: "in doubt; a delivery report from the upstream names it as \(upstreamID)"))
            }
        }
        let messages = messages.filter { $0.reportedUpstreamID == nil }
        guard !messages.isEmpty else { return recorder.submit(results) }
        /// Still in doubt: asked again after a backoff, no sooner than the settle time (a table read again at once
        /// would not reach back further).
        func stillInDoubt(_ messages: [ClaimedMessage], _ reason: String, code: Int? = nil) -> [DispatchResult] {
            messages.map { message in
                DispatchResult(
                    messageID: message.messageID, attempt: message.attempt,
                    outcome: .retry(
                        code: code, error: "in doubt, not sent again: \(reason)", possiblySent: true,
                        delay: max(settings.backoff.delay(afterAttempt: message.attempt), settings.inDoubtSettle)))
            }
        }
        // A short table first (it is built and sent whole by the upstream at every look); the full one only when the
        // short one is full and proves too little.
        var unresolved = messages
        var lastReason = ""
        for asked in Set([min(Self.firstReportRows, settings.inDoubtReportRows), settings.inDoubtReportRows]).sorted() {
            let started = ContinuousClock.now
            let table: [ReportEntry]
            do throws(Gateway1601Error) {
                table = try await client.report(count: asked)
                metrics.recordUpstreamCall(
                    connection: connection.name, result: "ok", duration: ContinuousClock.now - started)
            } catch {
                metrics.recordUpstreamCall(
                    connection: connection.name, error: error, duration: ContinuousClock.now - started)
                logger.warning(
                    "the upstream's report table could not be read: messages in doubt wait",
                    metadata: [
                        "connection": "\(connection.name)", "messages": "\(unresolved.count)", "error": "\(error)",
                    ])
                let code: Int? = if case .gateway(let code) = error { code.rawValue } else { nil }
                recorder.submit(
                    results
                        + stillInDoubt(
                            unresolved, "the upstream's report table could not be read (\(error))", code: code))
                return
            }
            let listed = Dictionary(grouping: table, by: \.reference)
            let wholeAccount = table.count < min(asked, Self.documentedReportRows)
            var reachesBackTo: Date?
            if !wholeAccount, unresolved.contains(where: { listed[$0.messageID.apiString] == nil }) {
                do {
                    reachesBackTo = try await outbox.earliestSubmission(
                        upstreamIDs: table.map(\.smsID), connectionID: connection.id)
                } catch {
                    logDatabaseProblem(error, doing: "reading how far back the upstream's report table reaches")
                    recorder.submit(
                        results
                            + stillInDoubt(
                                unresolved, "how far back the upstream's report table reaches could not be read"))
                    return
                }
            }
            var left: [ClaimedMessage] = []
            for message in unresolved {
                let outcome: DispatchResult.Outcome
                if let entries = listed[message.messageID.apiString], let first = entries.last {
                    var detail = "in doubt; found in the upstream's report table as \(first.smsID)"
                    if entries.count > 1 {
                        detail +=
                            " (listed \(entries.count) times: \(entries.reversed().map(\.smsID).joined(separator: ", ")))"
                    }
                    outcome = .found(upstreamID: first.smsID, connectionID: connection.id, detail: detail)
                } else if wholeAccount {
                    outcome = .notTaken(
                        detail:
                            "in doubt; not in the upstream's report table, which lists all \(table.count) messages of the account: sent again"
                    )
                } else if let reachesBackTo, let attemptedAt = message.attemptedAt, reachesBackTo <= attemptedAt {
                    outcome = .notTaken(
                        detail:
                            "in doubt; not in the upstream's report table of its last \(table.count) messages, which reaches back past the attempt: sent again"
                    )
                } else {
                    left.append(message)
                    continue
                }
                results.append(DispatchResult(messageID: message.messageID, attempt: message.attempt, outcome: outcome))
            }
            unresolved = left
            lastReason =
                "the upstream's report table of its last \(table.count) messages does not reach back to the attempt"
            // A table shorter than asked holds everything there is: a longer one would not reach back further.
            if unresolved.isEmpty || table.count < asked { break }
        }
        results += stillInDoubt(unresolved, lastReason)
        logger.info(
            "messages in doubt looked up",
            metadata: [
                "connection": "\(connection.name)", "messages": "\(results.count)",
                "found": "\(results.count(where: { if case .found = $0.outcome { true } else { false } }))",
                "notTaken": "\(results.count(where: { if case .notTaken = $0.outcome { true } else { false } }))",
            ])
        recorder.submit(results)
    }

    private func logDatabaseProblem(_ error: any Error, doing what: String) {
        if Task.isCancelled || error is CancellationError { return }
        if let error = error as? PostgresError, error.sqlState == "42P01" {
            // undefined_table: `serve --migrate` is still applying the schema.
            logger.debug("dispatcher waits for the schema", metadata: ["error": "\(error)"])
            return
        }
        logger.warning("dispatcher: \(what) failed", metadata: ["error": "\(error)"])
    }
}

/// One connection's lane: the connection as it was loaded, and whether the lane should go on.
private final class Lane: Sendable {
    let connection: UpstreamConnection
    private let state = Mutex<(stopped: Bool, paused: Bool, finished: Bool)>((false, false, false))

    init(connection: UpstreamConnection) {
        self.connection = connection
    }

    /// Neither stopped nor paused.
    var isRunning: Bool { state.withLock { !$0.stopped && !$0.paused } }
    var isFinished: Bool { state.withLock { $0.finished } }

    /// Asks the lane to stop; whether it was running.
    @discardableResult
    func stop() -> Bool {
        state.withLock { state in
            defer { state.stopped = true }
            return !state.stopped && !state.finished
        }
    }

    /// The connection was paused: start nothing more.
    func pause() { state.withLock { $0.paused = true } }

    func finished() { state.withLock { $0.finished = true } }
}

/// Records dispatch results in batches: whatever completed while the previous batch was being committed goes into the
/// next transaction (group commit), so the window between an upstream answer and its record stays one commit wide
/// however many calls complete at once.
///
/// A batch that fails on a connection or server problem is retried until it is recorded (an `OK <id>` must not be
/// lost); one that fails on its data is recorded one result at a time, and a single result that cannot be recorded is
/// logged and dropped (its message is claimed again after the lease).
package final class ResultRecorder: Sendable {
    private struct State {
        var pending: [DispatchResult] = []
        var waiter: CheckedContinuation<Void, Never>?
        var finishing = false
    }

    private let state = Mutex(State())
    package let outbox: OutboxRepository
    package let worker: String
    package let metrics: ServiceMetrics
    package let logger: Logger
    /// The most results in one transaction.
    package let batchLimit = 1_000

    package init(outbox: OutboxRepository, worker: String, metrics: ServiceMetrics, logger: Logger) {
        self.outbox = outbox
        self.worker = worker
        self.metrics = metrics
        self.logger = logger
    }

    /// Queues results for the next transaction.
    package func submit(_ results: [DispatchResult]) {
        guard !results.isEmpty else { return }
        let waiter = state.withLock { state in
            state.pending.append(contentsOf: results)
            return state.waiter.take()
        }
        waiter?.resume()
    }

    /// Ends ``run()`` once everything submitted is recorded.
    package func finish() {
        let waiter = state.withLock { state in
            state.finishing = true
            return state.waiter.take()
        }
        waiter?.resume()
    }

    /// Records batches until ``finish()`` and nothing is left.
    package func run() async {
        while let batch = await next() {
            await record(batch)
        }
    }

    /// The next batch; nil when finishing and nothing is left.
    private func next() async -> [DispatchResult]? {
        while true {
            enum Step {
                case batch([DispatchResult])
                case done, wait
            }
            let step = state.withLock { state -> Step in
                if !state.pending.isEmpty {
                    let batch = Array(state.pending.prefix(batchLimit))
                    state.pending.removeFirst(batch.count)
                    return .batch(batch)
                }
                return state.finishing ? .done : .wait
            }
            switch step {
            case .batch(let batch): return batch
            case .done: return nil
            case .wait:
                await withCheckedContinuation { continuation in
                    let resumeNow = state.withLock { state -> Bool in
                        if !state.pending.isEmpty || state.finishing { return true }
                        state.waiter = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            }
        }
    }

    private func record(_ batch: [DispatchResult]) async {
        var failures = 0
        while true {
            do {
                let recorded = try await outbox.record(batch, worker: worker)
                metrics.recordDispatch(recorded)
                log(recorded)
                return
            } catch {
                if Task.isCancelled || error is CancellationError {
                    logger.error("dispatch results not recorded (cancelled)", metadata: ["results": "\(batch)"])
                    return
                }
                if Self.isCausedByData(error) {
                    if batch.count > 1 {
                        for result in batch { await record([result]) }
                    } else {
                        logger.error(
                            "dispatch result cannot be recorded: dropped",
                            metadata: ["result": "\(batch)", "error": "\(error)"])
                    }
                    return
                }
                failures += 1
                logger.warning(
                    "recording dispatch results failed; retrying",
                    metadata: ["error": "\(error)", "results": "\(batch.count)"])
                try? await Task.sleep(for: min(.seconds(5), .milliseconds(50) * (1 << min(failures, 7))))
            }
        }
    }

    /// Whether retrying the same data unchanged can only fail again: data and integrity errors, SQL errors, ledger refusals.
    package static func isCausedByData(_ error: any Error) -> Bool {
        if error is LedgerFailure || error is DecodingError { return true }
        guard let error = error as? PostgresError, error.kind == .server, let state = error.sqlState else {
            return false
        }
        return ["22", "23", "42", "LE"].contains(String(state.prefix(2)))
    }

    private func log(_ recorded: RecordedResults) {
        if recorded.lateSubmissions > 0 {
            logger.warning(
                "the upstream accepted messages already submitted, failed or cancelled (duplicates): kept as late_submission events",
                metadata: ["count": "\(recorded.lateSubmissions)"])
        }
        if recorded.stale > 0 {
            logger.warning(
                "results of claims another worker has taken over were ignored", metadata: ["count": "\(recorded.stale)"]
            )
        }
        logger.debug(
            "dispatch results recorded",
            metadata: [
                "submitted": "\(recorded.submitted)", "failed": "\(recorded.failed)", "retried": "\(recorded.retried)",
                "released": "\(recorded.released)", "voided": "\(recorded.voidedReservations)",
            ])
    }
}

/// Paces a lane's call starts at its connection's rate with a token bucket: one token every `1 / rate` seconds,
/// holding at most 1 % of a second's tokens (at least one). Every call whose token is there starts at once; a lane
/// sleeps only when it is ahead of the rate (one timer wait per call held a lane to a few hundred calls a second).
/// So any window of `t` seconds holds at most `rate × t + burst + 1` starts.
package struct StartPacer: Sendable {
    package let spacing: Duration
    package let burst: Duration
    /// When the bucket has its next token; unused tokens accrue up to `burst`.
    private var nextToken: ContinuousClock.Instant

    package init(ratePerSecond: Int, now: ContinuousClock.Instant) {
        spacing = Duration.seconds(1) / max(1, ratePerSecond)
        burst = spacing * max(1, ratePerSecond / 100)
        nextToken = now
    }

    /// Takes a token and answers nil when one is there at `now`; otherwise takes nothing and answers when the next
    /// one will be.
    package mutating func take(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        nextToken = max(nextToken, now - burst)
        guard nextToken <= now else { return nextToken }
        nextToken += spacing
        return nil
    }
}
