import Foundation
import SMSCore

/// Collects field errors for one request and throws them together as a 422 `validation_failed`.
/// Field names are JSON pointers into the body (`/name`) or query parameter names (`limit`).
package struct Validator {
    package private(set) var errors: [DomainError.FieldError] = []

    package init() {}

    package mutating func fail(_ field: String, _ message: String, gatewayCode: GatewayErrorCode? = nil) {
        errors.append(.init(field: field, message: message, gatewayCode: gatewayCode))
    }

    /// Trimmed text of 1…`maximum` characters without control characters; nil when absent.
    package mutating func text(_ value: String?, field: String, minimum: Int = 1, maximum: Int) -> String? {
        guard let value else { return nil }
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        // Counted in Unicode scalars, as PostgreSQL's length() and the CHECK constraints count them
        // (a grapheme count lets "e\u{301}" × 150 through to a constraint violation, a 500).
        let length = trimmed.unicodeScalars.count
        if length < minimum || length > maximum {
            fail(field, "must be \(minimum) to \(maximum) characters")
            return nil
        }
        if trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            fail(field, "must not contain control characters")
            return nil
        }
        return trimmed
    }

    package mutating func required(_ value: String?, field: String, maximum: Int) -> String {
        text(value, field: field, maximum: maximum) ?? ""
    }

    /// A plausible e-mail address (something@domain.tld), at most 320 characters; "" stays "" (clears it).
    package mutating func email(_ value: String?, field: String) -> String? {
        guard let value else { return nil }
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return "" }
        let parts = trimmed.split(separator: "@", omittingEmptySubsequences: false)
        guard trimmed.unicodeScalars.count <= 320, parts.count == 2, !parts[0].isEmpty, parts[1].contains("."),
            !parts[1].hasPrefix("."), !parts[1].hasSuffix("."), !trimmed.contains(where: \.isWhitespace),
            !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            fail(field, "must be an e-mail address")
            return nil
        }
        return trimmed
    }

    /// 3–64 characters of `a–z A–Z 0–9 . _ -`.
    package mutating func username(_ value: String, field: String) -> String {
        if !Self.isUsername(value) { fail(field, "must be 3 to 64 characters of a-z A-Z 0-9 . _ -") }
        return value
    }

    /// Whether `value` can be a sub-account's username (the 1601-compatible login checks names against it too).
    package static func isUsername(_ value: String) -> Bool {
        (3...64).contains(value.utf8.count)
            && value.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"),
                    UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                    true
                default:
                    false
                }
            }
    }

    /// 8–128 characters, kept exactly as given (no trimming).
    package mutating func password(_ value: String?, field: String) -> String? {
        guard let value else { return nil }
        if !(8...128).contains(value.count) { fail(field, "must be 8 to 128 characters") }
        return value
    }

    /// A sender name under the 1601 rules (109/110/111/113), with the gateway code on failure.
    package mutating func sender(_ value: String?, field: String) -> String? {
        guard let value else { return nil }
        if let code = SenderName.validationError(for: value) {
            fail(field, code.description, gatewayCode: code)
            return nil
        }
        return value
    }

    /// An amount of credits as a decimal string (at most 4 decimals, at most `Money.maximum` in magnitude).
    /// Zero is refused unless `allowZero`; a sign unless `allowNegative`.
    package mutating func amount(_ value: String, field: String, allowNegative: Bool = false, allowZero: Bool = false)
        -> Money
    {
        do {
            let amount = try Money(parsing: value, allowNegative: allowNegative)
            if amount == .zero, !allowZero { fail(field, "must not be zero") }
            return amount
        } catch {
            fail(field, error.description)
            return .zero
        }
    }

    /// A page size of 1…200 (default 50).
    package mutating func limit(_ value: Int32?) -> Int {
        guard let value else { return 50 }
        if !(1...200).contains(value) {
            fail("limit", "must be 1 to 200")
            return 50
        }
        return Int(value)
    }

    /// A numeric cursor from a previous page.
    package mutating func integerCursor(_ value: String?) -> Int64? {
        guard let value else { return nil }
        guard let number = Int64(value), number > 0 else {
            fail("cursor", "is not a cursor this list returned")
            return nil
        }
        return number
    }

    /// A cursor from a previous page.
    package mutating func uuidCursor(_ value: String?) -> UUID? {
        guard let value else { return nil }
        guard let id = UUID(uuidString: value) else {
            fail("cursor", "is not a cursor this list returned")
            return nil
        }
        return id
    }

    /// Throws the collected errors, if any.
    package func check() throws {
        if !errors.isEmpty { throw DomainError.validation(errors) }
    }
}
