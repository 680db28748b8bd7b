/// How a message is encoded on the air interface.
public enum MessageEncoding: String, Sendable, Hashable, Codable {
    /// GSM 03.38 7-bit default alphabet (with its extension table).
    case gsm7
    /// UCS-2, counted in UTF-16 code units.
    case ucs2
}

/// The part sizes and the maximum number of parts of an SMS connection.
public struct SegmentationPolicy: Sendable, Hashable, Codable {
    /// Septets in a single GSM-7 message.
    public var gsmSinglePart: Int
    /// Septets per part of a concatenated GSM-7 message (the rest of the part holds the concatenation header).
    public var gsmConcatenatedPart: Int
    /// UTF-16 units in a single UCS-2 message.
    public var ucs2SinglePart: Int
    /// UTF-16 units per part of a concatenated UCS-2 message.
    public var ucs2ConcatenatedPart: Int
    /// The largest number of parts a long message may have.
    public var maximumParts: Int

    public init(
        gsmSinglePart: Int = 160,
        gsmConcatenatedPart: Int = 153,
        ucs2SinglePart: Int = 70,
        ucs2ConcatenatedPart: Int = 67,
        maximumParts: Int = 3
    ) {
        self.gsmSinglePart = gsmSinglePart
        self.gsmConcatenatedPart = gsmConcatenatedPart
        self.ucs2SinglePart = ucs2SinglePart
        self.ucs2ConcatenatedPart = ucs2ConcatenatedPart
        self.maximumParts = maximumParts
    }

    /// The 1601SMS gateway's limits: 160/153 GSM-7, 70/67 UCS-2, at most 3 parts.
    public static let standard = SegmentationPolicy()
}

/// The result of splitting a message into SMS parts.
public struct Segmentation: Sendable, Hashable {
    /// The encoding the message needs.
    public var encoding: MessageEncoding
    /// The total length in the encoding's units: septets for GSM-7, UTF-16 units for UCS-2.
    public var length: Int
    /// The text of each part, in order. A message that fits one part has exactly one (possibly empty) part.
    public var parts: [String]

    /// The number of parts the message is sent as.
    public var partCount: Int { parts.count }
}

/// Splits message text into SMS parts the way a GSM network does.
///
/// GSM-7 is used when every character is in the GSM 03.38 alphabet; extension-table characters cost two septets
/// and an escape pair is never split across parts. Otherwise the text is UCS-2, counted in UTF-16 units, and a
/// surrogate pair is never split across parts.
public struct SegmentCounter: Sendable, Hashable {
    /// The part sizes and maximum part count in force.
    public var policy: SegmentationPolicy

    public init(policy: SegmentationPolicy = .standard) {
        self.policy = policy
    }

    /// Splits `text` into parts.
    public func segment(_ text: String) -> Segmentation {
        let encoding: MessageEncoding = GSMAlphabet.canEncode(text) ? .gsm7 : .ucs2
        let cost: (Unicode.Scalar) -> Int =
            encoding == .gsm7 ? { GSMAlphabet.septets(for: $0) ?? 2 } : { $0.utf16.count }
        let length = text.unicodeScalars.reduce(0) { $0 + cost($1) }
        let single = encoding == .gsm7 ? policy.gsmSinglePart : policy.ucs2SinglePart
        if length <= single {
            return Segmentation(encoding: encoding, length: length, parts: [text])
        }
        let partSize = encoding == .gsm7 ? policy.gsmConcatenatedPart : policy.ucs2ConcatenatedPart
        var parts: [String] = []
        var current = String.UnicodeScalarView()
        var used = 0
        for scalar in text.unicodeScalars {
            let units = cost(scalar)
            if used + units > partSize, !current.isEmpty {
                parts.append(String(current))
                current = String.UnicodeScalarView()
                used = 0
            }
            current.append(scalar)
            used += units
        }
        parts.append(String(current))
        return Segmentation(encoding: encoding, length: length, parts: parts)
    }

    /// The error the gateway gives for the length of `text`, or `nil` when the length is acceptable.
    ///
    /// Empty text is 102; more than one part without `type=long` is 105; more than ``SegmentationPolicy/maximumParts``
    /// parts is 118. Whether a country takes long messages at all (119) is the caller's decision.
    public func lengthError(for text: String, longAllowed: Bool) -> GatewayErrorCode? {
        if text.isEmpty { return .messageEmpty }
        let parts = segment(text).partCount
        if parts > 1, !longAllowed { return .messageTooLongForSinglePart }
        if parts > policy.maximumParts { return .messageTooLong }
        return nil
    }
}
