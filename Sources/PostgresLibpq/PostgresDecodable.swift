import Foundation

/// A Swift value that can be read from a result column (text format).
public protocol PostgresDecodable: Sendable {
    /// Decodes a non-NULL value from its text representation.
    init(postgresText text: UnsafeRawBufferPointer, typeOID: UInt32) throws(PostgresDecodingFailure)
    /// The value for SQL NULL; non-optional types throw.
    static func postgresNull() throws(PostgresDecodingFailure) -> Self
}

extension PostgresDecodable {
    public static func postgresNull() throws(PostgresDecodingFailure) -> Self { throw .unexpectedNull }
}

/// Why a cell could not be decoded; wrapped into `PostgresDecodingError` with the column.
public enum PostgresDecodingFailure: Error, Sendable, Equatable {
    case unexpectedNull
    case invalidText(String)
}

/// A cell could not be decoded into the requested Swift type.
public struct PostgresDecodingError: Error, Sendable, CustomStringConvertible {
    public var column: String
    public var targetType: String
    public var failure: PostgresDecodingFailure

    public var description: String {
        switch failure {
        case .unexpectedNull: "column \(column) is NULL but \(targetType) is not optional"
        case .invalidText(let text):
            "column \(column): cannot read \(text.debugDescription.prefix(80)) as \(targetType)"
        }
    }
}

extension UnsafeRawBufferPointer {
    var utf8String: String { String(decoding: self, as: UTF8.self) }
}

/// Parses a decimal integer without going through `String`.
@inline(__always)
private func parseInteger<T: FixedWidthInteger>(_ text: UnsafeRawBufferPointer, as: T.Type)
    throws(PostgresDecodingFailure) -> T
{
    guard !text.isEmpty else { throw .invalidText("") }
    var index = 0
    let negative = text[0] == UInt8(ascii: "-")
    if negative || text[0] == UInt8(ascii: "+") { index = 1 }
    guard index < text.count else { throw .invalidText(text.utf8String) }
    var value: T = 0
    while index < text.count {
        let byte = text[index]
        guard byte >= 48 && byte <= 57 else { throw .invalidText(text.utf8String) }
        let digit = T(byte - 48)
        let (multiplied, overflow1) = value.multipliedReportingOverflow(by: 10)
        let (next, overflow2) =
            negative ? multiplied.subtractingReportingOverflow(digit) : multiplied.addingReportingOverflow(digit)
        guard !overflow1 && !overflow2 else { throw .invalidText(text.utf8String) }
        value = next
        index += 1
    }
    return value
}

extension Int: PostgresDecodable {
    public init(postgresText text: UnsafeRawBufferPointer, typeOID: UInt32) throws(PostgresDecodingFailure) {
        self = try parseInteger(text, as: Int.self)
    }
}

extension Int64: PostgresDecodable {
    public init(postgresText text: UnsafeRawBufferPointer, typeOID: UInt32) throws(PostgresDecodingFailure) {
        self = try parseInteger(text, as: Int64.self)
    }
}

extension Int32: PostgresDecodable {
    public init(postgresText text: UnsafeRawBufferPointer, typeOID: UInt32) throws(PostgresDecodingFailure) {
        self = try parseInteger(text, as: Int32.self)
    }
}

extension Bool: PostgresDecodable {
    public init(postgresText text: UnsafeRawBufferPointer, typeOID: UInt32) throws(PostgresDecodingFailure) {
        switch text.utf8String {
        case "t", "true": self = true
        case "f", "false": self = false
        case let other: throw .invalidText(other)
        }
    }
}

extension String: PostgresDecodable {
    public init(postgresText text: UnsafeRawBufferPointer, typeOID: UInt32) throws(PostgresDecodingFailure) {
        self = text.utf8String
    }
}

extension Double: PostgresDecodable {
    public init(postgresText text: UnsafeRawBufferPointer, typeOID: UInt32) throws(PostgresDecodingFailure) {
        let string = text.utf8String
        switch string {
        case "NaN": self = .nan
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        default:
            guard let value = Double(string) else { throw .invalidText(string) }
            self = value
        }
    }
}

extension UUID: PostgresDecodable {
    public init(postgresText text: UnsafeRawBufferPointer, typeOID: UInt32) throws(PostgresDecodingFailure) {
        let string = text.utf8String
        guard let value = UUID(uuidString: string) else { throw .invalidText(string) }
        self = value
    }
}

extension Date: PostgresDecodable {
    /// Reads `timestamptz` (and `timestamp`/`date`, taken as UTC) printed with `DateStyle=ISO`.
    public init(postgresText text: UnsafeRawBufferPointer, typeOID: UInt32) throws(PostgresDecodingFailure) {
        guard let value = PostgresTimestamp.parse(text) else { throw .invalidText(text.utf8String) }
        self = value
    }
}

extension Data: PostgresDecodable {
    /// Reads `bytea` in hex output format (`\x…`).
    public init(postgresText text: UnsafeRawBufferPointer, typeOID: UInt32) throws(PostgresDecodingFailure) {
        guard text.count >= 2, text[0] == UInt8(ascii: "\\"), text[1] == UInt8(ascii: "x"), text.count % 2 == 0 else {
            throw .invalidText(String(text.utf8String.prefix(40)))
        }
        @inline(__always) func nibble(_ byte: UInt8) -> UInt8? {
            switch byte {
            case 48...57: byte - 48
            case 97...102: byte - 87
            case 65...70: byte - 55
            default: nil
            }
        }
        var bytes = [UInt8](repeating: 0, count: (text.count - 2) / 2)
        var index = 2
        var out = 0
        while index < text.count {
            guard let high = nibble(text[index]), let low = nibble(text[index + 1]) else {
                throw .invalidText("bytea")
            }
            bytes[out] = high << 4 | low
            out += 1
            index += 2
        }
        self = Data(bytes)
    }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public init(postgresText text: UnsafeRawBufferPointer, typeOID: UInt32) throws(PostgresDecodingFailure) {
        self = .some(try Wrapped(postgresText: text, typeOID: typeOID))
    }
    public static func postgresNull() throws(PostgresDecodingFailure) -> Self { nil }
}

extension Array: PostgresDecodable where Element: PostgresDecodable {
    /// Reads a one-dimensional array literal (`{1,2,NULL}`, `{"a b","c\"d"}`).
    public init(postgresText text: UnsafeRawBufferPointer, typeOID: UInt32) throws(PostgresDecodingFailure) {
        let bytes = [UInt8](text)
        guard bytes.first == UInt8(ascii: "{"), bytes.last == UInt8(ascii: "}") else {
            throw .invalidText(text.utf8String)
        }
        var result: [Element] = []
        var index = 1
        let end = bytes.count - 1
        while index < end {
            var element: [UInt8] = []
            var quoted = false
            if bytes[index] == UInt8(ascii: "\"") {
                quoted = true
                index += 1
                while index < end, bytes[index] != UInt8(ascii: "\"") {
                    if bytes[index] == UInt8(ascii: "\\") { index += 1 }
                    guard index < end else { throw .invalidText(text.utf8String) }
                    element.append(bytes[index])
                    index += 1
                }
                index += 1  // closing quote
            } else {
                while index < end, bytes[index] != UInt8(ascii: ",") {
                    guard bytes[index] != UInt8(ascii: "{") else {
                        throw .invalidText("multi-dimensional arrays are not supported")
                    }
                    element.append(bytes[index])
                    index += 1
                }
            }
            if !quoted && element == [UInt8]("NULL".utf8) {
                result.append(try Element.postgresNull())
            } else {
                let decoded = element.withUnsafeBytes { buffer in
                    Result { () throws(PostgresDecodingFailure) -> Element in
                        try Element(postgresText: buffer, typeOID: 0)
                    }
                }
                result.append(try decoded.get())
            }
            if index < end {
                guard bytes[index] == UInt8(ascii: ",") else { throw .invalidText(text.utf8String) }
                index += 1
            }
        }
        self = result
    }
}
