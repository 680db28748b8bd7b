/// Which final states a tenant's customers pay for, per leg: a message settled in a charged state posts that leg's
/// reservation; in any other state the reservation is voided (the refund).
package struct RefundPolicy: Sendable, Equatable {
    /// The two reservations of a message: the sub-account's retail price and the reseller's wholesale price.
    package enum Leg: Sendable {
        case retail
        case wholesale
    }

    /// Without a policy of its own, a tenant pays for delivered messages only.
    package static let defaultChargedStates: Set<MessageStatus> = [.delivered]
    package static let `default` = RefundPolicy(retail: defaultChargedStates, wholesale: defaultChargedStates)

    package var retail: Set<MessageStatus>
    package var wholesale: Set<MessageStatus>

    package init(retail: Set<MessageStatus>, wholesale: Set<MessageStatus>) {
        self.retail = retail
        self.wholesale = wholesale
    }

    package func chargedStates(_ leg: Leg) -> Set<MessageStatus> {
        switch leg {
        case .retail: retail
        case .wholesale: wholesale
        }
    }

    /// Whether `leg` is charged (posted) for a message settled as `state`, rather than refunded (voided).
    package func charges(_ leg: Leg, settledAs state: MessageStatus) -> Bool { chargedStates(leg).contains(state) }

    /// Whether `leg`, refunded when the message was settled as `previous`, is charged now that it was delivered after
    /// all (by a new transfer: history is never edited).
    package func chargesLateDelivery(_ leg: Leg, after previous: MessageStatus) -> Bool {
        chargedStates(leg).contains(.delivered) && !chargedStates(leg).contains(previous)
    }
}

/// What a final delivery report does to a message, from the state the message is in and the one reported.
package enum Settlement: Sendable, Equatable {
    /// A message in flight settles: it takes the reported state and each reservation is posted or voided by the
    /// refund policy, once.
    case settle
    /// A message settled as `previous` (not delivered, rejected or expired) was delivered after all: it becomes
    /// delivered, and each leg refunded then but charged for delivery is charged now.
    case chargeLateDelivery(after: MessageStatus)
    /// Any other report for a final message is only recorded in its history.
    case recordOnly

    package init(current: MessageStatus, reported: MessageStatus) {
        switch (current, reported) {
        case (.queued, _), (.submitted, _): self = .settle
        case (.notDelivered, .delivered), (.rejected, .delivered), (.expired, .delivered):
            self = .chargeLateDelivery(after: current)
        default: self = .recordOnly
        }
    }
}
