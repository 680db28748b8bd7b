import SMSCore
import Testing

@Suite struct PhoneNumberTests {
    @Test(arguments: ["31612345678", "+31612345678", "0031612345678", " +31 (6) 1234-5678 ", "31.6.12345678"])
    func normalisesToDigits(text: String) throws {
        #expect(try PhoneNumber(parsing: text).digits == "31612345678")
    }

    @Test func rejectsWhatIsNotAnInternationalNumber() {
        #expect(throws: PhoneNumber.ParseError.missingCountryCode) { try PhoneNumber(parsing: "0612345678") }
        #expect(throws: PhoneNumber.ParseError.invalidCharacter("a")) { try PhoneNumber(parsing: "31a12345678") }
        #expect(throws: PhoneNumber.ParseError.empty) { try PhoneNumber(parsing: " + ") }
        #expect(throws: PhoneNumber.ParseError.tooShort) { try PhoneNumber(parsing: "290123") }
        #expect(throws: PhoneNumber.ParseError.tooLong) { try PhoneNumber(parsing: "+3161234567890123") }
        #expect(throws: PhoneNumber.ParseError.invalidCharacter("+")) { try PhoneNumber(parsing: "++31612345678") }
    }

    @Test func lengthLimitsAreInclusive() throws {
        #expect(try PhoneNumber(parsing: "2901234").digits.count == PhoneNumber.minimumDigits)
        #expect(try PhoneNumber(parsing: "316123456789012").digits.count == PhoneNumber.maximumDigits)
    }
}

@Suite struct CallingCodeTests {
    @Test(arguments: [
        ("12125550123", "1", "US"), ("18765550123", "1876", "JM"), ("16585550123", "1658", "JM"),
        ("79161234567", "7", "RU"), ("77012345678", "77", "KZ"), ("447911123456", "44", "GB"),
        ("441481123456", "441481", "GG"), ("31612345678", "31", "NL"), ("32478123456", "32", "BE"),
        ("3530871234567", "353", "IE"), ("35818123456", "35818", "AX"), ("5999123456", "5999", "CW"),
    ])
    func longestPrefixWins(digits: String, code: String, region: String) throws {
        let match = try #require(CallingCode.match(digits))
        #expect(match.code == code)
        #expect(match.regions.contains(region))
    }

    @Test func unassignedCodesMatchNothing() {
        for digits in ["2801234567", "4251234567", "8012345678", "99912345678", "2101234567"] {
            #expect(CallingCode.match(digits) == nil, "\(digits)")
        }
    }

    @Test func tableIsWellFormed() throws {
        #expect(CallingCode.all.count > 230)
        #expect(Set(CallingCode.all.map(\.code)).count == CallingCode.all.count)
        for entry in CallingCode.all {
            #expect(entry.code.allSatisfy(\.isWholeNumber) && entry.code.first != "0", "\(entry)")
            #expect(entry.regions.allSatisfy { $0.count == 2 && $0 == $0.uppercased() }, "\(entry)")
        }
        #expect(CallingCode.lookup("882")?.isGeographic == false)
        #expect(Set(CallingCode.codes(forRegion: "jm").map(\.code)) == ["1876", "1658"])
        #expect(try PhoneNumber(parsing: "+1 876 555 0123").callingCode?.code == "1876")
    }
}

@Suite struct SenderNameTests {
    @Test(arguments: [
        "Shop", "ElevenChars", "My Shop", "A&B-Shop_1.", "+31612345678", "+316123456789012", "1601SMS",
    ])
    func accepted(sender: String) {
        #expect(SenderName.validationError(for: sender) == nil)
    }

    @Test(arguments: [
        ("", GatewayErrorCode.senderEmpty), ("   ", .senderEmpty),
        ("TwelveChars1", .senderTooLong), ("A very long sender", .senderTooLong),
        ("+3161234567890123", .senderNumberWithoutPlus), ("31612345678", .senderNumberWithoutPlus),
        ("+31abc", .senderNumberWithoutPlus), ("+", .senderNumberWithoutPlus),
        ("Café", .senderHasSpecialCharacters), ("Zoë", .senderHasSpecialCharacters),
        ("Shop😀", .senderHasSpecialCharacters), ("Shop<1>", .senderHasSpecialCharacters),
    ])
    func refused(sender: String, code: GatewayErrorCode) {
        #expect(SenderName.validationError(for: sender) == code)
    }

    @Test func comparisonIgnoresCaseAndOuterSpaces() {
        #expect(SenderName.comparisonKey("  Bank ") == SenderName.comparisonKey("bank"))
    }
}
