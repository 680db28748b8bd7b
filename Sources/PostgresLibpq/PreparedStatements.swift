import CLibpq

/// The named server-side statements one connection has prepared, keyed by SQL text and
/// parameter types. Only touched inside `PostgresConnection.blocking`, by one thread at a time.
///
/// Preparing once and then sending only Bind/Execute spares the server parsing and planning
/// the same text again on every call. When the cache is full it is emptied (`DEALLOCATE ALL`),
/// which keeps server memory bounded with no bookkeeping on the hot path.
final class PreparedStatementCache: @unchecked Sendable {
    struct Key: Hashable {
        let sql: String
        let types: [UInt32]
    }

    let capacity: Int
    private var names: [Key: String] = [:]
    private var nextNumber = 0

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// Forgets everything (after a reconnect the server has no statements any more).
    func reset() {
        names.removeAll()
    }

    /// Runs `query` as a prepared statement, preparing it first when this connection has not yet.
    func execute(_ query: PostgresQuery, on pgconn: OpaquePointer) throws -> PostgresRows {
        // Inside a failed transaction nothing can be prepared; the plain path reports 25P02.
        guard capacity > 0, PQtransactionStatus(pgconn) != PQTRANS_INERROR else {
            return try PostgresConnection.execute(query, on: pgconn)
        }
        let key = Key(sql: query.sql, types: query.binds.map { $0?.typeOID ?? 0 })
        let name: String
        if let known = names[key] {
            name = known
        } else {
            if names.count >= capacity {
                _ = try PostgresConnection.execute("DEALLOCATE ALL", on: pgconn)
                names.removeAll()
            }
            nextNumber += 1
            name = "s\(nextNumber)"
            let sent = key.types.withUnsafeBufferPointer { types in
                PQsendPrepare(pgconn, name, query.sql, Int32(types.count), types.baseAddress)
            }
            guard sent == 1 else { throw PostgresError.connection(pgconn, fallback: "could not send statement") }
            _ = try PostgresConnection.collectResults(pgconn)
            names[key] = name
        }
        do {
            return try PostgresConnection.executePrepared(name, binds: query.binds, on: pgconn)
        } catch let error as PostgresError where error.invalidatesPreparedStatement {
            // The statement vanished (DISCARD ALL) or its result type changed under it (DDL).
            // Outside a transaction block nothing happened yet, so running it afresh is safe.
            names[key] = nil
            guard PQtransactionStatus(pgconn) == PQTRANS_IDLE else { throw error }
            return try PostgresConnection.execute(query, on: pgconn)
        }
    }
}

extension PreparedStatementCache {
    /// Runs `queries` in libpq's pipeline mode: all are sent at once, followed by one Sync, and their results are read
    /// back in order, so the whole list costs one round trip. Outside a transaction block the list is one implicit
    /// transaction (one snapshot; a failure undoes the statements before it); inside one, it is part of it.
    ///
    /// Statements are prepared as `execute(_:on:)` prepares them, inside the same pipeline. The first error is thrown,
    /// with `followedSuccess` set when a statement before it succeeded; the statements after it were not run.
    func pipeline(_ queries: [PostgresQuery], on pgconn: OpaquePointer) throws -> [PostgresRows] {
        let prepared = capacity > 0 && PQtransactionStatus(pgconn) != PQTRANS_INERROR
        let keys = queries.map { Key(sql: $0.sql, types: $0.binds.map { $0?.typeOID ?? 0 }) }
        if prepared {
            let unknown = Set(keys.filter { names[$0] == nil })
            if !unknown.isEmpty, names.count + unknown.count > capacity {
                _ = try PostgresConnection.execute("DEALLOCATE ALL", on: pgconn)
                names.removeAll()
            }
        }
        guard PQenterPipelineMode(pgconn) == 1 else {
            throw PostgresError.connection(pgconn, fallback: "could not enter pipeline mode")
        }
        /// What each command of the pipeline is, in the order its results come back.
        enum Command {
            case prepare(Key, String)
            case query
        }
        var commands: [Command] = []
        var preparing: [Key: String] = [:]
        // Half a pipeline queued when something below throws: the caller (`PostgresConnection.pipeline`) replaces the
        // session.
        for (query, key) in zip(queries, keys) {
            let sent: Int32
            if prepared {
                let name: String
                if let known = names[key] ?? preparing[key] {
                    name = known
                } else {
                    nextNumber += 1
                    name = "s\(nextNumber)"
                    let accepted = key.types.withUnsafeBufferPointer { types in
                        PQsendPrepare(pgconn, name, query.sql, Int32(types.count), types.baseAddress)
                    }
                    guard accepted == 1 else {
                        throw PostgresError.connection(pgconn, fallback: "could not send statement")
                    }
                    preparing[key] = name
                    commands.append(.prepare(key, name))
                }
                sent = PostgresConnection.sendPrepared(name, binds: query.binds, on: pgconn)
            } else {
                sent = PostgresConnection.send(query, on: pgconn)
            }
            guard sent == 1 else { throw PostgresError.connection(pgconn, fallback: "could not send statement") }
            commands.append(.query)
        }
        guard PQpipelineSync(pgconn) == 1 else {
            throw PostgresError.connection(pgconn, fallback: "could not send the pipeline")
        }

        var rows: [PostgresRows] = []
        rows.reserveCapacity(queries.count)
        var firstError: PostgresError?
        for command in commands {
            let result = try Self.nextResult(pgconn)
            // Each command's results end with a NULL.
            while let extra = PQgetResult(pgconn) { PQclear(extra) }
            let status = PQresultStatus(result.pointer)
            switch (command, status) {
            case (.prepare(let key, let name), PGRES_COMMAND_OK):
                names[key] = name
            case (.query, PGRES_COMMAND_OK), (.query, PGRES_TUPLES_OK), (.query, PGRES_EMPTY_QUERY):
                rows.append(PostgresRows(handle: result))
            case (_, PGRES_PIPELINE_ABORTED):
                break
            default:
                if firstError == nil {
                    var error = PostgresError.from(result: result.pointer, connection: pgconn)
                    error.followedSuccess = !rows.isEmpty
                    firstError = error
                }
            }
        }
        let sync = try Self.nextResult(pgconn)
        guard PQresultStatus(sync.pointer) == PGRES_PIPELINE_SYNC, PQexitPipelineMode(pgconn) == 1 else {
            throw PostgresError.connection(pgconn, fallback: "the pipeline ended out of step")
        }
        if let firstError {
            guard firstError.invalidatesPreparedStatement else { throw firstError }
            // As in `execute(_:on:)`: a statement vanished or its result type changed. Outside a transaction block the
            // pipeline's implicit transaction was rolled back as a whole, so it runs afresh, prepared again.
            for key in keys { names[key] = nil }
            guard PQtransactionStatus(pgconn) == PQTRANS_IDLE else { throw firstError }
            return try pipeline(queries, on: pgconn)
        }
        return rows
    }

    /// The next result of a pipeline; a connection failure instead of one is thrown.
    private static func nextResult(_ pgconn: OpaquePointer) throws -> ResultHandle {
        guard let result = PQgetResult(pgconn) else {
            throw PostgresError.connection(pgconn, fallback: "the server sent no result")
        }
        return ResultHandle(result)
    }
}

extension PostgresError {
    /// `26000` (no such prepared statement) or `0A000` "cached plan must not change result type".
    var invalidatesPreparedStatement: Bool {
        sqlState == "26000" || (sqlState == "0A000" && message.contains("cached plan"))
    }
}
