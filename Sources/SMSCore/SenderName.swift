/// The rules the gateway applies to a sender name (`afzender`).
///
/// - empty (or whitespace only) → 109;
/// - numeric sender: a sender that starts with `+` or consists of digits only is a number; it must be `+` followed
///   by digits only, at most ``maximumNumericLength`` characters in all (so `+` and 15 digits) → otherwise 110;
/// - alphanumeric sender: only characters of ``safeCharacters`` → otherwise 113 (checked first, because the length
///   of characters that networks cannot carry is meaningless); at most ``maximumAlphanumericLength`` → otherwise 111.
public enum SenderName {
    /// Longest alphanumeric sender the networks display (the upstream's "up to 11 characters").
    public static let maximumAlphanumericLength = 11
    /// Longest numeric sender, the `+` included: `+` and the 15 digits of an E.164 number.
    public static let maximumNumericLength = 16

    /// Characters every network accepts in an alphanumeric sender: ASCII letters and digits, space and `. - _ & ' !`.
    public static let safeCharacters: Set<Character> = Set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .-_&'!"
    )

    /// The gateway error for `sender`, or `nil` when the sender is acceptable.
    public static func validationError(for sender: String) -> GatewayErrorCode? {
        if sender.allSatisfy(\.isWhitespace) { return .senderEmpty }
        if sender.hasPrefix("+") || sender.allSatisfy(isASCIIDigit) {
            let digits = sender.dropFirst()
            guard sender.hasPrefix("+"), !digits.isEmpty, digits.allSatisfy(isASCIIDigit),
                sender.count <= maximumNumericLength
            else { return .senderNumberWithoutPlus }
            return nil
        }
        guard sender.allSatisfy(safeCharacters.contains) else { return .senderHasSpecialCharacters }
        guard sender.count <= maximumAlphanumericLength else { return .senderTooLong }
        return nil
    }

    /// The form in which sender names are compared with a block list: trimmed and case-folded.
    public static func comparisonKey(_ sender: String) -> String {
        String(sender.trimmingWhitespace()).lowercased()
    }

    private static func isASCIIDigit(_ character: Character) -> Bool {
        character.isASCII && character.isWholeNumber
    }
}
