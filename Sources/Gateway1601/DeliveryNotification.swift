import Foundation

/// A delivery callback from the gateway: `GET <your url>?smsid=…&datum=yyyymmddhhmmss&status=…&referentie=…`.
public struct DeliveryNotification: Sendable, Hashable {
    public var smsID: String
    /// The gateway-local time of the status change.
    public var timestamp: GatewayDateTime
    public var status: DeliveryStatus
    /// The `referentie` of the send; `nil` when absent or empty.
    public var reference: String?

    public init(smsID: String, timestamp: GatewayDateTime, status: DeliveryStatus, reference: String?) {
        self.smsID = smsID
        self.timestamp = timestamp
        self.status = status
        self.reference = reference
    }

    /// Why a callback could not be read.
    public enum ParseError: Error, Sendable, Hashable {
        /// A required parameter (`smsid`, `datum`, `status`) is absent or empty.
        case missingParameter(String)
        /// `smsid` is not an id (letters, digits, `-`, `_`).
        case invalidSMSID(String)
        /// `datum` is not a valid `yyyymmddhhmmss`.
        case invalidDate(String)
        /// `status` is not one of the documented statuses.
        case unknownStatus(String)
    }

    /// Reads a callback from its decoded parameters.
    public init(parameters: [GatewayParameter]) throws(ParseError) {
        func required(_ name: String) throws(ParseError) -> String {
            guard let value = parameters.value(of: name)?.trimmingCharacters(in: .whitespacesAndNewlines),
                !value.isEmpty
            else {
                throw .missingParameter(name)
            }
            return value
        }
        let smsID = try required("smsid")
        guard GatewayAnswer.isIdentifier(smsID) else { throw .invalidSMSID(smsID) }
        let datum = try required("datum")
        guard let timestamp = GatewayDateTime(callbackText: datum) else { throw .invalidDate(datum) }
        let statusText = try required("status")
        guard let status = DeliveryStatus(text: statusText) else { throw .unknownStatus(statusText) }
        let reference = parameters.value(of: "referentie")
        self.init(
            smsID: smsID, timestamp: timestamp, status: status, reference: reference?.isEmpty == true ? nil : reference)
    }

    /// Reads a callback from its raw (still percent-encoded) query string.
    public init(query: some StringProtocol) throws(ParseError) {
        try self.init(parameters: FormEncoding.decode(query))
    }

    /// The callback's parameters in the documented order (`referentie` empty when there is none).
    public var parameters: [GatewayParameter] {
        [
            GatewayParameter("smsid", smsID),
            GatewayParameter("datum", timestamp.callbackText),
            GatewayParameter("status", status.rawValue),
            GatewayParameter("referentie", reference ?? ""),
        ]
    }
}
