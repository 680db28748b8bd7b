import SMSCore

/// The status of a reseller or sub-account.
package enum AccountStatus: String, Sendable, Codable, CaseIterable {
    case active
    case blockedPayment = "blocked_payment"
    case blocked
    case closed

    /// The 1601 error a send gets when the (effective) status refuses it: 115 for
    /// `blocked_payment`, 116 for `blocked` and `closed`; nil when active.
    package var gatewayCode: GatewayErrorCode? {
        switch self {
        case .active: nil
        case .blockedPayment: .accountBlockedForPayment
        case .blocked, .closed: .accountBlocked
        }
    }
}
