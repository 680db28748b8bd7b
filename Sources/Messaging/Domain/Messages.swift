import Foundation
import SMSCore

/// Where a message is in its life (docs/sending.md).
package enum MessageStatus: String, Sendable, Codable, CaseIterable {
    /// Accepted for a later time; cancellable until then.
    case scheduled
    /// Waiting in the outbox for the dispatcher.
    case queued
    /// Taken by the upstream, which answered with its id.
    case submitted
    case delivered
    case notDelivered = "not_delivered"
    case rejected
    case expired
    /// Refused by the upstream for good, or not taken before the retry deadline; its reservations are voided.
    case failed
    /// Cancelled before it was handed upstream; its reservations are voided.
    case cancelled

    /// Whether nothing will change it any more (delivery reports aside).
    package var isFinal: Bool {
        switch self {
        case .scheduled, .queued, .submitted: false
        case .delivered, .notDelivered, .rejected, .expired, .failed, .cancelled: true
        }
    }
}

/// One message of an accepted send, as the answer lists it.
package struct AcceptedMessage: Sendable, Codable, Hashable {
    package var id: UUID
    /// The message's number, as the 1601-compatible endpoint answers it (`OK <id>`); nil in answers stored before
    /// messages had one.
    package var gatewayID: Int64?
    /// Position of the recipient in the request (group members follow the listed numbers).
    package var index: Int
    package var number: String
    package var country: String
    package var parts: Int
    /// Retail price of the whole message.
    package var price: Money
}

/// A recipient left out of an accepted send (with `invalidRecipients: skip`).
package struct RefusedRecipient: Sendable, Codable, Hashable {
    package var index: Int
    package var input: String
    package var code: Int
    package var message: String
}

/// The answer to an accepted send; stored as the idempotent response, so a replay answers the same.
package struct AcceptedBatch: Sendable, Codable, Hashable {
    package var batchID: UUID
    /// A scheduled batch's outbox number (the 1601 `outboxid`).
    package var outboxID: Int64?
    package var subAccountID: UUID
    package var acceptedAt: Date
    package var scheduleAt: Date?
    /// `queued` or `scheduled`: the status every message starts in.
    package var status: MessageStatus
    package var sender: String
    package var encoding: MessageEncoding
    package var parts: Int
    package var reference: String?
    package var retailTotal: Money
    package var messages: [AcceptedMessage]
    package var refused: [RefusedRecipient]
}

extension UUID {
    /// A version 7 UUID: 48 bits of Unix milliseconds, then random bits. Ids made in order sort in order, so the
    /// many rows a send inserts land on neighbouring index pages instead of random ones.
    package static func timeOrdered(at date: Date = Date()) -> UUID {
        // The random bits of a version 4 UUID (one call to the system's generator), the time over its first 48 bits.
        var bytes = UUID().uuid
        let milliseconds = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        withUnsafeMutableBytes(of: &bytes) { raw in
            for index in 0..<6 { raw[index] = UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - index))) }
            raw[6] = 0x70 | (raw[6] & 0x0F)
            raw[8] = 0x80 | (raw[8] & 0x3F)
        }
        return UUID(uuid: bytes)
    }
}
