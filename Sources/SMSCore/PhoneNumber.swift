/// A mobile number in international E.164 form: digits only, country code first, no `+` or `00`.
public struct PhoneNumber: Sendable, Hashable, Codable, CustomStringConvertible, Comparable {
    /// The digits, starting with the country calling code.
    public let digits: String

    /// The fewest digits an international number can have (country code included): the shortest numbering
    /// plans (for example +290 Saint Helena, +683 Niue) have four-digit subscriber numbers.
    public static let minimumDigits = 7
    /// The most digits E.164 allows.
    public static let maximumDigits = 15

    /// Why a string is not a valid international number.
    public enum ParseError: Error, Sendable, Hashable {
        /// No digits at all.
        case empty
        /// A character that is neither a digit nor a visual separator.
        case invalidCharacter(Character)
        /// Starts with `0` after any `+`/`00` prefix: a national number without country code.
        case missingCountryCode
        /// Fewer than ``PhoneNumber/minimumDigits`` digits.
        case tooShort
        /// More than ``PhoneNumber/maximumDigits`` digits.
        case tooLong
    }

    /// Separators people write inside numbers; they are dropped.
    static let separators: Set<Character> = [" ", "-", ".", "(", ")", "/", "\t"]

    /// Normalises `text`: trims it, drops visual separators and one leading `+` or `00`, and requires the rest to be
    /// 7…15 ASCII digits not starting with `0`.
    public init(parsing text: String) throws(ParseError) {
        var body = Substring(text.trimmingWhitespace())
        if body.hasPrefix("+") {
            body = body.dropFirst()
        } else if body.hasPrefix("00") {
            body = body.dropFirst(2)
        }
        var digits = ""
        for character in body where !Self.separators.contains(character) {
            guard character.isASCII, character.isWholeNumber else { throw .invalidCharacter(character) }
            digits.append(character)
        }
        guard !digits.isEmpty else { throw .empty }
        guard digits.first != "0" else { throw .missingCountryCode }
        guard digits.count >= Self.minimumDigits else { throw .tooShort }
        guard digits.count <= Self.maximumDigits else { throw .tooLong }
        self.digits = digits
    }

    public var description: String { digits }

    /// The longest matching country calling code, or `nil` when no assigned code matches.
    public var callingCode: CallingCode? { CallingCode.match(digits) }

    public static func < (lhs: PhoneNumber, rhs: PhoneNumber) -> Bool { lhs.digits < rhs.digits }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(parsing: text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "\(error)"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(digits)
    }
}

extension String {
    /// The string without leading and trailing whitespace and newlines (no Foundation needed).
    func trimmingWhitespace() -> Substring {
        let start = firstIndex { !$0.isWhitespace } ?? endIndex
        let end = lastIndex { !$0.isWhitespace }.map(index(after:)) ?? start
        return self[start..<end]
    }
}
