import SMSCore
import Testing

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
