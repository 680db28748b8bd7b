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

extension PostgresError {
    /// `26000` (no such prepared statement) or `0A000` "cached plan must not change result type".
    var invalidatesPreparedStatement: Bool {
        sqlState == "26000" || (sqlState == "0A000" && message.contains("cached plan"))
    }
}
