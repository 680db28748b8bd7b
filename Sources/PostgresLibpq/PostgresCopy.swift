import CLibpq

extension PostgresConnection {
    /// Streams data into `COPY … FROM STDIN`. `body` writes rows through the writer, which
    /// sends them in large chunks; returns the number of rows the server loaded.
    /// If `body` throws, the COPY is aborted (nothing is loaded) and the error is rethrown.
    @discardableResult
    public func copyIn(_ statement: PostgresQuery, _ body: (PostgresCopyInWriter) async throws -> Void) async throws
        -> Int
    {
        guard statement.binds.isEmpty else {
            throw PostgresError(kind: .misuse, message: "COPY takes no bind parameters")
        }
        try await sendPendingBegin()
        try await blocking(cancellable: true) { pgconn, _ in
            try PostgresConnection.startCopy(statement.sql, expecting: PGRES_COPY_IN, on: pgconn)
        }
        let writer = PostgresCopyInWriter(connection: self)
        do {
            try await body(writer)
            try await writer.flush()
        } catch {
            let abortError = error
            _ = try? await blocking { pgconn, _ in
                _ = PQputCopyEnd(pgconn, "aborted by the client: \(abortError)")
                _ = try? PostgresConnection.collectResults(pgconn)
            }
            throw error
        }
        let handle = try await blocking { pgconn, _ in
            guard PQputCopyEnd(pgconn, nil) == 1 else {
                throw PostgresError.connection(pgconn, fallback: "could not finish COPY")
            }
            return try PostgresConnection.collectResults(pgconn)
        }
        return PostgresRows(handle: handle).affectedRows
    }

    /// Streams `COPY … TO STDOUT` output to `body` in chunks of about `chunkSize` bytes (whole
    /// rows), with back-pressure: the next chunk is read only after `body` returns. Memory stays
    /// constant whatever the size. If `body` throws, the COPY is cancelled and the error rethrown.
    /// Returns the number of rows copied.
    @discardableResult
    public func copyOut(
        _ statement: PostgresQuery, chunkSize: Int = 256 * 1024, _ body: ([UInt8]) async throws -> Void
    ) async throws -> Int {
        guard statement.binds.isEmpty else {
            throw PostgresError(kind: .misuse, message: "COPY takes no bind parameters")
        }
        try await sendPendingBegin()
        try await blocking(cancellable: true) { pgconn, _ in
            try PostgresConnection.startCopy(statement.sql, expecting: PGRES_COPY_OUT, on: pgconn)
        }
        while true {
            let (chunk, finished) = try await blocking(cancellable: true) { pgconn, _ in
                try PostgresConnection.readCopyChunk(pgconn, limit: chunkSize)
            }
            if !chunk.isEmpty {
                do {
                    try await body(chunk)
                } catch {
                    await cancelAndDrainCopyOut(finished: finished)
                    throw error
                }
            }
            if finished { break }
        }
        let handle = try await blocking { pgconn, _ in try PostgresConnection.collectResults(pgconn) }
        return PostgresRows(handle: handle).affectedRows
    }

    /// Stops a COPY whose consumer gave up: cancels it on the server, then reads what is still
    /// in flight so the connection is clean before it goes back to the pool.
    private func cancelAndDrainCopyOut(finished: Bool) async {
        if !finished { sendCancelRequest() }
        _ = try? await blocking { pgconn, _ in
            PostgresConnection.drainCopyOut(pgconn)
            _ = try? PostgresConnection.collectResults(pgconn)
        }
    }

    static func startCopy(_ sql: String, expecting status: ExecStatusType, on pgconn: OpaquePointer) throws {
        guard PQsendQuery(pgconn, sql) == 1 else {
            throw PostgresError.connection(pgconn, fallback: "could not send COPY")
        }
        guard let result = PQgetResult(pgconn) else {
            throw PostgresError.connection(pgconn, fallback: "the server sent no result for COPY")
        }
        let actual = PQresultStatus(result)
        if actual == status {
            PQclear(result)
            return
        }
        let error: PostgresError
        if actual == PGRES_FATAL_ERROR || actual == PGRES_NONFATAL_ERROR || actual == PGRES_BAD_RESPONSE {
            error = PostgresError.from(result: result, connection: pgconn)
        } else {
            error = PostgresError(kind: .misuse, message: "statement is not a COPY in the expected direction")
        }
        PQclear(result)
        if actual == PGRES_COPY_IN { _ = PQputCopyEnd(pgconn, "wrong COPY direction") }
        if actual == PGRES_COPY_OUT { drainCopyOut(pgconn) }
        _ = try? collectResults(pgconn)
        throw error
    }

    /// Reads whole COPY rows until about `limit` bytes; `finished` when the server ended the stream.
    static func readCopyChunk(_ pgconn: OpaquePointer, limit: Int) throws -> ([UInt8], Bool) {
        var chunk: [UInt8] = []
        chunk.reserveCapacity(limit + 4096)
        var buffer: UnsafeMutablePointer<CChar>?
        while chunk.count < limit {
            let length = PQgetCopyData(pgconn, &buffer, 0)
            if length > 0, let data = buffer {
                chunk.append(contentsOf: UnsafeRawBufferPointer(start: data, count: Int(length)))
                PQfreemem(data)
                buffer = nil
            } else if length == -1 {
                return (chunk, true)
            } else {
                throw PostgresError.connection(pgconn, fallback: "COPY failed")
            }
        }
        return (chunk, false)
    }
}

/// Buffers COPY data and sends it in large chunks; `writeRow` encodes text-format rows.
public final class PostgresCopyInWriter {
    private let connection: PostgresConnection
    private var buffer: [UInt8] = []
    private let flushThreshold = 256 * 1024

    init(connection: PostgresConnection) {
        self.connection = connection
        buffer.reserveCapacity(flushThreshold + 4096)
    }

    /// Appends raw COPY data (already in the statement's format).
    public func write(_ bytes: some Sequence<UInt8>) async throws {
        buffer.append(contentsOf: bytes)
        if buffer.count >= flushThreshold { try await flush() }
    }

    /// Appends one row in COPY text format: fields escaped, tab-separated, nil as `\N`.
    public func writeRow(_ fields: [String?]) async throws {
        for (index, field) in fields.enumerated() {
            if index > 0 { buffer.append(UInt8(ascii: "\t")) }
            guard let field else {
                buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "N")])
                continue
            }
            PostgresCopyText.appendEscaped(field, to: &buffer)
        }
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= flushThreshold { try await flush() }
    }

    func flush() async throws {
        guard !buffer.isEmpty else { return }
        let data = buffer
        buffer.removeAll(keepingCapacity: true)
        try await connection.blocking { pgconn, _ in
            let sent = data.withUnsafeBufferPointer { pointer in
                pointer.withMemoryRebound(to: CChar.self) { chars in
                    PQputCopyData(pgconn, chars.baseAddress, Int32(chars.count))
                }
            }
            guard sent == 1 else { throw PostgresError.connection(pgconn, fallback: "could not send COPY data") }
        }
    }
}

/// COPY text format (the default `FORMAT text`): escaping of fields.
public enum PostgresCopyText {
    /// Appends `field` with backslash, tab, newline and carriage return escaped.
    public static func appendEscaped(_ field: String, to buffer: inout [UInt8]) {
        for byte in field.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\t"): buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case UInt8(ascii: "\n"): buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            default: buffer.append(byte)
            }
        }
    }
}
