import Foundation
import SMSCore
import Testing

@Suite struct PhoneNumberTests {
    @Test(arguments: [
        ("31612345678", "31612345678"), ("+31612345678", "31612345678"), ("0031612345678", "31612345678"),
        (" +31 (6) 1234-5678 ", "31612345678"), ("31.6.12345678", "31612345678"), ("+31/6/12345678", "31612345678"),
        ("+31\t6 12345678", "31612345678"), ("\n+31612345678\n", "31612345678"), ("00 31 6 12345678", "31612345678"),
        ("+1 (876) 555-0123", "18765550123"), ("+44 7700 900123", "447700900123"), ("+7 701 234 56 78", "77012345678"),
        ("2901234", "2901234"), ("316123456789012", "316123456789012"), ("+31 612 345 678 9012", "316123456789012"),
        ("00316123456789012", "316123456789012"),
    ])
    func normalisesToDigits(text: String, digits: String) throws {
        let number = try PhoneNumber(parsing: text)
        #expect(number.digits == digits)
        #expect(number.description == digits)
        #expect(try PhoneNumber(parsing: number.digits) == number)
    }

    @Test(arguments: [
        ("", PhoneNumber.ParseError.empty), ("   ", .empty), ("+", .empty), ("00", .empty), ("+ (-) ", .empty),
        ("0612345678", .missingCountryCode), ("+0612345678", .missingCountryCode), ("0", .missingCountryCode),
        ("000031612345678", .missingCountryCode),  // only one 00 is an international prefix
        ("+0031612345678", .missingCountryCode),  // + and 00 together are one prefix too many
        ("++31612345678", .invalidCharacter("+")), ("0+31612345678", .invalidCharacter("+")),
        ("31612345678+", .invalidCharacter("+")), ("31a12345678", .invalidCharacter("a")),
        ("31_612345678", .invalidCharacter("_")), ("31612345678x", .invalidCharacter("x")),
        ("3161234567８", .invalidCharacter("８")), ("٣١٦١٢٣٤٥٦٧٨", .invalidCharacter("٣")),
        ("31612345678,31612345677", .invalidCharacter(",")), ("tel:+31612345678", .invalidCharacter("t")),
        ("290123", .tooShort), ("+290 123", .tooShort), ("1", .tooShort),
        ("3161234567890123", .tooLong), ("+3161234567890123", .tooLong), ("0031612345678901234", .tooLong),
    ])
    func refusesWhatIsNotAnInternationalNumber(text: String, error: PhoneNumber.ParseError) {
        #expect(throws: error) { try PhoneNumber(parsing: text) }
    }

    @Test func veryLongInputIsRefused() {
        let nines = String(repeating: "9", count: 10_000)
        #expect(throws: PhoneNumber.ParseError.tooLong) { try PhoneNumber(parsing: nines) }
        // Sixteen digits, however they are spaced.
        #expect(throws: PhoneNumber.ParseError.tooLong) {
            try PhoneNumber(parsing: "+" + String(repeating: "1 ", count: 16))
        }
    }

    @Test func lengthLimitsAreE164s() {
        #expect(PhoneNumber.minimumDigits == 7)
        #expect(PhoneNumber.maximumDigits == 15)
    }

    @Test func knowsItsCallingCode() throws {
        #expect(try PhoneNumber(parsing: "+1 876 555 0123").callingCode?.code == "1876")
        #expect(try PhoneNumber(parsing: "+31 6 12345678").callingCode?.code == "31")
        #expect(try PhoneNumber(parsing: "+999 1234567").callingCode == nil)
    }

    @Test func codableAsDigitString() throws {
        let decoded = try JSONDecoder().decode([PhoneNumber].self, from: Data(#"["+31 6 12345678"]"#.utf8))
        #expect(decoded.map(\.digits) == ["31612345678"])
        #expect(String(decoding: try JSONEncoder().encode(decoded), as: UTF8.self) == #"["31612345678"]"#)
        for json in [#"["0612345678"]"#, "[31612345678]"] {
            #expect(throws: DecodingError.self) { try JSONDecoder().decode([PhoneNumber].self, from: Data(json.utf8)) }
        }
    }
}
