import CLibpq

/// Owns a `PGresult` and clears it exactly once, whichever thread drops the last reference.
/// A `PGresult` is immutable and independent of its connection, so reading it from any thread is safe.
final class ResultHandle: @unchecked Sendable {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        PQclear(pointer)
    }
}

/// The rows a statement returned, read lazily from the underlying result.
public struct PostgresRows: Sendable, RandomAccessCollection {
    let handle: ResultHandle
    /// The column names, in order.
    public let columns: [String]
    /// Rows returned (for `SELECT`, `… RETURNING`).
    public let count: Int
    /// The command tag, e.g. `INSERT 0 3`, `UPDATE 2`, `SELECT 1`.
    public let commandTag: String
    /// Rows affected by `INSERT`/`UPDATE`/`DELETE`/`MERGE`/`COPY`, or returned by `SELECT`.
    public let affectedRows: Int

    init(handle: ResultHandle) {
        self.handle = handle
        let result = handle.pointer
        let columnCount = Int(PQnfields(result))
        self.columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        self.count = Int(PQntuples(result))
        self.commandTag = String(cString: PQcmdStatus(result))
        self.affectedRows = Int(String(cString: PQcmdTuples(result))) ?? 0
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public subscript(position: Int) -> PostgresRow {
        precondition(position >= 0 && position < count, "row index out of range")
        return PostgresRow(rows: self, index: position)
    }

    /// The first row's first column; nil when there is no row.
    public func first<T: PostgresDecodable>(as type: T.Type) throws -> T? {
        guard let row = first else { return nil }
        return try row.decode(type, column: 0)
    }

    /// The first column of every row.
    public func decode<T: PostgresDecodable>(_ type: T.Type) throws -> [T] {
        try map { try $0.decode(type, column: 0) }
    }

    /// The first row, decoded as a tuple; nil when there is none.
    public func first<each T: PostgresDecodable>(as types: (repeat each T).Type) throws -> (repeat each T)? {
        guard let row = first else { return nil }
        let values: (repeat each T) = try Self.decodeColumns(row, as: (repeat each T).self)
        return values
    }

    /// Every row decoded as a tuple (`rows.decode((UUID, String).self)`).
    public func decode<each T: PostgresDecodable>(_ types: (repeat each T).Type) throws -> [(repeat each T)] {
        try map { try Self.decodeColumns($0, as: (repeat each T).self) }
    }

    /// Decodes a row's columns in order into a tuple of the given types.
    static func decodeColumns<each T: PostgresDecodable>(_ row: PostgresRow, as types: (repeat each T).Type) throws -> (
        repeat each T
    ) {
        var column = 0
        func next<Value: PostgresDecodable>(_ type: Value.Type) throws -> Value {
            defer { column += 1 }
            return try row.decode(type, column: column)
        }
        return (repeat try next((each T).self))
    }

    /// Every row decoded into a `Decodable` struct whose coding keys are column names.
    public func decodeRecords<Record: Decodable>(_ type: Record.Type) throws -> [Record] {
        try map { try $0.decodeRecord(type) }
    }

    func columnIndex(named name: String) -> Int? {
        columns.firstIndex(of: name)
    }
}

/// One row of a result.
public struct PostgresRow: Sendable {
    let rows: PostgresRows
    let index: Int

    /// The number of columns.
    public var columnCount: Int { rows.columns.count }

    /// True when the cell is SQL NULL.
    public func isNull(column: Int) -> Bool {
        PQgetisnull(rows.handle.pointer, Int32(index), Int32(column)) == 1
    }

    /// Decodes the cell at a column position.
    public func decode<T: PostgresDecodable>(_ type: T.Type, column: Int) throws -> T {
        precondition(column >= 0 && column < rows.columns.count, "column index \(column) out of range")
        let result = rows.handle.pointer
        let row = Int32(index)
        let field = Int32(column)
        do {
            if PQgetisnull(result, row, field) == 1 { return try T.postgresNull() }
            let length = Int(PQgetlength(result, row, field))
            let buffer = UnsafeRawBufferPointer(start: PQgetvalue(result, row, field), count: length)
            return try T(postgresText: buffer, typeOID: PQftype(result, field))
        } catch {
            throw PostgresDecodingError(
                column: rows.columns[column], targetType: String(describing: T.self), failure: error)
        }
    }

    /// Decodes the cell of a named column.
    public func decode<T: PostgresDecodable>(_ type: T.Type, column name: String) throws -> T {
        guard let column = rows.columnIndex(named: name) else {
            throw PostgresDecodingError(
                column: name, targetType: String(describing: T.self), failure: .invalidText("no such column"))
        }
        return try decode(type, column: column)
    }

    /// Decodes the row's columns, in order, as a tuple: `row.decode((Int, String?).self)`.
    public func decode<each T: PostgresDecodable>(_ types: (repeat each T).Type) throws -> (repeat each T) {
        try PostgresRows.decodeColumns(self, as: (repeat each T).self)
    }

    /// Decodes the row into a `Decodable` struct whose coding keys are the column names.
    public func decodeRecord<Record: Decodable>(_ type: Record.Type) throws -> Record {
        try Record(from: PostgresRowDecoder(row: self))
    }
}
