import Foundation
import SMSCore

/// Exact decimal arithmetic for documents in money. Nothing here uses floating point: amounts are integers in a
/// stated scale, products are taken in 128 bits, and every rounding is half-even (banker's rounding) to the
/// currency's minor unit, once, where docs/invoices.md says.
package enum InvoiceMath {
    /// Decimal places of a credit price: one credit costs `creditPrice / 10^8` of the currency.
    package static let creditPriceScale = 8

    /// The minor-unit decimals of an ISO 4217 currency: 0 for currencies without a minor unit in use (JPY, KRW, …),
    /// 3 for the dinars and rials that have one of a thousandth, else 2.
    package static func minorDigits(of currency: String) -> Int {
        switch currency {
        case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF",
            "XOF", "XPF":
            0
        case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND": 3
        default: 2
        }
    }

    /// `numerator / denominator` rounded half to even. `denominator` must be positive.
    package static func roundHalfEven(_ numerator: Int128, _ denominator: Int128) -> Int128 {
        precondition(denominator > 0)
        var quotient = numerator / denominator
        var remainder = numerator % denominator
        if remainder < 0 {
            quotient -= 1
            remainder += denominator
        }
        // Now numerator = quotient × denominator + remainder, 0 ≤ remainder < denominator.
        let twice = remainder * 2
        if twice > denominator || (twice == denominator && quotient % 2 != 0) {
            quotient += 1
        }
        return quotient
    }

    package static func power(_ exponent: Int) -> Int128 {
        var result: Int128 = 1
        for _ in 0..<exponent { result *= 10 }
        return result
    }

    /// The money for `credits` (ledger minor units, 1/10 000 credit) at `creditPrice` (1/10^8 of the currency per
    /// credit), in the currency's minor unit, rounded half-even.
    package static func money(credits: Int64, creditPrice: Int64, digits: Int) -> Int64 {
        // credits × price is in 10^-(4 + 8) of the major unit.
        let exact = Int128(credits) * Int128(creditPrice)
        return Int64(roundHalfEven(exact, power(Money.fractionDigits + creditPriceScale - digits)))
    }

    /// `base × rate` (hundredths of a percent) in the same unit as `base`, rounded half-even.
    package static func vat(base: Int64, rateBasisPoints: Int) -> Int64 {
        Int64(roundHalfEven(Int128(base) * Int128(rateBasisPoints), 10_000))
    }

    /// The net of a gross amount that includes VAT at `rateBasisPoints`, such that `net + vat(net) == gross` when
    /// some net gives exactly that gross (the usual case); otherwise the nearest net, half-even.
    package static func net(ofGross gross: Int64, rateBasisPoints: Int) -> Int64 {
        let estimate = Int64(roundHalfEven(Int128(gross) * 10_000, Int128(10_000 + rateBasisPoints)))
        for candidate in [estimate, estimate - 1, estimate + 1]
        where candidate + vat(base: candidate, rateBasisPoints: rateBasisPoints) == gross {
            return candidate
        }
        return estimate
    }

    /// `value × numerator / denominator`, rounded half-even (a share of a line on a partial credit note).
    package static func share(_ value: Int64, numerator: Int128, denominator: Int128) -> Int64 {
        Int64(roundHalfEven(Int128(value) * numerator, denominator))
    }

    /// `12345` at 2 digits → `"123.45"`; `-5` → `"-0.05"`; 0 digits → `"12345"`.
    package static func format(_ value: Int64, digits: Int) -> String {
        format(wide: Int128(value), digits: digits)
    }

    package static func format(wide value: Int128, digits: Int) -> String {
        let negative = value < 0
        let magnitude = negative ? -value : value
        var text = String(magnitude)
        if digits > 0 {
            if text.count <= digits { text = String(repeating: "0", count: digits - text.count + 1) + text }
            text.insert(".", at: text.index(text.endIndex, offsetBy: -digits))
        }
        return negative ? "-" + text : text
    }

    /// An exact decimal `value / 10^scale` with trailing zeros removed but at least `minimumDigits` decimals.
    package static func formatExact(_ value: Int128, scale: Int, minimumDigits: Int) -> String {
        var value = value
        var scale = scale
        while scale > minimumDigits, value % 10 == 0 {
            value /= 10
            scale -= 1
        }
        return format(wide: value, digits: scale)
    }

    /// Parses a non-negative decimal with at most `digits` decimals into `value × 10^digits`; nil when malformed.
    package static func parse(_ text: String, digits: Int, maximum: Int64) -> Int64? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let whole = parts.first, !whole.isEmpty, whole.count <= 18,
            whole.allSatisfy({ $0.isASCII && $0.isNumber })
        else { return nil }
        var fraction = ""
        if parts.count == 2 {
            fraction = String(parts[1])
            guard !fraction.isEmpty, fraction.count <= digits, fraction.allSatisfy({ $0.isASCII && $0.isNumber })
            else { return nil }
        }
        fraction += String(repeating: "0", count: digits - fraction.count)
        guard let wholeValue = Int128(whole), let fractionValue = Int128(fraction.isEmpty ? "0" : fraction) else {
            return nil
        }
        let value = wholeValue * power(digits) + fractionValue
        guard value <= Int128(maximum) else { return nil }
        return Int64(value)
    }

    /// A VAT rate in hundredths of a percent as the documents print it: `2100` → `"21.00"`.
    package static func formatRate(_ basisPoints: Int) -> String { format(Int64(basisPoints), digits: 2) }
}
