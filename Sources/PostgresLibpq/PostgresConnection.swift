import CLibpq
import Logging
import Synchronization
import Tracing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One libpq connection. Every blocking libpq call runs on the connection's own thread,
/// never on Swift's cooperative executor.
///
/// A connection is used by one task at a time: the pool hands it out exclusively
/// (`PostgresPool.withConnection`) and takes it back when the closure returns.
public final class PostgresConnection: @unchecked Sendable {
    /// The libpq handle. Only touched from inside `blocking(_:)`, by one thread at a time.
    private let pgconn: OpaquePointer
    /// Runs every libpq call of this connection.
    private let thread: LibpqThread
    let logger: Logger
    /// Handle for cancelling the running statement from another thread (`PQcancel` is thread-safe).
    private let cancelState: Mutex<CancelState>
    /// Set when the connection returns to the pool idle; the next use checks it is still alive.
    private let needsLivenessCheck = Atomic<Bool>(false)
    /// Receives server notices and warnings for the log instead of libpq's default stderr print.
    private let notices: NoticeLogger
    /// Statements prepared on this session; used only from inside `blocking(_:)`.
    private let statements: PreparedStatementCache
    /// The `BEGIN` of a transaction that has not sent a statement yet: it goes out with the first one, in the same
    /// round trip (`withTransaction`).
    private let pendingBegin = Mutex<PostgresQuery?>(nil)
    /// Makes a span of each statement when set (see `PostgresPoolConfiguration.tracer`).
    private let tracer: (any Tracer)?

    /// `PGcancel` objects may be used from any thread; the mutex guards replacing it.
    private struct CancelState: ~Copyable, @unchecked Sendable {
        var handle: OpaquePointer?
        var statementRunning = false
        /// Set by a cancellation; the statement's job then does not start (cleared per statement).
        var cancelRequested = false
    }

    /// Opens a connection on a new thread of its own.
    static func connect(configuration: PostgresConfiguration, logger: Logger, tracer: (any Tracer)? = nil) async throws
        -> PostgresConnection
    {
        let parameters = configuration.effectiveParameters
        let thread = LibpqThread(name: "libpq")
        do {
            let opened = try await thread.run { () throws -> UnsafeSendable<OpaquePointer> in
                let connection = withKeywordArrays(parameters) { keywords, values in
                    PQconnectdbParams(keywords, values, 0)
                }
                guard let connection else {
                    throw PostgresError(kind: .connection, message: "out of memory while connecting")
                }
                guard PQstatus(connection) == CONNECTION_OK else {
                    let error = PostgresError.connection(connection, fallback: "could not connect")
                    PQfinish(connection)
                    throw error
                }
                return UnsafeSendable(connection)
            }
            return PostgresConnection(
                pgconn: opened.value, thread: thread, statementCacheCapacity: configuration.preparedStatementCacheSize,
                logger: logger, tracer: tracer)
        } catch {
            thread.stop()
            throw error
        }
    }

    private init(
        pgconn: OpaquePointer, thread: LibpqThread, statementCacheCapacity: Int, logger: Logger, tracer: (any Tracer)?
    ) {
        self.pgconn = pgconn
        self.tracer = tracer
        self.thread = thread
        self.statements = PreparedStatementCache(capacity: statementCacheCapacity)
        self.logger = logger
        self.cancelState = Mutex(CancelState(handle: PQgetCancel(pgconn)))
        self.notices = NoticeLogger(logger: logger)
        PQsetNoticeReceiver(
            pgconn,
            { context, result in
                guard let context, let result else { return }
                Unmanaged<NoticeLogger>.fromOpaque(context).takeUnretainedValue().log(result)
            }, Unmanaged.passUnretained(notices).toOpaque())
    }

    /// The handle is finished on the connection's own thread, which then ends.
    deinit {
        let handles = cancelState.withLock { state in UnsafeSendable((pgconn, state.handle)) }
        thread.submit {
            if let cancel = handles.value.1 { PQfreeCancel(cancel) }
            PQfinish(handles.value.0)
        }
        thread.stop()
    }

    // MARK: - State

    /// False once libpq has seen the connection break; the pool then discards it.
    public var isUsable: Bool { PQstatus(pgconn) == CONNECTION_OK }

    /// True when the session is outside any transaction block.
    var isIdleInTransactionTerms: Bool { PQtransactionStatus(pgconn) == PQTRANS_IDLE }

    /// The server's process id for this session (`pg_backend_pid()`).
    public var backendPID: Int32 { PQbackendPID(pgconn) }

    func markIdle() {
        needsLivenessCheck.store(true, ordering: .relaxed)
    }

    // MARK: - Statements

    /// Runs one statement with its bind parameters and returns its rows.
    @discardableResult
    public func query(_ query: PostgresQuery) async throws -> PostgresRows {
        guard let tracer else { return try await run(query) }
        return try await tracer.withAnySpan(Self.operation(of: query.sql), ofKind: .client) { span in
            span.attributes["db.system"] = "postgresql"
            span.attributes["db.statement"] = Self.statementText(query.sql)
            return try await run(query)
        }
    }

    /// The first word of `sql` (`SELECT`, `WITH`, `INSERT`…): a statement span's name.
    static func operation(of sql: String) -> String {
        String(sql.drop(while: \.isWhitespace).prefix(while: { $0.isLetter }).uppercased())
    }

    /// `sql` with its whitespace runs collapsed, at most 1 000 characters: the values are bind parameters, never here.
    static func statementText(_ sql: String) -> String {
        String(sql.split(whereSeparator: \.isWhitespace).joined(separator: " ").prefix(1_000))
    }

    private func run(_ query: PostgresQuery) async throws -> PostgresRows {
        if let begin = takePendingBegin() { return try await runPipeline([begin, query])[1] }
        return try await blocking(cancellable: true) { [self] pgconn, wasIdle in
            do {
                return try statements.execute(query, on: pgconn)
            } catch let error as PostgresError where wasIdle && error.isServerTermination && !error.followedSuccess {
                // The server ended this idle session just as we used it (its FATAL overtook our
                // statement). With the extended protocol a statement outside a transaction block
                // commits only after its CommandComplete; none came, so nothing was done and the
                // statement can run once more on a new session.
                try reconnect(reason: "the server ended the session as it was reused")
                return try statements.execute(query, on: pgconn)
            }
        }
    }

    /// Runs `queries` in one round trip and returns their rows in order (libpq's pipeline mode): for independent
    /// statements, such as the reads a request makes before it decides anything, or statements of one transaction that
    /// do not need each other's answers.
    ///
    /// Outside a transaction block the statements form one implicit transaction: they read one snapshot, and a failure
    /// undoes the ones before it. Inside `withTransaction` they are part of that transaction. The first error is
    /// thrown; the statements after it did not run.
    public func pipeline(_ queries: [PostgresQuery]) async throws -> [PostgresRows] {
        guard !queries.isEmpty else { return [] }
        guard let tracer else { return try await runPipeline(queries) }
        return try await tracer.withAnySpan("PIPELINE", ofKind: .client) { span in
            span.attributes["db.system"] = "postgresql"
            span.attributes["db.statement"] = queries.map { Self.statementText($0.sql) }.joined(separator: "; ")
            return try await runPipeline(queries)
        }
    }

    private func runPipeline(_ queries: [PostgresQuery]) async throws -> [PostgresRows] {
        if let begin = takePendingBegin() { return Array(try await runPipeline([begin] + queries).dropFirst()) }
        return try await blocking(cancellable: true) { [self] pgconn, wasIdle in
            do {
                return try statements.pipeline(queries, on: pgconn)
            } catch let error as PostgresError where wasIdle && error.isServerTermination && !error.followedSuccess {
                // As in `query(_:)`: the server ended this idle session as it was reused. The implicit transaction
                // commits only at the Sync, after every statement's answer; none came, so nothing was done.
                try reconnect(reason: "the server ended the session as it was reused")
                return try statements.pipeline(queries, on: pgconn)
            } catch {
                // A pipeline that broke off leaves the session out of step with its answers: a new session (the
                // server rolls back whatever the old one had open, and the caller gets this error).
                if PQpipelineStatus(pgconn) != PQ_PIPELINE_OFF {
                    try? reconnect(reason: "a pipeline broke off")
                }
                throw error
            }
        }
    }

    /// Runs SQL text that may hold several statements (simple query protocol, no parameters),
    /// e.g. a migration file. Every result is drained; the first error is thrown.
    public func execute(script: String) async throws {
        try await sendPendingBegin()
        _ = try await blocking(cancellable: true) { pgconn, _ in
            guard PQsendQuery(pgconn, script) == 1 else {
                throw PostgresError.connection(pgconn, fallback: "could not send statement")
            }
            _ = try PostgresConnection.collectResults(pgconn)
        }
    }

    /// Runs `work` on the connection's thread with exclusive use of the libpq handle.
    func blocking<Result: Sendable>(
        cancellable: Bool = false,
        _ work: @escaping @Sendable (OpaquePointer, _ wasIdle: Bool) throws -> Result
    ) async throws -> Result {
        let pgconn = UnsafeSendable(self.pgconn)
        let checkFirst = needsLivenessCheck.exchange(false, ordering: .relaxed)
        let operation = { @Sendable () throws -> Result in
            if checkFirst { try self.ensureAlive() }
            return try work(pgconn.value, checkFirst)
        }
        guard cancellable else { return try await thread.run(operation) }
        return try await withTaskCancellationHandler {
            try Task.checkCancellation()
            cancelState.withLock { state in
                state.statementRunning = true
                state.cancelRequested = false
            }
            defer { cancelState.withLock { $0.statementRunning = false } }
            return try await thread.run {
                // Cancelled while queued: nothing was sent, so nothing needs undoing.
                if self.cancelState.withLock({ $0.cancelRequested }) { throw CancellationError() }
                return try operation()
            }
        } onCancel: {
            self.cancelRunningStatement()
        }
    }

    /// Asks the server to cancel the statement in progress, if one is.
    func cancelRunningStatement() {
        cancelState.withLock { state in
            guard state.statementRunning else { return }
            state.cancelRequested = true
            guard let handle = state.handle else { return }
            var buffer = [CChar](repeating: 0, count: 256)
            _ = PQcancel(handle, &buffer, Int32(buffer.count))
        }
    }

    /// Sends a cancel request whatever runs now (used to stop a COPY between two reads).
    func sendCancelRequest() {
        cancelState.withLock { state in
            guard let handle = state.handle else { return }
            var buffer = [CChar](repeating: 0, count: 256)
            _ = PQcancel(handle, &buffer, Int32(buffer.count))
        }
    }

    /// Detects a connection the server closed while it sat idle (terminated backend, restart)
    /// and re-establishes it before anything is sent on it. Runs on the connection's thread.
    private func ensureAlive() throws {
        // A healthy idle session has nothing to read: one non-blocking poll settles that.
        var descriptor = pollfd(fd: PQsocket(pgconn), events: Int16(POLLIN), revents: 0)
        if poll(&descriptor, 1, 0) == 0 { return }
        // Something arrived while idle (a terminated session gets a FATAL message, then EOF):
        // read it, let libpq parse it, and read again; only a read that finds EOF marks it bad.
        _ = PQconsumeInput(pgconn)
        _ = PQisBusy(pgconn)
        _ = PQconsumeInput(pgconn)
        // A FATAL means the session is over even if the close has not reached us yet.
        let doomed = notices.takeFatal()
        guard doomed || PQstatus(pgconn) != CONNECTION_OK else { return }
        try reconnect(reason: "the server closed the session while it was idle")
    }

    /// Replaces the session with a new one (same settings). Runs on the connection's thread.
    private func reconnect(reason: String) throws {
        logger.notice("reconnecting to the database", metadata: ["reason": "\(reason)"])
        PQreset(pgconn)
        statements.reset()
        _ = notices.takeFatal()
        guard PQstatus(pgconn) == CONNECTION_OK else {
            throw PostgresError.connection(pgconn, fallback: "could not reconnect")
        }
        cancelState.withLock { state in
            if let handle = state.handle { PQfreeCancel(handle) }
            state.handle = PQgetCancel(pgconn)
        }
    }

    // MARK: - Transactions

    /// Runs `body` in one transaction on this connection: commits when it returns, rolls back
    /// when it throws. No retry here; `PostgresPool.withTransaction` retries serialization failures.
    ///
    /// The `BEGIN` is sent with the body's first statement (or pipeline), in the same round trip; a body that sends no
    /// statement costs none.
    public func withTransaction<Result>(
        isolation: IsolationLevel = .readCommitted,
        readOnly: Bool = false,
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        pendingBegin.withLock {
            $0 = PostgresQuery(unescaped: "BEGIN ISOLATION LEVEL \(isolation.sql)\(readOnly ? " READ ONLY" : "")")
        }
        let result: Result
        do {
            result = try await body(self)
        } catch {
            // Not begun (no statement was sent): nothing to roll back.
            if takePendingBegin() == nil { await rollbackQuietly() }
            throw error
        }
        if takePendingBegin() != nil { return result }
        let commit: PostgresRows
        do {
            commit = try await query("COMMIT")
        } catch {
            await rollbackQuietly()
            throw error
        }
        // COMMIT of a transaction in which a statement failed answers ROLLBACK without an error.
        guard commit.commandTag == "COMMIT" else {
            throw PostgresError(
                kind: .transactionAborted, message: "the transaction was rolled back because a statement in it failed")
        }
        return result
    }

    private func takePendingBegin() -> PostgresQuery? {
        pendingBegin.withLock { $0.take() }
    }

    /// Sends a pending `BEGIN` on its own, for the paths that cannot carry it along (scripts, COPY).
    func sendPendingBegin() async throws {
        if let begin = takePendingBegin() { try await query(begin) }
    }

    private func rollbackQuietly() async {
        guard isUsable, !isIdleInTransactionTerms else { return }
        do {
            _ = try await blocking { pgconn, _ in try PostgresConnection.execute("ROLLBACK", on: pgconn) }
        } catch {
            logger.warning("ROLLBACK failed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: - libpq plumbing (called on the connection's thread)

    static func executePrepared(_ name: String, binds: [PostgresBindValue?], on pgconn: OpaquePointer) throws
        -> PostgresRows
    {
        guard sendPrepared(name, binds: binds, on: pgconn) == 1 else {
            throw PostgresError.connection(pgconn, fallback: "could not send statement")
        }
        return PostgresRows(handle: try collectResults(pgconn))
    }

    static func execute(_ query: PostgresQuery, on pgconn: OpaquePointer) throws -> PostgresRows {
        guard send(query, on: pgconn) == 1 else {
            throw PostgresError.connection(pgconn, fallback: "could not send statement")
        }
        return PostgresRows(handle: try collectResults(pgconn))
    }

    /// Sends the prepared statement `name` with `binds` (`PQsendQueryPrepared`); 1 when sent.
    static func sendPrepared(_ name: String, binds: [PostgresBindValue?], on pgconn: OpaquePointer) -> Int32 {
        binds.isEmpty
            ? PQsendQueryPrepared(pgconn, name, 0, nil, nil, nil, 0)
            : withBindArrays(binds) { count, _, values, lengths, formats in
                PQsendQueryPrepared(pgconn, name, count, values, lengths, formats, 0)
            }
    }

    /// Sends `query` unprepared (`PQsendQueryParams`); 1 when sent.
    static func send(_ query: PostgresQuery, on pgconn: OpaquePointer) -> Int32 {
        query.binds.isEmpty
            ? PQsendQueryParams(pgconn, query.sql, 0, nil, nil, nil, nil, 0)
            : withBindArrays(query.binds) { count, types, values, lengths, formats in
                PQsendQueryParams(pgconn, query.sql, count, types, values, lengths, formats, 0)
            }
    }

    /// Reads every result until libpq returns NULL; keeps the last successful one, throws the first error.
    static func collectResults(_ pgconn: OpaquePointer) throws -> ResultHandle {
        var last: ResultHandle?
        var firstError: PostgresError?
        while let result = PQgetResult(pgconn) {
            switch PQresultStatus(result) {
            case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
                last = ResultHandle(result)
            case PGRES_COPY_IN:
                PQclear(result)
                _ = PQputCopyEnd(pgconn, "COPY FROM STDIN must go through copyIn")
                if firstError == nil {
                    firstError = PostgresError(kind: .misuse, message: "COPY FROM STDIN must go through copyIn")
                }
            case PGRES_COPY_OUT:
                PQclear(result)
                drainCopyOut(pgconn)
                if firstError == nil {
                    firstError = PostgresError(kind: .misuse, message: "COPY TO STDOUT must go through copyOut")
                }
            default:
                if firstError == nil {
                    firstError = PostgresError.from(result: result, connection: pgconn)
                    firstError?.followedSuccess = last != nil
                }
                PQclear(result)
            }
            if PQstatus(pgconn) == CONNECTION_BAD { break }
        }
        if let firstError { throw firstError }
        guard let last else { throw PostgresError.connection(pgconn, fallback: "the server sent no result") }
        return last
    }

    static func drainCopyOut(_ pgconn: OpaquePointer) {
        var buffer: UnsafeMutablePointer<CChar>?
        while PQgetCopyData(pgconn, &buffer, 0) > 0 {
            if let buffer { PQfreemem(buffer) }
            buffer = nil
        }
    }
}

/// Logs server notices (`RAISE NOTICE`, warnings) at debug level, and remembers a FATAL that
/// arrived while the session sat idle: libpq reports that through the notice path, and it means
/// the server is ending the session.
final class NoticeLogger: Sendable {
    let logger: Logger
    private let fatalSeen = Atomic<Bool>(false)

    init(logger: Logger) {
        self.logger = logger
    }

    func log(_ result: OpaquePointer) {
        let message = PQresultErrorMessage(result).map { String(cString: $0).trimmingTrailingNewlines() } ?? ""
        let severity = PQresultErrorField(result, Int32(UInt8(ascii: "V"))).map { String(cString: $0) }
        if severity == "FATAL" || severity == "PANIC" { fatalSeen.store(true, ordering: .relaxed) }
        logger.debug("database notice", metadata: ["notice": "\(message)"])
    }

    /// Whether a FATAL arrived since the last call.
    func takeFatal() -> Bool {
        fatalSeen.exchange(false, ordering: .relaxed)
    }
}

/// How strictly concurrent transactions are isolated.
public enum IsolationLevel: Sendable {
    case readCommitted
    case repeatableRead
    case serializable

    var sql: String {
        switch self {
        case .readCommitted: "READ COMMITTED"
        case .repeatableRead: "REPEATABLE READ"
        case .serializable: "SERIALIZABLE"
        }
    }
}

/// Wraps a value that is safe to move between threads by construction here
/// (libpq handles owned by one connection, used by one thread at a time).
struct UnsafeSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// Builds NUL-terminated keyword/value C arrays for `PQconnectdbParams`, valid only inside `body`.
private func withKeywordArrays<Result>(
    _ parameters: [(keyword: String, value: String)],
    _ body: (UnsafePointer<UnsafePointer<CChar>?>, UnsafePointer<UnsafePointer<CChar>?>) -> Result
) -> Result {
    let keywords = parameters.map { strdup($0.keyword) }
    let values = parameters.map { strdup($0.value) }
    defer {
        for keyword in keywords { free(keyword) }
        for value in values { free(value) }
    }
    let keywordPointers = keywords.map { UnsafePointer($0) } + [nil]
    let valuePointers = values.map { UnsafePointer($0) } + [nil]
    return keywordPointers.withUnsafeBufferPointer { keywordBuffer in
        valuePointers.withUnsafeBufferPointer { valueBuffer in
            body(keywordBuffer.baseAddress!, valueBuffer.baseAddress!)
        }
    }
}

/// Lays every bind value out in one buffer and passes libpq pointers into it, valid only inside `body`.
private func withBindArrays<Result>(
    _ binds: [PostgresBindValue?],
    _ body: (
        Int32, UnsafePointer<Oid>, UnsafePointer<UnsafePointer<CChar>?>, UnsafePointer<Int32>, UnsafePointer<Int32>
    ) -> Result
) -> Result {
    var storage: [UInt8] = []
    storage.reserveCapacity(binds.reduce(0) { $0 + ($1?.bytes.count ?? 0) + 1 })
    var offsets: [Int] = []
    var types: [Oid] = []
    var lengths: [Int32] = []
    var formats: [Int32] = []
    offsets.reserveCapacity(binds.count)
    for bind in binds {
        guard let bind else {
            offsets.append(-1)
            types.append(0)
            lengths.append(0)
            formats.append(0)
            continue
        }
        offsets.append(storage.count)
        storage.append(contentsOf: bind.bytes)
        storage.append(0)  // text parameters are C strings
        types.append(Oid(bind.typeOID))
        lengths.append(Int32(bind.bytes.count))
        formats.append(bind.format.rawValue)
    }
    if storage.isEmpty { storage.append(0) }  // all NULL: still hand libpq a valid base pointer
    return storage.withUnsafeBufferPointer { buffer in
        let base = UnsafeRawPointer(buffer.baseAddress!)
        let values: [UnsafePointer<CChar>?] = offsets.map { offset in
            offset < 0 ? nil : (base + offset).assumingMemoryBound(to: CChar.self)
        }
        return values.withUnsafeBufferPointer { valueBuffer in
            body(Int32(binds.count), types, valueBuffer.baseAddress!, lengths, formats)
        }
    }
}
