import CLibpq

/// An error from PostgreSQL or from libpq, with every field the server reported.
///
/// Callers map errors by SQLSTATE (`sqlState`), e.g. a unique violation (`23505`) to HTTP 409.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    /// Where the error came from.
    public enum Kind: Sendable, Equatable {
        /// The server reported an error for a statement (it carries a SQLSTATE).
        case server
        /// The connection could not be established or was lost.
        case connection
        /// The pool could not hand out a connection in time.
        case acquireTimeout
        /// The pool is shutting down or closed.
        case poolClosed
        /// A `COPY` or protocol step was used wrongly (e.g. binds in a `COPY`).
        case misuse
        /// `COMMIT` turned into `ROLLBACK` because an earlier statement in the transaction failed.
        case transactionAborted
    }

    public var kind: Kind
    /// Five-character SQLSTATE, e.g. `23505`; nil for client-side errors.
    public var sqlState: String?
    /// The primary human-readable message.
    public var message: String
    public var detail: String?
    public var hint: String?
    public var constraint: String?
    public var schema: String?
    public var table: String?
    public var column: String?
    /// The severity the server gave (`ERROR`, `FATAL`, …).
    public var severity: String?
    /// The statement had already reported success when this error arrived (e.g. the session was
    /// terminated right after), so its effect may have been committed.
    public internal(set) var followedSuccess = false

    public init(
        kind: Kind, message: String, sqlState: String? = nil, detail: String? = nil, hint: String? = nil,
        constraint: String? = nil, schema: String? = nil, table: String? = nil, column: String? = nil,
        severity: String? = nil
    ) {
        self.kind = kind
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.constraint = constraint
        self.schema = schema
        self.table = table
        self.column = column
        self.severity = severity
    }

    public var description: String {
        var text = "PostgresError(\(kind)"
        if let sqlState { text += " \(sqlState)" }
        text += "): \(message)"
        if let detail { text += " — \(detail)" }
        if let constraint { text += " [constraint \(constraint)]" }
        return text
    }

    /// `23505`: a unique constraint was violated.
    public var isUniqueViolation: Bool { sqlState == SQLState.uniqueViolation }
    /// `23503`: a foreign key constraint was violated.
    public var isForeignKeyViolation: Bool { sqlState == SQLState.foreignKeyViolation }
    /// `40001` or `40P01`: the transaction may succeed if it is run again.
    public var isRetryableTransactionFailure: Bool {
        sqlState == SQLState.serializationFailure || sqlState == SQLState.deadlockDetected
    }
    /// Class `57P0x`: the server terminated the session (admin command, crash or shutdown).
    public var isServerTermination: Bool { sqlState?.hasPrefix("57P0") ?? false }
}

/// SQLSTATE codes this module and its callers test for.
public enum SQLState {
    public static let uniqueViolation = "23505"
    public static let foreignKeyViolation = "23503"
    public static let checkViolation = "23514"
    public static let serializationFailure = "40001"
    public static let deadlockDetected = "40P01"
    public static let queryCanceled = "57014"
    public static let adminShutdown = "57P01"
}

extension PostgresError {
    /// Builds an error from a failed result, reading every diagnostic field.
    static func from(result: OpaquePointer, connection: OpaquePointer?) -> PostgresError {
        func field(_ code: Int32) -> String? {
            guard let value = PQresultErrorField(result, code) else { return nil }
            return String(cString: value)
        }
        let primary =
            field(Int32(UInt8(ascii: "M")))
            ?? PQresultErrorMessage(result).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
            ?? connection.flatMap { PQerrorMessage($0).map { String(cString: $0) } }
            ?? "unknown error"
        let sqlState = field(Int32(UInt8(ascii: "C")))
        let lost = connection.map { PQstatus($0) == CONNECTION_BAD } ?? false
        return PostgresError(
            kind: (sqlState == nil && lost) ? .connection : .server,
            message: primary.trimmingTrailingNewlines(),
            sqlState: sqlState,
            detail: field(Int32(UInt8(ascii: "D"))),
            hint: field(Int32(UInt8(ascii: "H"))),
            constraint: field(Int32(UInt8(ascii: "n"))),
            schema: field(Int32(UInt8(ascii: "s"))),
            table: field(Int32(UInt8(ascii: "t"))),
            column: field(Int32(UInt8(ascii: "c"))),
            severity: field(Int32(UInt8(ascii: "V")))
        )
    }

    /// Builds a connection-level error from the connection's last message.
    static func connection(_ connection: OpaquePointer?, fallback: String) -> PostgresError {
        let message = connection.flatMap { PQerrorMessage($0).map { String(cString: $0) } } ?? ""
        return PostgresError(
            kind: .connection, message: message.isEmpty ? fallback : message.trimmingTrailingNewlines())
    }
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var text = Substring(self)
        while let last = text.last, last.isNewline || last == " " { text = text.dropLast() }
        return String(text)
    }
}
