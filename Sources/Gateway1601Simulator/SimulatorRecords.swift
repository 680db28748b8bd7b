import Foundation
import Gateway1601

/// A message the simulator accepted.
public struct SimulatedMessage: Sendable, Hashable, Codable {
    /// Where the message is in its life.
    public enum State: String, Sendable, Hashable, Codable {
        /// In the outbox, waiting for its `datum`.
        case scheduled
        /// Handed to the (imaginary) network.
        case sent
        /// Removed from the outbox before sending; its credits were refunded.
        case removed
    }

    public var id: String
    public var username: String
    public var recipient: String
    public var sender: String
    public var text: String
    public var parts: Int
    public var encoding: MessageEncoding
    /// The calling code the recipient matched.
    public var callingCode: String
    /// Credits charged for this recipient.
    public var cost: CreditAmount
    public var reference: String?
    /// Sent with `delivery=ja`: delivery callbacks go out when the account has a callback URL.
    public var deliveryReport: Bool
    /// Listed by `action=rapport` (`logging` not `nee`).
    public var logged: Bool
    public var state: State
    public var status: DeliveryStatus
    public var statusUpdatedAt: Date?
    public var acceptedAt: Date
    public var scheduledFor: Date?
    public var outboxID: String?
}

/// One call to `/module/…` as the simulator received and decoded it.
public struct ReceivedRequest: Sendable, Hashable, Codable {
    /// What became of the call.
    public enum Outcome: String, Sendable, Hashable, Codable {
        case answered
        /// The connection was closed without an answer (drop fault).
        case dropped
        /// The call was held and then closed without an answer (hang fault).
        case hung
        /// The call was carried out and its connection then closed without the answer (lost answer fault); `answer` is
        /// what would have been sent.
        case answerLost
    }

    public var sequence: Int
    public var receivedAt: Date
    public var method: String
    public var path: String
    /// The query string exactly as received (still percent-encoded).
    public var rawQuery: String?
    /// The body exactly as received.
    public var rawBody: String?
    /// Query and form-body parameters, decoded, in order (query first).
    public var parameters: [GatewayParameter]
    public var outcome: Outcome
    /// The text answered, when answered.
    public var answer: String?
}

/// One delivery callback the simulator attempted.
public struct SentCallback: Sendable, Hashable, Codable {
    public var messageID: String
    public var url: String
    public var status: DeliveryStatus
    /// The second copy of a duplicated callback.
    public var duplicate: Bool
    /// The receiver's HTTP status, or `nil` when the call failed.
    public var httpStatus: Int?
    public var error: String?
    public var sentAt: Date
}
