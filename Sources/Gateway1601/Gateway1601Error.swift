/// A failed call to the gateway, classified for a dispatcher.
public enum Gateway1601Error: Error, Sendable, Hashable, CustomStringConvertible {
    /// The gateway answered `ERROR <code>`.
    case gateway(GatewayErrorCode)
    /// No complete answer within the request timeout. The gateway may have acted on the request.
    case timeout
    /// The connection could not be made (refused, unreachable, no connection in time): the request never arrived.
    case connectionFailed(String)
    /// The connection broke after the request was sent (reset, closed without an answer). The gateway may have acted.
    case connectionLost(String)
    /// An HTTP status other than 2xx.
    case httpStatus(Int)
    /// A 2xx answer that is not a documented answer for the call (the body is attached).
    case malformedAnswer(String)
    /// The call could not be expressed (for example a reference over 75 characters).
    case invalidRequest(String)
    /// The connection settings are unusable (a base URL that is not an `http`/`https` URL): no call can be made.
    case invalidConfiguration(String)

    /// What a dispatcher should do with the message or the connection after this failure.
    public enum Disposition: String, Sendable, Hashable, Codable {
        /// Transient: keep the message queued and retry with backoff.
        case retry
        /// Permanent for this message: retrying it unchanged gives the same answer.
        case failMessage
        /// The upstream account or connection is unusable (credentials, blocked, no credits, wrong URL, answers that
        /// are not the protocol): stop sending through it, alert someone, keep messages queued.
        case pauseConnection
    }

    /// The disposition: 120/150, timeouts, connection errors and HTTP 5xx retry; account-level codes, other HTTP
    /// statuses, malformed answers and unusable settings pause the connection; every other gateway code and a call
    /// that cannot be expressed fail the message.
    public var disposition: Disposition {
        switch self {
        case .gateway(let code):
            switch code.category {
            case .transient: return .retry
            case .account: return .pauseConnection
            case .message: return .failMessage
            }
        case .timeout, .connectionFailed, .connectionLost:
            return .retry
        case .httpStatus(let status):
            return (500...599).contains(status) ? .retry : .pauseConnection
        case .malformedAnswer, .invalidConfiguration:
            return .pauseConnection
        case .invalidRequest:
            return .failMessage
        }
    }

    /// Whether retrying later may succeed without anyone changing anything.
    public var isTransient: Bool { disposition == .retry }

    /// Whether the gateway may have acted on the request although no usable answer came back: a retry may then
    /// send the message twice, so the dispatcher should check (report or delivery status) before resending.
    public var mayHaveBeenProcessed: Bool {
        switch self {
        case .timeout, .connectionLost, .malformedAnswer: return true
        case .httpStatus(let status): return (500...599).contains(status)
        case .gateway, .connectionFailed, .invalidRequest, .invalidConfiguration: return false
        }
    }

    public var description: String {
        switch self {
        case .gateway(let code): return code.description
        case .timeout: return "gateway request timed out"
        case .connectionFailed(let reason): return "could not connect to the gateway: \(reason)"
        case .connectionLost(let reason): return "connection to the gateway lost: \(reason)"
        case .httpStatus(let status): return "gateway answered HTTP \(status)"
        case .malformedAnswer(let body): return "gateway answer not understood: \(body.prefix(200).debugDescription)"
        case .invalidRequest(let reason): return "invalid gateway request: \(reason)"
        case .invalidConfiguration(let reason): return "invalid gateway configuration: \(reason)"
        }
    }
}
