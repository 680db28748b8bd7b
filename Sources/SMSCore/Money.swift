/// An amount of credits, held exactly as an integer number of minor units (1 credit = 10 000 units), so that
/// tariffs such as 0.0725 credit per part add up without rounding.
///
/// Its text form is a decimal string with exactly four fraction digits (`"12.5000"`, `"-0.0725"`); parsing takes
/// one to four fraction digits (or none) and refuses anything else, rather than rounding.
///
/// The accepted grammar is `[+|-] digit+ [ "." digit{1,4} ]`, ASCII only: at least one digit before the point and,
/// when there is a point, at least one after it, as in a JSON number. So `".5"` and `"1."` are refused, like `"."`;
/// leading zeros are allowed (`"007.5"` is 7.5); `"-0"` is zero, accepted even where negatives are not.
public struct Money: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// Minor units per credit.
    public static let unitsPerCredit: Int64 = 10_000
    /// Fraction digits of the text form.
    public static let fractionDigits = 4
    /// The largest magnitude any single amount may have: one thousand million credits. Larger amounts are
    /// refused as absurd; it also leaves every sum of many amounts far from `Int64`'s range.
    public static let maximum = Money(minorUnits: 1_000_000_000 * unitsPerCredit)

    public static let zero = Money(minorUnits: 0)

    /// The amount in minor units.
    public let minorUnits: Int64

    public init(minorUnits: Int64) {
        self.minorUnits = minorUnits
    }

    /// Whole credits.
    public init(credits: Int64) {
        self.minorUnits = credits * Self.unitsPerCredit
    }

    /// Why a text is not an amount.
    public enum ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        /// Not a decimal number (`"abc"`, `"1e3"`, `"1,5"`, `" 1"`, `""`, `"."`, `".5"`, `"1."`, `"١٢"`).
        case notANumber
        /// More than four fraction digits.
        case tooPrecise
        /// A minus sign where only amounts of zero or more are allowed.
        case negative
        /// Larger in magnitude than ``Money/maximum``.
        case outOfRange

        public var description: String {
            switch self {
            case .notANumber: "must be a decimal number such as \"12.5000\""
            case .tooPrecise: "must have at most 4 decimal places"
            case .negative: "must not be negative"
            case .outOfRange: "must be at most 1000000000 credits in magnitude"
            }
        }
    }

    /// Parses `"12"`, `"12.5"`, `"12.5000"`, `"-3.0725"` (with `allowNegative`), `"+1"`. No exponent, no grouping,
    /// no whitespace, no digits outside ASCII, and a digit on both sides of the point (`".5"` and `"1."` are refused).
    ///
    /// Errors are checked in this order: ``ParseError/notANumber``, ``ParseError/tooPrecise``,
    /// ``ParseError/outOfRange``, ``ParseError/negative``. Any length of input is safe: digits beyond what
    /// ``Money/maximum`` can hold are refused before any arithmetic, so parsing never overflows.
    public init(parsing text: String, allowNegative: Bool = false) throws(ParseError) {
        var utf8 = Array(text.utf8)[...]
        var negative = false
        if let sign = utf8.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
            negative = sign == UInt8(ascii: "-")
            utf8 = utf8.dropFirst()
        }
        let integerDigits = utf8.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        var rest = utf8.dropFirst(integerDigits.count)
        var fractionDigits: ArraySlice<UInt8> = []
        if rest.first == UInt8(ascii: ".") {
            rest = rest.dropFirst()
            fractionDigits = rest.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
            rest = rest.dropFirst(fractionDigits.count)
            guard !fractionDigits.isEmpty else { throw .notANumber }
        }
        guard rest.isEmpty, !integerDigits.isEmpty else { throw .notANumber }
        guard fractionDigits.count <= Self.fractionDigits else { throw .tooPrecise }
        // Leading zeros are harmless; only significant digits count towards the range. Ten integer digits are at most
        // 9 999 999 999 credits, about 1e14 units: far inside Int64, and the range check below does the rest.
        let significant = integerDigits.drop { $0 == UInt8(ascii: "0") }
        guard significant.count <= 10 else { throw .outOfRange }
        var units: Int64 = 0
        for digit in significant { units = units * 10 + Int64(digit - UInt8(ascii: "0")) }
        units *= Self.unitsPerCredit
        var scale = Self.unitsPerCredit / 10
        for digit in fractionDigits {
            units += Int64(digit - UInt8(ascii: "0")) * scale
            scale /= 10
        }
        guard units <= Self.maximum.minorUnits else { throw .outOfRange }
        if negative, units != 0 {
            guard allowNegative else { throw .negative }
            units = -units
        }
        self.minorUnits = units
    }

    /// `"12.5000"`, `"-0.0725"`, `"0.0000"`.
    public var description: String {
        let magnitude = minorUnits.magnitude
        let whole = magnitude / UInt64(Self.unitsPerCredit)
        let fraction = String(magnitude % UInt64(Self.unitsPerCredit))
        let padded = String(repeating: "0", count: Self.fractionDigits - fraction.count) + fraction
        return (minorUnits < 0 ? "-" : "") + "\(whole).\(padded)"
    }

    public var isNegative: Bool { minorUnits < 0 }

    public static func < (lhs: Money, rhs: Money) -> Bool { lhs.minorUnits < rhs.minorUnits }
    public static func + (lhs: Money, rhs: Money) -> Money { Money(minorUnits: lhs.minorUnits + rhs.minorUnits) }
    public static func - (lhs: Money, rhs: Money) -> Money { Money(minorUnits: lhs.minorUnits - rhs.minorUnits) }
    public static prefix func - (value: Money) -> Money { Money(minorUnits: -value.minorUnits) }
    /// A per-part price times a number of parts (or messages).
    public static func * (lhs: Money, rhs: Int) -> Money { Money(minorUnits: lhs.minorUnits * Int64(rhs)) }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(parsing: text, allowNegative: true)
        } catch {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
