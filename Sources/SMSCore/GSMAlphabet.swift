/// The GSM 03.38 default alphabet and its extension table, as Unicode scalars.
public enum GSMAlphabet {
    /// Characters of the default alphabet: one septet each.
    public static let basic: Set<Unicode.Scalar> = Set(
        "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
            .unicodeScalars
    )

    /// Characters of the extension table: an escape septet plus one, so two septets each.
    public static let extended: Set<Unicode.Scalar> = Set("\u{0C}^{}\\[~]|€".unicodeScalars)

    /// The number of septets `scalar` takes in GSM-7, or `nil` when GSM-7 cannot carry it.
    public static func septets(for scalar: Unicode.Scalar) -> Int? {
        if basic.contains(scalar) { return 1 }
        if extended.contains(scalar) { return 2 }
        return nil
    }

    /// Whether every character of `text` can be carried in GSM-7.
    public static func canEncode(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { septets(for: $0) != nil }
    }
}
