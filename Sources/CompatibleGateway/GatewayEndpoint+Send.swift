import Contacts
import Foundation
import Gateway1601
import HTTPTypes
import Messaging
import ResellerCore
import SMSCore

extension GatewayEndpoint {
    /// A send: the upstream's parameters mapped onto the one send path (`Sending`), refused with the first code in the
    /// upstream's order (`RefusalOrder.upstream`), answered as the upstream answers.
    package func send(_ form: GatewayForm, account: SubAccountRecord) async throws -> GatewayReply {
        // 102: the text (and the reference, the other text the customer writes, when it is not readable).
        if form.isEmpty("bericht") { throw GatewayReply.error(.messageEmpty) }
        guard let text = form.text("bericht"), form["referentie"] != .malformed else {
            throw GatewayReply.error(.messageEmpty)
        }

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
                numbers = trimmed.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
                    !$0.isEmpty
                }
                if numbers.isEmpty { throw GatewayReply.error(.recipientEmpty) }
                if numbers.count > SendPlanner.maximumRecipients {
                    throw GatewayReply(
                        "at most \(SendPlanner.maximumRecipients) numbers per request", status: .contentTooLarge)
                }
            }
        }

        let (scheduleAt, scheduleInvalid, scheduled) = Self.schedule(form["datum"])
        let request = SendRequest(
            sender: form.text("afzender") ?? "", text: text, recipients: numbers,
            long: form.text("type")?.lowercased() == "long",
            scheduleAt: scheduleAt, groupName: groupName)
        // Cut as the upstream cuts it, counted in Unicode scalars as the database's length() counts.
        let reference = form.text("referentie").map {
            String(String.UnicodeScalarView($0.unicodeScalars.prefix(Gateway1601.SendRequest.maximumReferenceLength)))
        }
        let options = SendOptions(
            reference: reference?.isEmpty == false ? reference : nil, deliveryReports: form.isYes("delivery"),
            logging: form.text("logging")?.lowercased() != "nee", outboxNumber: scheduled)
        let outcome = try await sending.send(
            account: account, request: request, options: options, actor: Self.actor(account),
            mode: form.isYes("test") ? .preview : .commit(nil),
            order: .upstream(senderMalformed: form["afzender"] == .malformed, scheduleInvalid: scheduleInvalid))
        switch outcome {
        case .checked:
            // test=ja: every check passed; nothing is stored, so there are no ids to give.
            return GatewayReply(GatewayAnswer.ok())
        case .accepted(let batch, _):
            if let outboxID = batch.outboxID, form.isYes("outboxid") {
                return GatewayReply(GatewayAnswer.ok([String(outboxID)]))
            }
            guard form.isYes("delivery") else { return GatewayReply(GatewayAnswer.ok()) }
            return GatewayReply(GatewayAnswer.ok(batch.messages.compactMap { $0.gatewayID.map(String.init) }))
        case .refused(let refusal) where refusal.kind == .tooLarge:
            throw GatewayReply(refusal.detail ?? "too large", status: .contentTooLarge)
        case .refused(let refusal):
            // The first check in the upstream's order; or decided again under the accounts' locks: a block (115, 116)
            // or the balance (108) changed since the plan. No sub-account (it has gone since the login): 104.
            throw GatewayReply.error(refusal.gatewayCode ?? .invalidCredentials)
        }
    }

    /// `datum=yyyymmddhhii`, the gateway's local time (Europe/Amsterdam): the instant to send at, or nil for now (no
    /// datum, or the current minute, which the upstream sends at once but still answers as scheduled: `scheduled`);
    /// invalid when malformed or in an earlier minute.
    package static func schedule(_ value: GatewayForm.Value, now: Date = Date()) -> (
        at: Date?, invalid: Bool, scheduled: Bool
    ) {
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
