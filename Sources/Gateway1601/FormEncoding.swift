/// One `name=value` pair of a gateway request or callback, decoded.
public struct GatewayParameter: Sendable, Hashable, Codable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

extension [GatewayParameter] {
    /// The value of the first parameter called `name`, or `nil`.
    public func value(of name: String) -> String? {
        first { $0.name == name }?.value
    }
}

/// `application/x-www-form-urlencoded` encoding as the gateway expects it: UTF-8, percent-encoded exactly once.
///
/// Encoding keeps only RFC 3986 unreserved characters (`A–Z a–z 0–9 - . _ ~`) literal and writes a space as `%20`,
/// so the same string is correct both in a query and in a form body, and `+ & % =` inside values survive.
/// Decoding accepts both `+` and `%20` for a space, as every form decoder must.
public enum FormEncoding {
    /// Encodes `parameters` in order as `name=value&…`.
    public static func encode(_ parameters: [GatewayParameter]) -> String {
        parameters.map { "\(percentEncode($0.name))=\(percentEncode($0.value))" }.joined(separator: "&")
    }

    /// Decodes `name=value&…`; a pair without `=` has an empty value, empty pairs are skipped, malformed percent
    /// escapes are kept literally, and invalid UTF-8 becomes U+FFFD.
    ///
    /// The split is on the bytes `&` and `=`, not on Characters: a combining mark right after one would make it part
    /// of a Character `"=\u{20DD}"` that equals neither.
    public static func decode(_ encoded: some StringProtocol) -> [GatewayParameter] {
        Array(encoded.utf8).split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            return GatewayParameter(
                percentDecode(utf8: Array(parts[0])),
                parts.count > 1 ? percentDecode(utf8: Array(parts[1])) : ""
            )
        }
    }

    /// Percent-encodes every UTF-8 byte outside the unreserved set.
    public static func percentEncode(_ text: some StringProtocol) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if isUnreserved(byte) {
                result.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                result += "%" + String(hexDigits[Int(byte >> 4)]) + String(hexDigits[Int(byte & 0xF)])
            }
        }
        return result
    }

    /// Reverses form encoding: `+` is a space, `%XX` a byte; the bytes are read as UTF-8.
    public static func percentDecode(_ text: some StringProtocol) -> String {
        percentDecode(utf8: Array(text.utf8))
    }

    private static func percentDecode(utf8: [UInt8]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var index = 0
        while index < utf8.count {
            let byte = utf8[index]
            if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), index + 2 < utf8.count,
                let high = hexValue(utf8[index + 1]), let low = hexValue(utf8[index + 2])
            {
                bytes.append(high << 4 | low)
                index += 2
            } else {
                bytes.append(byte)
            }
            index += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789ABCDEF")

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    fileprivate static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension FormEncoding {
    /// One `name=value` pair read strictly: a side is nil when it is not valid encoding (see ``strictPercentDecode(_:)``).
    public struct StrictPair: Sendable, Hashable {
        public var name: String?
        public var value: String?

        public init(name: String?, value: String?) {
            self.name = name
            self.value = value
        }
    }

    /// Decodes `name=value&…` like ``decode(_:)``, but without repairing anything: a side with a malformed escape or
    /// bytes that are not UTF-8 is nil, so that the caller can refuse it instead of passing on replacement characters.
    public static func decodeStrictly(_ encoded: some Collection<UInt8>) -> [StrictPair] {
        encoded.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            return StrictPair(
                name: strictPercentDecode(parts[0]), value: parts.count > 1 ? strictPercentDecode(parts[1]) : "")
        }
    }

    /// Reverses form encoding exactly once (`+` is a space, `%XX` a byte), or nil when a `%` is not followed by two hex
    /// digits, when the bytes are not UTF-8, or when the text holds U+FFFD — the mark a broken conversion leaves, as
    /// when an HTTP stack has already replaced bytes that were not UTF-8 — or U+0000, which no text of the protocol
    /// holds and which C strings (libpq's parameters among them) would cut at.
    public static func strictPercentDecode(_ encoded: some Collection<UInt8>) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(encoded.count)
        var iterator = encoded.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            default:
                bytes.append(byte)
            }
        }
        return strictText(bytes)
    }

    /// The bytes as text when they are UTF-8 without U+FFFD or U+0000 (see ``strictPercentDecode(_:)``), else nil.
    public static func strictText(_ bytes: some Collection<UInt8>) -> String? {
        guard let text = String(validating: bytes, as: UTF8.self),
            !text.unicodeScalars.contains(where: { $0 == "\u{FFFD}" || $0 == "\u{0}" })
        else { return nil }
        return text
    }
}
