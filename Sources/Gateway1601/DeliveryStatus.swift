/// A delivery status as the gateway reports it.
public enum DeliveryStatus: String, Sendable, Hashable, CaseIterable, Codable {
    case delivered = "DELIVERED"
    case notDelivered = "NOT DELIVERED"
    case buffered = "BUFFERED"
    case submitted = "SUBMITTED"
    case rejected = "REJECTED"
    case none = "NONE"

    /// Whether no later status can follow (DELIVERED, NOT DELIVERED, REJECTED).
    public var isFinal: Bool {
        switch self {
        case .delivered, .notDelivered, .rejected: return true
        case .buffered, .submitted, .none: return false
        }
    }

    /// Whether the gateway adds a date with `datum=ja`: not for SUBMITTED and NONE, which have no report yet.
    public var carriesDate: Bool { self != .submitted && self != .none }

    /// Parses a status word, ASCII case-insensitively; `NOT_DELIVERED` and extra inner spaces are accepted. Only ASCII
    /// is upper-cased: Unicode upper-casing would read lookalikes such as `DELıVERED` or `BUﬀERED` as statuses.
    public init?(text: some StringProtocol) {
        guard text.unicodeScalars.allSatisfy(\.isASCII) else { return nil }
        let words = text.uppercased().split { $0 == " " || $0 == "_" || $0 == "\t" }
        guard let status = Self(rawValue: words.joined(separator: " ")) else { return nil }
        self = status
    }
}

/// The answer of `gatewayrapport.php`: a status and, with `datum=ja`, when it was last updated.
public struct DeliveryReport: Sendable, Hashable {
    public var status: DeliveryStatus
    /// The gateway-local time of the last update; `nil` when not asked for or not available.
    public var updatedAt: GatewayDateTime?

    public init(status: DeliveryStatus, updatedAt: GatewayDateTime? = nil) {
        self.status = status
        self.updatedAt = updatedAt
    }
}

/// One row of the `action=rapport` table (format in `PROTOCOL.md`).
public struct ReportEntry: Sendable, Hashable {
    public var smsID: String
    public var recipient: String
    public var status: DeliveryStatus
    public var updatedAt: GatewayDateTime?
    public var reference: String

    public init(
        smsID: String, recipient: String, status: DeliveryStatus, updatedAt: GatewayDateTime?, reference: String
    ) {
        self.smsID = smsID
        self.recipient = recipient
        self.status = status
        self.updatedAt = updatedAt
        self.reference = reference
    }
}
