import Foundation
import Gateway1601
import NIOCore
import Synchronization

/// A gateway refusal inside the engine.
struct Refusal: Error {
    let code: GatewayErrorCode
    init(_ code: GatewayErrorCode) { self.code = code }
}

/// The engine's answer to one gateway call.
struct EngineAnswer: Sendable {
    var text: String
    var httpStatus: Int = 200
    /// Messages handed to the network by this call, whose delivery should now progress.
    var sent: [SimulatedMessage] = []
    /// The engine's ``SimulatorEngine/State/epoch`` when `sent` were accepted.
    var epoch = 0
}

/// A message whose status changed, with where its callback goes (if anywhere).
struct StatusChange: Sendable {
    var message: SimulatedMessage
    var callbackURL: String?
}

/// The simulator's state and the gateway's rules, behind one lock: every call sees and changes a consistent state.
final class SimulatorEngine: Sendable {
    /// The most received requests and sent callbacks kept; older entries are dropped.
    static let logLimit = 10_000

    let initial: SimulatorConfiguration
    let random: RandomSource
    let timeZone: TimeZone
    private let state: Mutex<State>

    struct State {
        var accounts: [String: SimulatedAccount]
        var countries: [String: CountryRule]
        var defaultCountryStatus: CountryStatus
        var faults: FaultConfiguration
        var delivery: DeliveryBehaviour
        var messages: [String: SimulatedMessage] = [:]
        /// Message ids in acceptance order.
        var messageOrder: [String] = []
        var nextMessageID: Int
        var nextOutboxID: Int
        /// The last `logLimit` requests and callbacks, oldest first. Ring buffers: dropping the oldest is O(1), where an
        /// array's `removeFirst` moved the whole log on every call once it was full.
        var requests = CircularBuffer<ReceivedRequest>()
        var requestSequence = 0
        var callbacks = CircularBuffer<SentCallback>()
        /// Counts resets. Message ids restart after a reset, so delivery work begun before one must not touch the
        /// new message that reuses its id.
        var epoch = 0

        init(_ configuration: SimulatorConfiguration) {
            accounts = Dictionary(configuration.accounts.map { ($0.username, $0) }, uniquingKeysWith: { $1 })
            countries = configuration.countries
            defaultCountryStatus = configuration.defaultCountryStatus
            faults = configuration.faults
            delivery = configuration.delivery
            nextMessageID = configuration.firstMessageID
            nextOutboxID = configuration.firstOutboxID
        }
    }

    init(configuration: SimulatorConfiguration) {
        self.initial = configuration
        self.random = RandomSource(seed: configuration.seed)
        self.timeZone = TimeZone(identifier: configuration.timeZoneIdentifier) ?? GatewayDateTime.gatewayTimeZone
        self.state = Mutex(State(configuration))
    }

    /// Back to the configuration the simulator started with: accounts, countries, faults, ids, logs and the seed.
    func reset() {
        state.withLock { state in
            let epoch = state.epoch + 1
            state = State(initial)
            state.epoch = epoch
        }
        random.reseed(initial.seed)
    }

    func read<Value: Sendable>(_ body: (State) -> Value) -> Value {
        state.withLock { body($0) }
    }

    func update<Value: Sendable>(_ body: (inout State) -> Value) -> Value {
        state.withLock { body(&$0) }
    }

    // MARK: Gateway calls

    /// Handles a call to `gateway.php`.
    func gateway(_ parameters: [GatewayParameter], now: Date) -> EngineAnswer {
        state.withLock { state in
            do throws(Refusal) {
                let username = try state.authenticate(parameters)
                switch parameters.value(of: "action").flatMap({ $0.isEmpty ? nil : $0.lowercased() }) {
                case nil:
                    return try send(parameters, username: username, now: now, state: &state)
                case "credits":
                    return EngineAnswer(text: GatewayAnswer.credits(state.accounts[username]!.credits.value))
                case "rapport":
                    return EngineAnswer(text: try report(parameters, username: username, state: state))
                case "verwijderbericht":
                    return EngineAnswer(text: try removeFromOutbox(parameters, username: username, state: &state))
                case "verwijderoutbox":
                    return EngineAnswer(text: try state.removeScheduled(of: username) { _ in true })
                case let action?:
                    return EngineAnswer(text: "unknown action \(action)", httpStatus: 400)
                }
            } catch {
                return EngineAnswer(text: GatewayAnswer.error(error.code))
            }
        }
    }

    /// Handles a call to `gatewayrapport.php`.
    func deliveryStatus(_ parameters: [GatewayParameter]) -> EngineAnswer {
        state.withLock { state in
            do throws(Refusal) {
                var owner: String?
                if parameters.value(of: "klantuser") != nil || parameters.value(of: "klantpwd") != nil {
                    owner = try state.authenticate(parameters)
                }
                guard let smsID = parameters.value(of: "smsid"), !smsID.isEmpty else {
                    throw Refusal(.reportCountMissing)
                }
                guard smsID.allSatisfy({ $0.isASCII && $0.isWholeNumber }) else { throw Refusal(.reportCountInvalid) }
                guard let message = state.messages[smsID], owner == nil || message.username == owner else {
                    return EngineAnswer(text: GatewayAnswer.deliveryReport(DeliveryReport(status: .none)))
                }
                let date =
                    isYes(parameters.value(of: "datum")) && message.status.carriesDate
                    ? message.statusUpdatedAt.map { GatewayDateTime($0, in: timeZone) } : nil
                return EngineAnswer(
                    text: GatewayAnswer.deliveryReport(DeliveryReport(status: message.status, updatedAt: date)))
            } catch {
                return EngineAnswer(text: GatewayAnswer.error(error.code))
            }
        }
    }

    private func send(
        _ parameters: [GatewayParameter], username: String, now: Date, state: inout State
    ) throws(Refusal) -> EngineAnswer {
        let account = state.accounts[username]!
        let text = parameters.value(of: "bericht") ?? ""
        guard !text.isEmpty else { throw Refusal(.messageEmpty) }
        let numbers = try recipients(parameters, account: account)

        var destinations: [(number: PhoneNumber, code: String, rule: CountryRule)] = []
        for number in numbers {
            guard let phone = try? PhoneNumber(parsing: number) else { throw Refusal(.invalidMobileNumber) }
            guard let code = phone.callingCode else { throw Refusal(.invalidCountryCode) }
            let rule = state.countries[code.code] ?? CountryRule(status: state.defaultCountryStatus)
            switch rule.status {
            case .enabled: destinations.append((phone, code.code, rule))
            case .notOffered: throw Refusal(.countryNotOffered)
            case .forbidden: throw Refusal(.countryNotPermitted)
            }
        }

        let sender = parameters.value(of: "afzender") ?? ""
        if let code = SenderName.validationError(for: sender) { throw Refusal(code) }
        let senderKey = SenderName.comparisonKey(sender)
        guard !account.blockedSenders.contains(where: { SenderName.comparisonKey($0) == senderKey }) else {
            throw Refusal(.senderNotAllowed)
        }

        let counter = SegmentCounter(policy: initial.segmentation)
        let long = parameters.value(of: "type")?.lowercased() == "long"
        if let code = counter.lengthError(for: text, longAllowed: long) { throw Refusal(code) }
        let segmentation = counter.segment(text)
        if segmentation.partCount > 1, destinations.contains(where: { !$0.rule.longMessages }) {
            throw Refusal(.longMessagesNotOfferedForCountry)
        }

        let scheduledFor = try schedule(parameters.value(of: "datum"), now: now)
        let costs = destinations.map { (account.countryCosts[$0.code] ?? $0.rule.costPerPart) * segmentation.partCount }
        let total = costs.reduce(CreditAmount(0), +)
        guard total <= account.credits else { throw Refusal(.insufficientCredits) }
        if isYes(parameters.value(of: "test")) { return EngineAnswer(text: GatewayAnswer.ok()) }

        let outboxID = scheduledFor.map { _ in String(state.nextOutboxID) }
        if outboxID != nil { state.nextOutboxID += 1 }
        let delivery = isYes(parameters.value(of: "delivery"))
        var accepted: [SimulatedMessage] = []
        var kept: [SimulatedMessage] = []
        var charged = CreditAmount(0)
        for (destination, cost) in zip(destinations, costs) {
            let message = SimulatedMessage(
                id: String(state.nextMessageID), username: username, recipient: destination.number.digits,
                sender: sender, text: text, parts: segmentation.partCount, encoding: segmentation.encoding,
                callingCode: destination.code, cost: cost,
                reference: parameters.value(of: "referentie").map {
                    String(String.UnicodeScalarView($0.unicodeScalars.prefix(SendRequest.maximumReferenceLength)))
                },
                deliveryReport: delivery, logged: parameters.value(of: "logging")?.lowercased() != "nee",
                state: scheduledFor == nil ? .sent : .scheduled, status: .none, statusUpdatedAt: nil,
                acceptedAt: now, scheduledFor: scheduledFor, outboxID: outboxID
            )
            state.nextMessageID += 1
            accepted.append(message)
            // Drift faults (reconciliation tests): answered but neither kept nor charged, or charged and listed twice.
            if scheduledFor == nil, state.faults.unrecordedNext > 0 {
                state.faults.unrecordedNext -= 1
                continue
            }
            state.messages[message.id] = message
            state.messageOrder.append(message.id)
            kept.append(message)
            charged = charged + cost
            if scheduledFor == nil, state.faults.chargeTwiceNext > 0 {
                state.faults.chargeTwiceNext -= 1
                var copy = message
                copy.id = String(state.nextMessageID)
                copy.deliveryReport = false
                state.nextMessageID += 1
                state.messages[copy.id] = copy
                state.messageOrder.append(copy.id)
                charged = charged + cost
            }
        }
        state.accounts[username]!.credits = account.credits - charged
        let answer: String
        if let outboxID, isYes(parameters.value(of: "outboxid")) {
            answer = GatewayAnswer.ok([outboxID])
        } else {
            answer = GatewayAnswer.ok(delivery ? accepted.map(\.id) : [])
        }
        return EngineAnswer(text: answer, sent: scheduledFor == nil ? kept : [], epoch: state.epoch)
    }

    /// The numbers of `naar`, or of the group `naar=groep&groep=…`.
    private func recipients(_ parameters: [GatewayParameter], account: SimulatedAccount) throws(Refusal) -> [String] {
        let naar = (parameters.value(of: "naar") ?? "").trimmingCharacters(in: .whitespaces)
        if naar.lowercased() == "groep" {
            guard let name = parameters.value(of: "groep"), let members = account.groups[name] else {
                throw Refusal(.groupNotFound)
            }
            guard !members.isEmpty else { throw Refusal(.groupEmpty) }
            return members
        }
        let numbers = naar.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !numbers.isEmpty else { throw Refusal(.recipientEmpty) }
        return numbers
    }

    /// The instant of `datum`, or `nil` without one; 121 when malformed or before the current minute.
    private func schedule(_ datum: String?, now: Date) throws(Refusal) -> Date? {
        guard let datum, !datum.isEmpty else { return nil }
        guard let wallClock = GatewayDateTime(scheduleText: datum) else { throw Refusal(.scheduleDateInvalid) }
        let current = GatewayDateTime(now, in: timeZone)
        let currentMinute = GatewayDateTime(
            year: current.year, month: current.month, day: current.day, hour: current.hour, minute: current.minute)!
        guard wallClock >= currentMinute else { throw Refusal(.scheduleDateInvalid) }
        return wallClock.date(in: timeZone)
    }

    private func report(_ parameters: [GatewayParameter], username: String, state: State) throws(Refusal) -> String {
        guard let text = parameters.value(of: "aantal"), !text.isEmpty else { throw Refusal(.reportCountMissing) }
        guard text.allSatisfy({ $0.isASCII && $0.isWholeNumber }), let count = Int(text), count > 0 else {
            throw Refusal(.reportCountInvalid)
        }
        let entries = state.messageOrder.reversed().lazy.compactMap { state.messages[$0] }
            .filter { $0.username == username && $0.logged && $0.state == .sent }
            .prefix(count)
            .map { message in
                ReportEntry(
                    smsID: message.id, recipient: message.recipient, status: message.status,
                    updatedAt: message.status.carriesDate
                        ? message.statusUpdatedAt.map { GatewayDateTime($0, in: self.timeZone) } : nil,
                    reference: message.reference ?? ""
                )
            }
        return GatewayAnswer.reportTable(Array(entries))
    }

    private func removeFromOutbox(
        _ parameters: [GatewayParameter], username: String, state: inout State
    ) throws(Refusal) -> String {
        if let number = parameters.value(of: "naar"), !number.isEmpty {
            let digits = (try? PhoneNumber(parsing: number))?.digits ?? number
            return try state.removeScheduled(of: username) { $0.recipient == digits }
        }
        if let id = parameters.value(of: "id"), !id.isEmpty {
            return try state.removeScheduled(of: username) { $0.outboxID == id }
        }
        throw Refusal(.outboxMessageNotFound)
    }

    // MARK: Delivery progress

    /// Moves every due scheduled message to `sent` and returns them, with the current epoch.
    func releaseDueMessages(now: Date) -> (messages: [SimulatedMessage], epoch: Int) {
        state.withLock { state in
            var due: [SimulatedMessage] = []
            for id in state.messageOrder {
                guard var message = state.messages[id], message.state == .scheduled,
                    let time = message.scheduledFor, time <= now
                else { continue }
                message.state = .sent
                state.messages[id] = message
                due.append(message)
            }
            return (due, state.epoch)
        }
    }

    /// Sets a message's status. Unless `force`, a message that is not sent or already final is left alone (`nil`);
    /// with an `epoch`, so is every message after a later reset.
    func changeStatus(
        of id: String, to status: DeliveryStatus, at now: Date, force: Bool, epoch: Int? = nil
    ) -> StatusChange? {
        state.withLock { state in
            guard epoch == nil || epoch == state.epoch, var message = state.messages[id] else { return nil }
            guard force || (message.state == .sent && !message.status.isFinal) else { return nil }
            message.status = status
            message.statusUpdatedAt = now
            state.messages[id] = message
            let url = message.deliveryReport ? state.accounts[message.username]?.callbackURL : nil
            return StatusChange(message: message, callbackURL: url)
        }
    }

    /// A final outcome drawn with the configured weights.
    func drawOutcome() -> DeliveryStatus {
        let delivery = read(\.delivery)
        let weights = [
            (DeliveryStatus.delivered, delivery.deliveredWeight),
            (.notDelivered, delivery.notDeliveredWeight),
            (.rejected, delivery.rejectedWeight),
        ].map { ($0.0, max(0, $0.1)) }
        let total = weights.reduce(0) { $0 + $1.1 }
        guard total > 0 else { return .delivered }
        var draw = random.unit() * total
        for (status, weight) in weights {
            if draw < weight { return status }
            draw -= weight
        }
        return .delivered
    }

    func isYes(_ value: String?) -> Bool {
        guard let value = value?.lowercased() else { return false }
        return value == "ja" || value == "yes"
    }
}

extension SimulatorEngine.State {
    /// Checks `klantuser`/`klantpwd` (plain or SHA-1 hex) and the account's status; returns the username.
    func authenticate(_ parameters: [GatewayParameter]) throws(Refusal) -> String {
        guard let username = parameters.value(of: "klantuser"), !username.isEmpty else { throw Refusal(.usernameEmpty) }
        guard let password = parameters.value(of: "klantpwd"), !password.isEmpty else { throw Refusal(.passwordEmpty) }
        guard let account = accounts[username],
            password == account.password || password.lowercased() == GatewayCredentials.sha1Hex(account.password)
        else { throw Refusal(.invalidCredentials) }
        switch account.status {
        case .active: return username
        case .blockedPayment: throw Refusal(.accountBlockedForPayment)
        case .blocked: throw Refusal(.accountBlocked)
        }
    }

    /// Removes the scheduled messages of `username` that match, refunding them; `OK`, or 122 when none matched.
    mutating func removeScheduled(
        of username: String, where matches: (SimulatedMessage) -> Bool
    ) throws(Refusal) -> String {
        let ids = messageOrder.filter { id in
            guard let message = messages[id] else { return false }
            return message.username == username && message.state == .scheduled && matches(message)
        }
        guard !ids.isEmpty else { throw Refusal(.outboxMessageNotFound) }
        for id in ids {
            messages[id]!.state = .removed
            if let credits = accounts[username]?.credits { accounts[username]!.credits = credits + messages[id]!.cost }
        }
        return GatewayAnswer.ok()
    }
}
