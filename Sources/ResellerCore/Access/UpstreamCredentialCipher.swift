import Crypto
import Foundation

/// How upstream passwords are stored: sealed with AES-256-GCM under a key from configuration
/// (`UPSTREAM_CREDENTIALS_KEY`), or, without a key, as they are.
///
/// The dispatcher must send the password itself, so it cannot be hashed; encrypting it keeps it out of
/// database dumps, backups and replicas, which travel further than the service's environment. The
/// connection id is the associated data, so a sealed password copied onto another row does not open.
///
/// Stored form (`upstream_connection.password_secret`):
/// - `0x00` + UTF-8 password — no key configured;
/// - `0x01` + 8-byte key id + nonce (12) + ciphertext + tag (16) — sealed. The key id (the start of a
///   SHA-256 over the key) tells "sealed under another key" apart from "corrupt".
package struct UpstreamCredentialCipher: Sendable {
    /// Why a stored password cannot be read.
    package enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// Sealed, but this instance has no key.
        case keyMissing
        /// Sealed under a different key than this instance's.
        case wrongKey
        /// Not a stored form this code writes, or the authentication tag does not match.
        case corrupt

        package var description: String {
            switch self {
            case .keyMissing: "the password is encrypted but UPSTREAM_CREDENTIALS_KEY is not set"
            case .wrongKey: "the password is encrypted under a different UPSTREAM_CREDENTIALS_KEY"
            case .corrupt: "the stored password is corrupt"
            }
        }
    }

    /// A key that is not 32 bytes of base64.
    package struct InvalidKey: Error, CustomStringConvertible {
        package var description: String {
            "UPSTREAM_CREDENTIALS_KEY must be 32 random bytes in base64 (e.g. `openssl rand -base64 32`)"
        }
    }

    package static let plainMarker: UInt8 = 0
    package static let sealedMarker: UInt8 = 1

    /// The 32 key bytes (`SymmetricKey` is not `Sendable`; one is made per use).
    private let keyBytes: Data?
    /// 8 bytes identifying the key; nil without a key.
    package let keyID: Data?

    /// Stores passwords as they are.
    package static let unencrypted = UpstreamCredentialCipher(keyBytes: nil)

    private init(keyBytes: Data?) {
        self.keyBytes = keyBytes
        self.keyID = keyBytes.map {
            Data(SHA256.hash(data: Data("sms-reseller upstream credentials key".utf8) + $0).prefix(8))
        }
    }

    private var key: SymmetricKey? { keyBytes.map { SymmetricKey(data: $0) } }

    /// A cipher with the key given as base64 (standard or URL-safe alphabet) of exactly 32 bytes.
    package init(base64Key text: String) throws {
        var normalized = text.trimmingCharacters(in: .whitespacesAndNewlines)
            .replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while normalized.count % 4 != 0 { normalized += "=" }
        guard let bytes = Data(base64Encoded: normalized), bytes.count == 32 else { throw InvalidKey() }
        self.init(keyBytes: bytes)
    }

    /// Whether passwords are encrypted at rest.
    package var encrypts: Bool { keyBytes != nil }

    /// The stored form of `password` for the connection `id`.
    package func seal(_ password: String, connectionID id: UUID) throws -> Data {
        guard let key, let keyID else { return Data([Self.plainMarker]) + Data(password.utf8) }
        let box = try AES.GCM.seal(Data(password.utf8), using: key, authenticating: Self.associatedData(id))
        guard let combined = box.combined else { throw Failure.corrupt }
        return Data([Self.sealedMarker]) + keyID + combined
    }

    /// The password from its stored form.
    package func open(_ stored: Data, connectionID id: UUID) throws(Failure) -> String {
        guard let marker = stored.first else { throw .corrupt }
        let body = stored.dropFirst()
        switch marker {
        case Self.plainMarker:
            guard let text = String(data: body, encoding: .utf8) else { throw .corrupt }
            return text
        case Self.sealedMarker:
            guard let key, let keyID else { throw .keyMissing }
            guard body.count > 8 + 12 + 16 else { throw .corrupt }
            guard body.prefix(8) == keyID else { throw .wrongKey }
            do {
                let box = try AES.GCM.SealedBox(combined: body.dropFirst(8))
                let plain = try AES.GCM.open(box, using: key, authenticating: Self.associatedData(id))
                guard let text = String(data: plain, encoding: .utf8) else { throw Failure.corrupt }
                return text
            } catch {
                throw .corrupt
            }
        default:
            throw .corrupt
        }
    }

    /// Whether `stored` is sealed (under any key).
    package static func isSealed(_ stored: Data) -> Bool { stored.first == sealedMarker }

    /// Whether `stored` should be rewritten under this cipher's key: it is kept as it is while a key is configured.
    package func needsSealing(_ stored: Data) -> Bool { encrypts && stored.first == Self.plainMarker }

    private static func associatedData(_ id: UUID) -> Data {
        Data("upstream_connection:\(id.uuidString.lowercased())".utf8)
    }
}
