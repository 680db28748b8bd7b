import ResellerCore
import SMSCore

/// Which refusal a send that fails checks gets: the REST API reports every request-level problem with its field; the
/// 1601-compatible endpoint answers the first failing check in the upstream's order, as `ERROR <code>`.
package enum RefusalOrder: Sendable, Equatable {
    /// The REST API's: the first request-level check decides the problem's kind and carries every check as a field
    /// error; then the recipients that cannot be sent to (unless skipped).
    case rest
    /// The upstream's order of checks (`Sources/Gateway1601/PROTOCOL.md`, "Checks and their order"): 115/116, the group
    /// (125, 126), each recipient in turn (106, 112, 107, 114: the first failing one decides), the sender (109, 110,
    /// 113, 111, 117), the length (105, 118), long messages to a country without them (119), the schedule (121), and
    /// credits (108) last. What the endpoint decided from the raw parameters comes in as `senderMalformed` (113) and
    /// `scheduleInvalid` (121).
    case upstream(senderMalformed: Bool, scheduleInvalid: Bool)

    /// The refusal `plan` gets in this order; nil when it would be accepted. `skipInvalidRecipients` accepts a send
    /// some of whose recipients cannot be sent to (the REST API's `invalidRecipients: skip`).
    package func refusal(of plan: SendPlan, skipInvalidRecipients: Bool) -> DomainError? {
        switch self {
        case .rest: Self.restRefusal(of: plan, skipInvalidRecipients: skipInvalidRecipients)
        case .upstream(let senderMalformed, let scheduleInvalid):
            Self.upstreamRefusal(of: plan, senderMalformed: senderMalformed, scheduleInvalid: scheduleInvalid)
        }
    }

    private static func restRefusal(of plan: SendPlan, skipInvalidRecipients: Bool) -> DomainError? {
        if plan.exceedsRecipientLimit {
            // Only a group can get here: listed recipients are limited before planning, and a group is read only up to
            // one member more than the send has room for.
            return .validation([
                .init(
                    field: "/group",
                    message:
                        "its members with the listed recipients make more than \(SendPlanner.maximumRecipients) recipients; at most \(SendPlanner.maximumRecipients) per send"
                )
            ])
        }
        if let first = plan.checks.first {
            switch first.subject {
            case .account:
                return DomainError(.forbidden, code: "account_blocked", detail: first.message, gatewayCode: first.code)
            case .balance:
                return DomainError(
                    .insufficientCredits, code: "insufficient_credits", detail: first.message, gatewayCode: first.code)
            case .sender, .text, .recipients, .group, .schedule:
                return DomainError(
                    .unprocessable, code: "send_refused", detail: "The send was refused: \(first.message).",
                    gatewayCode: first.code,
                    fieldErrors: plan.checks.map {
                        DomainError.FieldError(field: $0.field ?? "", message: $0.message, gatewayCode: $0.code)
                    })
            }
        }
        let invalid = plan.recipients.filter { $0.error != nil }
        if plan.messageCount == 0 || (!invalid.isEmpty && !skipInvalidRecipients) {
            return DomainError(
                .unprocessable, code: "recipients_refused",
                detail: "\(invalid.count) of \(plan.recipients.count) recipients cannot be sent to"
                    + (plan.messageCount > 0 ? " (send with invalidRecipients: skip to send to the others)." : "."),
                gatewayCode: invalid.first?.error ?? .recipientEmpty,
                fieldErrors: invalid.prefix(1_000).compactMap { recipient in
                    recipient.error.map {
                        DomainError.FieldError(
                            field: "/recipients/\(recipient.index)", message: "\(recipient.input): \($0.meaning)",
                            gatewayCode: $0)
                    }
                })
        }
        return nil
    }

    private static func upstreamRefusal(of plan: SendPlan, senderMalformed: Bool, scheduleInvalid: Bool) -> DomainError?
    {
        if plan.exceedsRecipientLimit {
            return DomainError(
                .tooLarge, code: "too_many_recipients",
                detail: "the group and the numbers make more than \(SendPlanner.maximumRecipients) recipients")
        }
        return firstUpstreamCode(of: plan, senderMalformed: senderMalformed, scheduleInvalid: scheduleInvalid).map {
            code in
            DomainError(.unprocessable, code: "send_refused", detail: code.meaning, gatewayCode: code)
        }
    }

    private static func firstUpstreamCode(of plan: SendPlan, senderMalformed: Bool, scheduleInvalid: Bool)
        -> GatewayErrorCode?
    {
        let checks = plan.checks
        if let blocked = checks.first(where: { $0.subject == .account }) { return blocked.code }
        if let group = checks.first(where: { $0.subject == .group }) { return group.code }
        if let recipient = plan.recipients.lazy.compactMap(\.error).first(where: {
            $0 != .longMessagesNotOfferedForCountry
        }) {
            // A "number" without a digit (`+`, `-`) is not a number to the upstream (the planner calls it empty).
            return recipient == .recipientEmpty ? .invalidMobileNumber : recipient
        }
        if senderMalformed { return .senderHasSpecialCharacters }
        if let sender = checks.first(where: { $0.subject == .sender }) { return sender.code }
        if let length = checks.first(where: { $0.subject == .text }) { return length.code }
        if plan.recipients.contains(where: { $0.error == .longMessagesNotOfferedForCountry }) {
            return .longMessagesNotOfferedForCountry
        }
        if scheduleInvalid || checks.contains(where: { $0.subject == .schedule }) { return .scheduleDateInvalid }
        return checks.first?.code
    }
}
