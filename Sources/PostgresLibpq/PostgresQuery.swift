/// A SQL statement and its bind parameters, built by string interpolation.
///
/// Every interpolated value becomes a bind parameter (`$1`, `$2`, …) and is sent apart from
/// the SQL text, so values can never change the statement:
///
/// ```swift
/// let rows = try await pool.query("SELECT name FROM account WHERE id = \(id) AND status = \(status)")
/// ```
///
/// Raw SQL can only be spliced in through the explicitly named `\(unescaped: …)`, meant for
/// identifiers and fragments chosen by the program, never for user input.
public struct PostgresQuery: Sendable, Hashable, ExpressibleByStringInterpolation, CustomStringConvertible {
    /// The statement text with `$n` placeholders.
    public var sql: String
    /// The values for the placeholders, in order; nil is SQL NULL.
    public var binds: [PostgresBindValue?]

    /// A statement with explicit binds; `sql` must use `$1…$n` for exactly `binds.count` values.
    public init(sql: String, binds: [PostgresBindValue?] = []) {
        self.sql = sql
        self.binds = binds
    }

    /// Raw SQL with no parameters. The name says what it is: nothing in `sql` is escaped.
    public init(unescaped sql: String) {
        self.init(sql: sql)
    }

    public init(stringLiteral value: String) {
        self.init(sql: value)
    }

    public init(stringInterpolation: StringInterpolation) {
        self.init(sql: stringInterpolation.sql, binds: stringInterpolation.binds)
    }

    public var description: String { sql }

    public struct StringInterpolation: StringInterpolationProtocol, Sendable {
        public typealias StringLiteralType = String
        var sql = ""
        var binds: [PostgresBindValue?] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
            binds.reserveCapacity(interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        /// Binds a value as the next parameter.
        public mutating func appendInterpolation(_ value: some PostgresEncodable) {
            binds.append(value.postgresBindValue)
            sql += "$\(binds.count)"
        }

        /// Binds an optional value; nil becomes SQL NULL.
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value?) {
            binds.append(value?.postgresBindValue)
            sql += "$\(binds.count)"
        }

        /// Splices SQL text in as it is. Only for fragments the program itself chooses.
        public mutating func appendInterpolation(unescaped sql: String) {
            self.sql += sql
        }

        /// Splices another query in, renumbering its parameters.
        public mutating func appendInterpolation(_ query: PostgresQuery) {
            let offset = binds.count
            sql += offset == 0 ? query.sql : PostgresQuery.renumber(query.sql, by: offset)
            binds.append(contentsOf: query.binds)
        }
    }

    /// Shifts every `$n` placeholder outside quotes by `offset`.
    static func renumber(_ sql: String, by offset: Int) -> String {
        var result = ""
        result.reserveCapacity(sql.utf8.count + 8)
        var quote: Character? = nil
        var iterator = sql.makeIterator()
        var pending: Character? = iterator.next()
        while let character = pending {
            pending = iterator.next()
            if let open = quote {
                result.append(character)
                if character == open { quote = nil }
                continue
            }
            if character == "'" || character == "\"" {
                quote = character
                result.append(character)
                continue
            }
            if character == "$", let next = pending, next.isASCII, next.isNumber {
                var digits = ""
                while let digit = pending, digit.isASCII, digit.isNumber {
                    digits.append(digit)
                    pending = iterator.next()
                }
                result += "$\(Int(digits)! + offset)"
                continue
            }
            result.append(character)
        }
        return result
    }
}

/// One bind parameter as it goes over the wire.
public struct PostgresBindValue: Sendable, Hashable {
    public enum Format: Int32, Sendable {
        case text = 0
        case binary = 1
    }
    /// The value's bytes: UTF-8 text for `.text`, raw bytes for `.binary`.
    public var bytes: [UInt8]
    public var format: Format
    /// The parameter's type OID; 0 lets the server infer it from context.
    public var typeOID: UInt32

    public init(bytes: [UInt8], format: Format = .text, typeOID: UInt32 = 0) {
        self.bytes = bytes
        self.format = format
        self.typeOID = typeOID
    }

    public init(text: String, typeOID: UInt32 = 0) {
        self.init(bytes: Array(text.utf8), format: .text, typeOID: typeOID)
    }
}

/// Well-known type OIDs (from `pg_type`).
public enum PostgresTypeOID {
    public static let bool: UInt32 = 16
    public static let bytea: UInt32 = 17
    public static let int8: UInt32 = 20
    public static let int2: UInt32 = 21
    public static let int4: UInt32 = 23
    public static let text: UInt32 = 25
    public static let float4: UInt32 = 700
    public static let float8: UInt32 = 701
    public static let timestamp: UInt32 = 1114
    public static let timestamptz: UInt32 = 1184
    public static let numeric: UInt32 = 1700
    public static let uuid: UInt32 = 2950
    public static let jsonb: UInt32 = 3802
    public static let boolArray: UInt32 = 1000
    public static let int4Array: UInt32 = 1007
    public static let textArray: UInt32 = 1009
    public static let int8Array: UInt32 = 1016
    public static let float8Array: UInt32 = 1022
    public static let timestamptzArray: UInt32 = 1185
    public static let uuidArray: UInt32 = 2951
}
