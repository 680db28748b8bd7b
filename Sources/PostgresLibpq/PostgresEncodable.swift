import Foundation

/// A Swift value that can be sent as a bind parameter.
public protocol PostgresEncodable: Sendable {
    /// The value as a bind parameter.
    var postgresBindValue: PostgresBindValue { get }
}

/// A value that can also be an element of a bound array (`{…}` literal, e.g. for `unnest`).
public protocol PostgresArrayElement: Sendable {
    /// The OID of the array type whose elements are of this type (e.g. `int8[]` for `Int`).
    static var postgresArrayTypeOID: UInt32 { get }
    /// The element as it appears inside an array literal, before quoting; nil is NULL.
    var postgresArrayElementText: String? { get }
}

extension PostgresArrayElement where Self: PostgresEncodable {
    public var postgresArrayElementText: String? {
        String(decoding: postgresBindValue.bytes, as: UTF8.self)
    }
}

extension String: PostgresEncodable, PostgresArrayElement {
    public var postgresBindValue: PostgresBindValue { PostgresBindValue(text: self) }
    public static var postgresArrayTypeOID: UInt32 { PostgresTypeOID.textArray }
    public var postgresArrayElementText: String? { self }
}

extension Substring: PostgresEncodable {
    public var postgresBindValue: PostgresBindValue { PostgresBindValue(text: String(self)) }
}

extension Int: PostgresEncodable, PostgresArrayElement {
    public var postgresBindValue: PostgresBindValue {
        PostgresBindValue(text: String(self), typeOID: PostgresTypeOID.int8)
    }
    public static var postgresArrayTypeOID: UInt32 { PostgresTypeOID.int8Array }
}

extension Int64: PostgresEncodable, PostgresArrayElement {
    public var postgresBindValue: PostgresBindValue {
        PostgresBindValue(text: String(self), typeOID: PostgresTypeOID.int8)
    }
    public static var postgresArrayTypeOID: UInt32 { PostgresTypeOID.int8Array }
}

extension Int32: PostgresEncodable, PostgresArrayElement {
    public var postgresBindValue: PostgresBindValue {
        PostgresBindValue(text: String(self), typeOID: PostgresTypeOID.int4)
    }
    public static var postgresArrayTypeOID: UInt32 { PostgresTypeOID.int4Array }
}

extension Bool: PostgresEncodable, PostgresArrayElement {
    public var postgresBindValue: PostgresBindValue {
        PostgresBindValue(text: self ? "t" : "f", typeOID: PostgresTypeOID.bool)
    }
    public static var postgresArrayTypeOID: UInt32 { PostgresTypeOID.boolArray }
}

extension Double: PostgresEncodable, PostgresArrayElement {
    public var postgresBindValue: PostgresBindValue {
        let text: String
        if isNaN {
            text = "NaN"
        } else if isInfinite {
            text = self < 0 ? "-Infinity" : "Infinity"
        } else {
            text = String(self)  // shortest representation that reads back exactly
        }
        return PostgresBindValue(text: text, typeOID: PostgresTypeOID.float8)
    }
    public static var postgresArrayTypeOID: UInt32 { PostgresTypeOID.float8Array }
}

extension UUID: PostgresEncodable, PostgresArrayElement {
    public var postgresBindValue: PostgresBindValue {
        PostgresBindValue(text: uuidString.lowercased(), typeOID: PostgresTypeOID.uuid)
    }
    public static var postgresArrayTypeOID: UInt32 { PostgresTypeOID.uuidArray }
}

extension Date: PostgresEncodable, PostgresArrayElement {
    /// Sent as `timestamptz` in ISO 8601 with microseconds, always in UTC.
    public var postgresBindValue: PostgresBindValue {
        PostgresBindValue(text: PostgresTimestamp.format(self), typeOID: PostgresTypeOID.timestamptz)
    }
    public static var postgresArrayTypeOID: UInt32 { PostgresTypeOID.timestamptzArray }
}

extension Data: PostgresEncodable {
    /// Sent as `bytea` in binary format: no escaping, no size blow-up.
    public var postgresBindValue: PostgresBindValue {
        PostgresBindValue(bytes: Array(self), format: .binary, typeOID: PostgresTypeOID.bytea)
    }
}

extension Optional: PostgresArrayElement where Wrapped: PostgresArrayElement {
    public static var postgresArrayTypeOID: UInt32 { Wrapped.postgresArrayTypeOID }
    public var postgresArrayElementText: String? { self.flatMap { $0.postgresArrayElementText } }
}

extension Array: PostgresEncodable where Element: PostgresArrayElement {
    /// Sent as a one-dimensional array literal, every element quoted.
    public var postgresBindValue: PostgresBindValue {
        var literal = "{"
        for (index, element) in enumerated() {
            if index > 0 { literal += "," }
            guard let text = element.postgresArrayElementText else {
                literal += "NULL"
                continue
            }
            literal += "\""
            for character in text.unicodeScalars {
                if character == "\"" || character == "\\" { literal += "\\" }
                literal.unicodeScalars.append(character)
            }
            literal += "\""
        }
        literal += "}"
        return PostgresBindValue(text: literal, typeOID: Element.postgresArrayTypeOID)
    }
}

/// Text formatting and parsing of PostgreSQL timestamps, independent of the process time zone.
enum PostgresTimestamp {
    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    static func format(_ date: Date) -> String {
        let totalMicros = (date.timeIntervalSince1970 * 1_000_000).rounded()
        let micros = Int64(totalMicros)
        var seconds = micros / 1_000_000
        var fraction = micros % 1_000_000
        if fraction < 0 {
            fraction += 1_000_000
            seconds -= 1
        }
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        let (year, month, day) = civil(fromDays: days)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):"
            + "\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(fraction, 6))Z"
    }

    /// Parses `YYYY-MM-DD[ HH:MM:SS[.ffffff]][±HH[:MM[:SS]]]` as printed with `DateStyle=ISO`.
    static func parse(_ text: UnsafeRawBufferPointer) -> Date? {
        var index = 0
        let count = text.count
        func number(_ width: Int) -> Int64? {
            guard index + width <= count else { return nil }
            var value: Int64 = 0
            for offset in 0..<width {
                let byte = text[index + offset]
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int64(byte - 48)
            }
            index += width
            return value
        }
        func expect(_ byte: UInt8) -> Bool {
            guard index < count, text[index] == byte else { return false }
            index += 1
            return true
        }
        // Years above 9999 have more digits.
        var yearDigits = 0
        while index + yearDigits < count, text[index + yearDigits] >= 48, text[index + yearDigits] <= 57 {
            yearDigits += 1
        }
        guard yearDigits >= 4, let year = number(yearDigits), expect(UInt8(ascii: "-")),
            let month = number(2), expect(UInt8(ascii: "-")), let day = number(2)
        else { return nil }
        var seconds = days(fromCivil: year, month, day) * 86_400
        var micros: Int64 = 0
        if index < count, text[index] == UInt8(ascii: " ") || text[index] == UInt8(ascii: "T") {
            index += 1
            guard let hour = number(2), expect(UInt8(ascii: ":")), let minute = number(2), expect(UInt8(ascii: ":")),
                let second = number(2)
            else { return nil }
            seconds += hour * 3600 + minute * 60 + second
            if expect(UInt8(ascii: ".")) {
                var digits = 0
                while index < count, text[index] >= 48, text[index] <= 57 {
                    if digits < 6 { micros = micros * 10 + Int64(text[index] - 48) }
                    digits += 1
                    index += 1
                }
                if digits < 6 { for _ in digits..<6 { micros *= 10 } }
            }
            if index < count {
                let sign = text[index]
                if sign == UInt8(ascii: "Z") {
                    index += 1
                } else {
                    guard sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") else { return nil }
                    index += 1
                    guard let offsetHours = number(2) else { return nil }
                    var offset = offsetHours * 3600
                    if expect(UInt8(ascii: ":")) {
                        guard let offsetMinutes = number(2) else { return nil }
                        offset += offsetMinutes * 60
                        if expect(UInt8(ascii: ":")) {
                            guard let offsetSeconds = number(2) else { return nil }
                            offset += offsetSeconds
                        }
                    }
                    seconds -= sign == UInt8(ascii: "+") ? offset : -offset
                }
            }
        }
        guard index == count else { return nil }
        return Date(timeIntervalSince1970: Double(seconds) + Double(micros) / 1_000_000)
    }

    // Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian calendar).
    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
