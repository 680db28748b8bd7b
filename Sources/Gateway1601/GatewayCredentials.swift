import Crypto

/// The upstream account a client sends as `klantuser` / `klantpwd`.
public struct GatewayCredentials: Sendable, Hashable {
    /// How the password travels.
    public enum PasswordEncoding: String, Sendable, Hashable, Codable {
        /// The password as it is.
        case plain
        /// The lowercase hexadecimal SHA-1 of the password's UTF-8 bytes (the document's "extra security" option).
        case sha1Hex
    }

    public var username: String
    public var password: String
    public var passwordEncoding: PasswordEncoding

    public init(username: String, password: String, passwordEncoding: PasswordEncoding = .plain) {
        self.username = username
        self.password = password
        self.passwordEncoding = passwordEncoding
    }

    /// The value of `klantpwd`.
    public var passwordParameter: String {
        switch passwordEncoding {
        case .plain: return password
        case .sha1Hex: return Self.sha1Hex(password)
        }
    }

    /// `klantuser` and `klantpwd`, in that order.
    public var parameters: [GatewayParameter] {
        [GatewayParameter("klantuser", username), GatewayParameter("klantpwd", passwordParameter)]
    }

    /// Lowercase hexadecimal SHA-1 of the UTF-8 bytes of `text`.
    public static func sha1Hex(_ text: String) -> String {
        Insecure.SHA1.hash(data: Array(text.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
