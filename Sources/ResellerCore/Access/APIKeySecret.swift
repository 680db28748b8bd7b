import Crypto
import Foundation

/// API key secrets: `sk_live_` and 32 random bytes in base64url (43 characters), 256 bits of entropy.
/// Only the SHA-256 of the whole secret is stored; the first ``prefixLength`` characters are kept to
/// recognise a key in listings.
package enum APIKeySecret {
    package static let scheme = "sk_live_"
    package static let prefixLength = 16

    /// A fresh secret.
    package static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return scheme + base64URL(bytes)
    }

    /// What is stored and looked up.
    package static func hash(_ secret: String) -> Data {
        Data(SHA256.hash(data: Data(secret.utf8)))
    }

    package static func prefix(of secret: String) -> String {
        String(secret.prefix(prefixLength))
    }

    /// Whether the text has the shape of a key at all (cheap check before a database lookup).
    package static func isWellFormed(_ secret: String) -> Bool {
        secret.hasPrefix(scheme) && secret.utf8.count == scheme.utf8.count + 43
            && secret.utf8.dropFirst(scheme.utf8.count).allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"),
                    UInt8(ascii: "-"), UInt8(ascii: "_"):
                    true
                default:
                    false
                }
            }
    }

    package static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
