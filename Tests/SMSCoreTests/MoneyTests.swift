import Foundation
import SMSCore
import Testing

@Suite struct MoneyParsingTests {
    @Test(
        arguments: [
            ("12", 120_000), ("12.5", 125_000), ("12.50", 125_000), ("12.5000", 125_000), ("0.0725", 725),
            ("0.0001", 1), ("+1", 10_000), ("+0.0001", 1), ("0", 0), ("0.0", 0), ("+0", 0),
            ("007.5", 75_000), ("0000000000000000000012", 120_000), ("00.0725", 725),
            ("-0", 0), ("-0.0000", 0),  // minus zero is zero, so it passes even where negatives are refused
            ("999999999.9999", 9_999_999_999_999), ("1000000000", 10_000_000_000_000),
            ("1000000000.0000", 10_000_000_000_000), ("+1000000000.0000", 10_000_000_000_000),
        ] as [(String, Int64)])
    func accepts(text: String, minorUnits: Int64) throws {
        #expect(try Money(parsing: text).minorUnits == minorUnits)
        #expect(try Money(parsing: text, allowNegative: true).minorUnits == minorUnits)
    }

    @Test(
        arguments: [
            ("-3.0725", -30_725), ("-12", -120_000), ("-0.0001", -1), ("-0012.5", -125_000),
            ("-1000000000.0000", -10_000_000_000_000),
        ] as [(String, Int64)])
    func negativeAmountsNeedAllowNegative(text: String, minorUnits: Int64) throws {
        #expect(try Money(parsing: text, allowNegative: true).minorUnits == minorUnits)
        #expect(throws: Money.ParseError.negative) { try Money(parsing: text) }
        #expect(throws: Money.ParseError.negative) { try Money(parsing: text, allowNegative: false) }
    }

    @Test(arguments: [
        "", ".", "1.", ".5", "-.5", "+.5", "-1.", "+", "-", "+-1", "-+1", "--1", "++1", "1-", "1+",
        "1e3", "1E3", "1e-3", "1,5", "1,000", "1 000", "1_000", "1.2.3", "1..2", "0x10", "NaN", "nan", "inf",
        "Infinity", "abc", "€1", "12.5€", "12.5 EUR",
        " 1", "1 ", "\t1", "1\n", "\u{A0}1", " ", "- 1",
        "١٢", "١٢.٥", "１２", "1٫5", "۱۲", "१२", "12.٥",
    ])
    func refusesWhatIsNotADecimalNumber(text: String) {
        #expect(throws: Money.ParseError.notANumber) { try Money(parsing: text) }
        #expect(throws: Money.ParseError.notANumber) { try Money(parsing: text, allowNegative: true) }
    }

    @Test(arguments: ["12.50001", "0.00001", "0.00000", "1.12345", "-1.00000", "1000000000.00000"])
    func refusesMoreThanFourFractionDigits(text: String) {
        #expect(throws: Money.ParseError.tooPrecise) { try Money(parsing: text, allowNegative: true) }
    }

    @Test(arguments: [
        "1000000000.0001", "1000000001", "9999999999.9999", "10000000000", "-1000000000.0001",
        "9223372036854775807", "9223372036854775808", "-9223372036854775808", "18446744073709551616",
        "922337203685477.5807", "99999999999999999999999999999999999999",
    ])
    func refusesAmountsBeyondTheMaximumWithoutOverflowing(text: String) {
        #expect(throws: Money.ParseError.outOfRange) { try Money(parsing: text, allowNegative: true) }
    }

    @Test func veryLongInputIsRefusedWithoutTrapping() {
        let nines = String(repeating: "9", count: 10_000)
        #expect(throws: Money.ParseError.outOfRange) { try Money(parsing: nines) }
        #expect(throws: Money.ParseError.outOfRange) { try Money(parsing: "-" + nines, allowNegative: true) }
        #expect(throws: Money.ParseError.outOfRange) { try Money(parsing: "-" + nines) }
        #expect(throws: Money.ParseError.outOfRange) { try Money(parsing: nines + ".9999") }
        #expect(throws: Money.ParseError.tooPrecise) {
            try Money(parsing: "1." + String(repeating: "0", count: 10_000))
        }
        #expect(throws: Money.ParseError.notANumber) { try Money(parsing: nines + "x") }
    }

    @Test func leadingZerosDoNotCountTowardsTheRange() throws {
        let padded = String(repeating: "0", count: 10_000) + "1000000000.0000"
        #expect(try Money(parsing: padded) == .maximum)
        #expect(try Money(parsing: String(repeating: "0", count: 10_000) + "0.0725").minorUnits == 725)
    }

    @Test func errorsAreCheckedInTheDocumentedOrder() {
        // notANumber, then tooPrecise, then outOfRange, then negative.
        #expect(throws: Money.ParseError.notANumber) { try Money(parsing: "-99999999999.00001x") }
        #expect(throws: Money.ParseError.tooPrecise) { try Money(parsing: "-99999999999.00001") }
        #expect(throws: Money.ParseError.tooPrecise) { try Money(parsing: "-12.50001") }
        #expect(throws: Money.ParseError.outOfRange) { try Money(parsing: "-1000000000.0001") }
    }

    @Test func errorsExplainThemselves() {
        #expect(Money.ParseError.tooPrecise.description == "must have at most 4 decimal places")
        #expect(Money.ParseError.outOfRange.description.contains("1000000000"))
    }

    /// Random number-shaped strings, some with a stray character: parsing must not trap, and it accepts a string
    /// exactly when it has the documented shape and fits, with the value a reference computation gives.
    @Test func randomStringsNeverTrapAndFollowTheGrammar() throws {
        let grammar = try Regex("^[+-]?([0-9]+)(\\.([0-9]{1,4}))?$")
        let junk = Array(".+- e,١")
        var random = SeededRandom(seed: 0x5EED_0001)
        func digits(_ count: Int) -> String {
            String((0..<count).map { _ in "0123456789".randomElement(using: &random)! })
        }
        var (accepted, tooLarge, refused) = (0, 0, 0)
        for _ in 0..<20_000 {
            // Mostly number-shaped text (sign, integer digits around the ten-digit limit, a fraction of up to six
            // digits), sometimes with a stray character inserted.
            var text = ["", "", "+", "-"].randomElement(using: &random)!
            if Bool.random(using: &random) {
                text += String(repeating: "0", count: Int.random(in: 1...3, using: &random))
            }
            let atTheLimit = Int.random(in: 0..<8, using: &random) == 0
            text += atTheLimit ? "1000000000" : digits(Int.random(in: 0...12, using: &random))
            if Bool.random(using: &random) { text += "." + digits(Int.random(in: 0...6, using: &random)) }
            if Int.random(in: 0..<5, using: &random) == 0 {
                let offset = Int.random(in: 0...text.count, using: &random)
                text.insert(junk.randomElement(using: &random)!, at: text.index(text.startIndex, offsetBy: offset))
            }
            let parsed = try? Money(parsing: text, allowNegative: true)
            guard let match = text.wholeMatch(of: grammar) else {
                #expect(parsed == nil, "accepted \(text.debugDescription)")
                refused += 1
                continue
            }
            let integer = String(match.output[1].substring!).drop { $0 == "0" }
            let fraction = match.output[3].substring.map(String.init) ?? ""
            let fits = integer.count < 10 || (integer == "1000000000" && fraction.allSatisfy { $0 == "0" })
            guard fits else {
                #expect(throws: Money.ParseError.outOfRange) { try Money(parsing: text, allowNegative: true) }
                tooLarge += 1
                continue
            }
            let value = try #require(parsed, "refused \(text.debugDescription)")
            let paddedFraction = fraction + String(repeating: "0", count: 4 - fraction.count)
            let expected = (Int64(integer) ?? 0) * 10_000 + Int64(paddedFraction)!
            #expect(value.minorUnits == (text.hasPrefix("-") ? -expected : expected), "\(text.debugDescription)")
            accepted += 1
        }
        // The generator must reach every branch, or the test proves little.
        #expect(accepted > 500 && tooLarge > 500 && refused > 500, "\(accepted) \(tooLarge) \(refused)")
    }
}

@Suite struct MoneyFormattingTests {
    @Test(
        arguments: [
            (0, "0.0000"), (1, "0.0001"), (-1, "-0.0001"), (725, "0.0725"), (-725, "-0.0725"), (9_999, "0.9999"),
            (10_000, "1.0000"), (-10_000, "-1.0000"), (125_000, "12.5000"), (-30_725, "-3.0725"),
            (10_000_000_000_000, "1000000000.0000"), (-10_000_000_000_000, "-1000000000.0000"),
            (Int64.max, "922337203685477.5807"), (Int64.min, "-922337203685477.5808"),
        ] as [(Int64, String)])
    func description(minorUnits: Int64, text: String) {
        #expect(Money(minorUnits: minorUnits).description == text)
    }

    @Test func namedValues() {
        #expect(Money.zero.description == "0.0000")
        #expect(Money.maximum.description == "1000000000.0000")
        #expect(Money(credits: 12).description == "12.0000")
        #expect(Money(credits: -3).minorUnits == -30_000)
        #expect(Money.unitsPerCredit == 10_000)
    }

    @Test func arithmeticIsExact() throws {
        let perPart = try Money(parsing: "0.0725")
        #expect((perPart * 3).description == "0.2175")
        #expect((perPart * 1_000_000).description == "72500.0000")
        #expect((perPart + perPart - perPart) == perPart)
        #expect((-perPart).description == "-0.0725")
        #expect((-perPart).isNegative && !perPart.isNegative && !Money.zero.isNegative)
        #expect(perPart < perPart * 2 && -perPart < .zero)
    }

    /// Every amount in range survives description → parsing, in the canonical form and with trailing zeros dropped.
    @Test func descriptionAndParsingRoundTrip() throws {
        var random = SeededRandom(seed: 0x5EED_0002)
        let maximum = Money.maximum.minorUnits
        var values: [Int64] = [0, 1, -1, 9_999, -9_999, 10_000, -10_000, maximum, -maximum, maximum - 1, -maximum + 1]
        for _ in 0..<10_000 { values.append(Int64.random(in: -maximum...maximum, using: &random)) }
        for _ in 0..<10_000 { values.append(Int64.random(in: -100_000...100_000, using: &random)) }
        for value in values {
            let money = Money(minorUnits: value)
            let text = money.description
            #expect(try Money(parsing: text, allowNegative: true) == money, "\(text)")
            var short = text
            while short.hasSuffix("0") { short.removeLast() }
            if short.hasSuffix(".") { short.removeLast() }
            #expect(try Money(parsing: short, allowNegative: true) == money, "\(short)")
            #expect(text.split(separator: ".").last?.count == 4, "\(text)")
            #expect(text.hasPrefix("-") == (value < 0), "\(text)")
        }
    }
}

@Suite struct MoneyCodingTests {
    struct Line: Codable, Equatable {
        var price: Money
        var total: Money
    }

    @Test func encodesAsADecimalString() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let line = Line(price: Money(minorUnits: 725), total: Money(minorUnits: -30_725))
        let json = String(decoding: try encoder.encode(line), as: UTF8.self)
        #expect(json == #"{"price":"0.0725","total":"-3.0725"}"#)
        #expect(try JSONDecoder().decode(Line.self, from: Data(json.utf8)) == line)
    }

    @Test(
        arguments: [
            (#"["12"]"#, 120_000), (#"["12.5"]"#, 125_000), (#"["0.0725"]"#, 725), (#"["-3.0725"]"#, -30_725),
            (#"["+1"]"#, 10_000),
        ] as [(String, Int64)])
    func decodesDecimalStrings(json: String, minorUnits: Int64) throws {
        let decoded = try JSONDecoder().decode([Money].self, from: Data(json.utf8))
        #expect(decoded.map(\.minorUnits) == [minorUnits])
    }

    @Test(arguments: [#"["1e3"]"#, #"["12.50001"]"#, #"["1000000000.0001"]"#, #"[""]"#, #"[".5"]"#])
    func refusesBadStrings(json: String) {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([Money].self, from: Data(json.utf8)) }
    }

    @Test(arguments: ["[12.5]", "[12]", "[null]", "[true]"])
    func refusesJSONNumbersAndOtherTypes(json: String) {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([Money].self, from: Data(json.utf8)) }
    }
}
