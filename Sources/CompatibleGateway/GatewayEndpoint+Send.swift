import Foundation
import Gateway1601
import HTTPTypes
import SMSCore
import ResellerCore
import Ledger
import Pricing
import Contacts
import Webhooks
import Messaging

extension GatewayEndpoint {
    /// A send: the upstream's parameters mapped onto the REST API's send path, refused with the first code in the
    /// upstream's order (``firstRefusal(of:senderMalformed:scheduleInvalid:)``), answered as the upstream answers.
    package func send(_ form: GatewayForm, account: SubAccountRecord) async throws -> GatewayReply {
        // 102: the text (and the reference, the other text the customer writes, when it is not readable).
        if form.isEmpty("bericht") { throw GatewayReply.error(.messageEmpty) }
        guard let text = form.text("bericht"), form["referentie"] != .malformed else { throw GatewayReply.error(.messageEmpty) }

        // 103, then the group (125 when `groep` is missing or unknown, 126 when empty, both decided by the planner).
        var numbers: [String] = []
        var groupName: String?
        switch form["naar"] {
        case .absent:
            throw GatewayReply.error(.recipientEmpty)
        case .malformed:
            throw GatewayReply.error(.invalidMobileNumber)
        case .text(let naar):
            let trimmed = naar.trimmingCharacters(in: .whitespaces)
            if trimmed.lowercased() == "groep" {
                guard let name = form.text("groep") else { throw GatewayReply.error(.groupNotFound) }
                groupName = name
            } else {
                numbers = trimmed.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                if numbers.isEmpty { throw GatewayReply.error(.recipientEmpty) }
                if numbers.count > SendPlanner.maximumRecipients {
                    throw GatewayReply("at most \(SendPlanner.maximumRecipients) numbers per request", status: .contentTooLarge)
                }
            }
        }

        let (scheduleAt, scheduleInvalid, scheduled) = Self.schedule(form["datum"])
        let request = SendRequest(
            sender: form.text("afzender") ?? "", text: text, recipients: numbers, long: form.text("type")?.lowercased() == "long",
            scheduleAt: scheduleAt, groupName: groupName)
        guard let plan = try await sending.planner.plan(account: account, request: request) else {
            throw GatewayReply.error(.invalidCredentials)
        }
        if plan.recipients.count > SendPlanner.maximumRecipients {
            throw GatewayReply("the group and the numbers make more than \(SendPlanner.maximumRecipients) recipients", status: .contentTooLarge)
        }
        if let code = Self.firstRefusal(of: plan, senderMalformed: form["afzender"] == .malformed, scheduleInvalid: scheduleInvalid) {
            throw GatewayReply.error(code)
        }
        // test=ja: every check passed; nothing is stored, so there are no ids to give.
        if form.isYes("test") { return GatewayReply(GatewayAnswer.ok()) }

        // Cut as the upstream cuts it, counted in Unicode scalars as the database's length() counts.
        let reference = form.text("referentie").map {
            String(String.UnicodeScalarView($0.unicodeScalars.prefix(Gateway1601.SendRequest.maximumReferenceLength)))
        }
        let submission = SendSubmission(
            plan: plan, request: request, reference: reference?.isEmpty == false ? reference : nil, callbackURL: nil,
            deliveryReports: form.isYes("delivery"), logging: form.text("logging")?.lowercased() != "nee", outboxNumber: scheduled,
            skipInvalidRecipients: false, actor: Self.actor(account), idempotency: nil)
        switch try await sending.accept(submission) {
        case .accepted(let batch, _):
            if let outboxID = batch.outboxID, form.isYes("outboxid") { return GatewayReply(GatewayAnswer.ok([String(outboxID)])) }
            guard form.isYes("delivery") else { return GatewayReply(GatewayAnswer.ok()) }
            return GatewayReply(GatewayAnswer.ok(batch.messages.compactMap { $0.gatewayID.map(String.init) }))
        case .refused(let problem):
            // Decided again under the accounts' locks: a block (115, 116) or the balance (108) changed since the plan,
            // or the account was closed.
            throw GatewayReply.error(problem.gatewayCode ?? .invalidCredentials)
        }
    }

    /// The upstream's order of checks (PROTOCOL.md, "Checks and their order"): 115/116 (a block since the login), the
    /// group (125, 126), each recipient in turn (106, 112, 107, 114: the first failing one decides), the sender (109,
    /// 110, 113, 111, 117), the length (105, 118), long messages to a country without them (119), the schedule (121),
    /// and credits (108) last. 100–104 and 102/103 were decided before planning.
    package static func firstRefusal(of plan: SendPlan, senderMalformed: Bool, scheduleInvalid: Bool) -> GatewayErrorCode? {
        let checks = plan.checks
        if let blocked = checks.first(where: { $0.subject == .account }) { return blocked.code }
        if let group = checks.first(where: { $0.subject == .group }) { return group.code }
        if let recipient = plan.recipients.lazy.compactMap(\.error).first(where: { $0 != .longMessagesNotOfferedForCountry }) {
            // A "number" without a digit (`+`, `-`) is not a number to the upstream (the planner calls it empty).
            return recipient == .recipientEmpty ? .invalidMobileNumber : recipient
        }
        if senderMalformed { return .senderHasSpecialCharacters }
        if let sender = checks.first(where: { $0.subject == .sender }) { return sender.code }
        if let length = checks.first(where: { $0.subject == .text }) { return length.code }
        if plan.recipients.contains(where: { $0.error == .longMessagesNotOfferedForCountry }) { return .longMessagesNotOfferedForCountry }
        if scheduleInvalid || checks.contains(where: { $0.subject == .schedule }) { return .scheduleDateInvalid }
        return checks.first?.code
    }

    /// `datum=yyyymmddhhii`, the gateway's local time (Europe/Amsterdam): the instant to send at, or nil for now (no
    /// datum, or the current minute, which the upstream sends at once but still answers as scheduled: `scheduled`);
    /// invalid when malformed or in an earlier minute.
    package static func schedule(_ value: GatewayForm.Value, now: Date = Date()) -> (at: Date?, invalid: Bool, scheduled: Bool) {
        switch value {
        case .absent: return (nil, false, false)
        case .malformed: return (nil, true, false)
        case .text(let text):
            if text.isEmpty { return (nil, false, false) }
            guard let wallClock = GatewayDateTime(scheduleText: text) else { return (nil, true, false) }
            let current = GatewayDateTime(now)
            let currentMinute = GatewayDateTime(
                year: current.year, month: current.month, day: current.day, hour: current.hour, minute: current.minute)!
            if wallClock < currentMinute { return (nil, true, false) }
            return (wallClock == currentMinute ? nil : wallClock.date(), false, true)
        }
    }
}
