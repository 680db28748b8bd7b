import Contacts
import Foundation
import Ledger
import PostgresLibpq
import Pricing
import ResellerCore
import SMSCore

/// A would-be send, as a sub-account asks for it.
package struct SendRequest: Sendable {
    /// The sender name; the sub-account's default sender when nil.
    package var sender: String?
    package var text: String
    /// Numbers as given (`+`, `00` and separators allowed), in order; duplicates are separate messages.
    package var recipients: [String]
    /// The 1601 `type=long`: more than one part allowed.
    package var long: Bool
    package var scheduleAt: Date?
    /// A group of the sub-account's address book (1601 `naar=groep&groep=`): its members are added after `recipients`.
    package var groupName: String? = nil

    package init(
        sender: String? = nil, text: String, recipients: [String], long: Bool, scheduleAt: Date? = nil,
        groupName: String? = nil
    ) {
        self.sender = sender
        self.text = text
        self.recipients = recipients
        self.long = long
        self.scheduleAt = scheduleAt
        self.groupName = groupName
    }
}

/// A request-level problem: the whole send would be refused with `code`.
package struct SendCheck: Sendable, Hashable {
    /// What the check is about.
    package enum Subject: Sendable, Hashable {
        case account, balance, sender, text, recipients, group, schedule

        /// The field of the send request concerned, as a JSON pointer (`/sender`); nil for the account or balance.
        package var field: String? {
            switch self {
            case .account, .balance: nil
            case .sender: "/sender"
            case .text: "/text"
            case .recipients: "/recipients"
            case .group: "/group"
            case .schedule: "/scheduleAt"
            }
        }
    }

    package var code: GatewayErrorCode
    package var subject: Subject
    package var message: String

    /// The field of the send request concerned, as a JSON pointer; nil for the account or balance.
    package var field: String? { subject.field }
}

/// One recipient of a planned send.
package struct PlannedRecipient: Sendable {
    /// Position in the request; group members follow the listed recipients.
    package var index: Int
    package var input: String
    /// Nil when the input is not a number (103, 106).
    package var number: PhoneNumber?
    package var pricing: NumberPricing?
    /// The retail price of this message: per part × parts; nil when refused.
    package var retailPrice: Money?
    /// The 1601 error this recipient gets (103 106 112 107 114 119); nil when it would be sent.
    package var error: GatewayErrorCode?

    package var country: CallingCode? { pricing?.country ?? number?.callingCode }

    package var price: NumberPrice? {
        if case .priced(let price) = pricing { return price }
        return nil
    }
}

/// Everything a real send would decide, decided without doing anything: the preview shows it, the send path acts on it.
package struct SendPlan: Sendable {
    package var subAccountID: UUID
    package var resellerID: UUID
    /// The instant of the checks and of the price versions.
    package var instant: Date
    package var effectiveStatus: AccountStatus
    /// The group has more members than the send has room for (`SendPlanner.maximumRecipients` with the listed
    /// recipients); its members were not read and are not among `recipients`.
    package var groupOverLimit: Bool = false
    /// More recipients than one send may have (only a group can bring them).
    package var exceedsRecipientLimit: Bool {
        groupOverLimit || recipients.count > SendPlanner.maximumRecipients
    }
    /// The sender that would be used (the request's, else the sub-account's default).
    package var sender: String?
    package var segmentation: Segmentation
    /// Request-level problems in the order a real send checks them; 108 (balance) last.
    package var checks: [SendCheck]
    package var recipients: [PlannedRecipient]
    package var resolution: PriceResolution
    package var balance: WalletBalance
    /// Recipients that would be sent.
    package var messageCount: Int
    /// Parts over those messages.
    package var partCount: Int
    package var retailTotal: Money
    package var wholesaleTotal: Money
    package var upstreamCostTotal: Money

    /// The 1601 answer a real send would give when refused as a whole: the first request-level problem, else (when no
    /// recipient could be sent) the first recipient's error; nil when the send would be accepted.
    package var gatewayCode: GatewayErrorCode? {
        if let first = checks.first { return first.code }
        if messageCount == 0 { return recipients.first?.error ?? .recipientEmpty }
        return nil
    }

    package var isAccepted: Bool { gatewayCode == nil }
    package var availableAfter: Money { balance.available - retailTotal }
}

/// Runs every check of a send and prices it, with no side effects: the pricing preview, and the first half of the
/// send path (which then reserves and stores what the plan says).
///
/// Check order, as the upstream answers them: account status (115/116), sender (109 110 111 113 117), text (102),
/// length (105 118), recipients (103), group (125 126), schedule (121); per recipient: 103 empty, 106 not a number,
/// 112 no calling code, 114/107 from the price layers, 119 more than one part to a country whose upstream takes
/// only single parts; finally the balance (108) against the retail totals of the sendable messages.
///
/// See docs/sending.md, "Checks".
package struct SendPlanner: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    /// The most recipients one request may have.
    package static let maximumRecipients = 10_000

    /// Nil when there is no such sub-account.
    package func plan(subAccountID: UUID, request: SendRequest, at instant: Date = Date()) async throws -> SendPlan? {
        guard let account = try await SubAccountRepository(pool: pool).find(id: subAccountID, scope: .everything) else {
            return nil
        }
        return try await plan(account: account, request: request, at: instant)
    }

    /// Nil when the sub-account has gone (between reading `account` and planning).
    package func plan(account: SubAccountRecord, request: SendRequest, at instant: Date = Date()) async throws
        -> SendPlan?
    {
        guard case .planned(let plan) = try await plan(account: account, request: request, at: instant, replaying: nil)
        else { return nil }
        return plan
    }

    /// What planning found.
    package enum Outcome: Sendable {
        case planned(SendPlan)
        /// The answer stored under the send's `Idempotency-Key` by an earlier send: nothing was priced.
        case stored(IdempotencyRecord)
        /// The sub-account has gone (between reading `account` and planning).
        case gone
    }

    /// Plans `request`; with `idempotency`, the record stored under its key is looked up in the same round trip as the
    /// checks' reads, and answered instead of a plan when there is one.
    package func plan(
        account: SubAccountRecord, request: SendRequest, at instant: Date = Date(),
        replaying idempotency: Idempotency.Request?
    ) async throws -> Outcome {
        let subAccountID = account.id
        let sender = request.sender ?? account.defaultSender

        // A group is expanded to at most the recipients the send has room for, plus one to tell that it has more.
        let expansion: GroupExpansion? =
            if let groupName = request.groupName {
                try await pool.withConnection {
                    try await GroupRepository.expand(
                        subAccountID: subAccountID, groupName: groupName,
                        limit: Self.maximumRecipients - request.recipients.count, on: $0)
                }
            } else { nil }
        var inputs = request.recipients
        if case .members(let members) = expansion { inputs += members.map(\.digits) }

        var recipients: [PlannedRecipient] = []
        recipients.reserveCapacity(inputs.count)
        for (index, input) in inputs.enumerated() {
            var recipient = PlannedRecipient(index: index, input: input)
            do {
                recipient.number = try PhoneNumber(parsing: input)
            } catch PhoneNumber.ParseError.empty {
                recipient.error = .recipientEmpty
            } catch {
                recipient.error = .invalidMobileNumber
            }
            recipients.append(recipient)
        }
        let numbers = recipients.compactMap(\.number)

        // What the checks read, in one round trip (one snapshot): the stored answer, the sender name's standing, both
        // wallets, the part sizes of the upstream connection that sends for the reseller (no credentials, so no
        // cipher), and the price-list versions in force; then the numbers' prices in those versions.
        struct Reads {
            var sender: GatewayErrorCode?
            var balance: WalletBalance
            var resellerWallet: WalletBalance
            var policy: SendingPolicy
            var resolution: PriceResolution
        }
        let (stored, found) = try await pool.withConnection { connection -> (IdempotencyRecord?, Reads?) in
            let (stored, senderCheck, wallets, policy, versions) = try await connection.pipeline(
                idempotency.map { IdempotencyRepository.findRead(scope: $0.scope, key: $0.key) } ?? .constant(nil),
                SenderNameRepository.sendCheckRead(subAccountID: subAccountID, sender: sender),
                LedgerRepository.walletsRead(subAccountID: subAccountID, resellerID: account.resellerID),
                UpstreamConnectionRepository.sendingPolicyRead(forReseller: account.resellerID),
                PriceResolver.versionsRead(subAccountID: subAccountID, at: instant))
            guard stored == nil, let versions else { return (stored, nil) }
            let resolution = try await PriceResolver.resolve(on: connection, versions: versions, numbers: numbers)
            return (
                nil,
                Reads(
                    sender: senderCheck, balance: WalletBalance(wallets.wallet),
                    resellerWallet: WalletBalance(wallets.resellerWallet), policy: policy, resolution: resolution)
            )
        }
        if let stored { return .stored(stored) }
        guard let found else { return .gone }
        let (senderCheck, balance, resellerWallet, policy, resolution) = (
            found.sender, found.balance, found.resellerWallet, found.policy, found.resolution
        )
        let segmentationPolicy = policy.segmentation

        var checks: [SendCheck] = []
        if let code = account.effectiveStatus.gatewayCode {
            checks.append(
                SendCheck(
                    code: code, subject: .account,
                    message: "the account is \(account.effectiveStatus.rawValue): \(code.meaning)"))
        }
        if let code = senderCheck {
            checks.append(SendCheck(code: code, subject: .sender, message: code.meaning))
        }
        let counter = SegmentCounter(policy: segmentationPolicy)
        let segmentation = counter.segment(request.text)
        if let code = counter.lengthError(for: request.text, longAllowed: request.long) {
            let message =
                switch code {
                case .messageTooLongForSinglePart: "\(segmentation.partCount) parts without long: \(code.meaning)"
                case .messageTooLong:
                    "\(segmentation.partCount) parts, at most \(segmentationPolicy.maximumParts): \(code.meaning)"
                default: code.meaning
                }
            checks.append(SendCheck(code: code, subject: .text, message: message))
        }
        if request.recipients.isEmpty, request.groupName == nil {
            checks.append(
                SendCheck(code: .recipientEmpty, subject: .recipients, message: GatewayErrorCode.recipientEmpty.meaning)
            )
        }
        if let code = expansion?.gatewayCode {
            checks.append(SendCheck(code: code, subject: .group, message: code.meaning))
        }
        if let scheduleAt = request.scheduleAt, scheduleAt < instant {
            checks.append(
                SendCheck(
                    code: .scheduleDateInvalid, subject: .schedule,
                    message: "is in the past: \(GatewayErrorCode.scheduleDateInvalid.meaning)"))
        }

        let parts = segmentation.partCount
        var messageCount = 0
        var retailTotal = Money.zero
        var wholesaleTotal = Money.zero
        var upstreamCostTotal = Money.zero
        for index in recipients.indices {
            guard let number = recipients[index].number else { continue }
            let pricing = resolution[number]
            recipients[index].pricing = pricing
            switch pricing {
            case .priced(let price) where parts > 1 && policy.singlePartCountries.contains(price.country.code):
                recipients[index].error = .longMessagesNotOfferedForCountry
            case .priced(let price):
                let retail = price.retail.pricePerPart * parts
                recipients[index].retailPrice = retail
                retailTotal = retailTotal + retail
                wholesaleTotal = wholesaleTotal + price.wholesale.pricePerPart * parts
                upstreamCostTotal = upstreamCostTotal + price.upstreamCost.pricePerPart * parts
                messageCount += 1
            case .refused(let refusal):
                recipients[index].error = refusal.code
            case nil:
                recipients[index].error = .countryNotOffered
            }
        }
        if retailTotal > balance.spendable {
            checks.append(
                SendCheck(
                    code: .insufficientCredits, subject: .balance,
                    message:
                        "the messages cost \(retailTotal) credits; \(balance.spendable) can be spent: \(GatewayErrorCode.insufficientCredits.meaning)"
                ))
        } else if wholesaleTotal > resellerWallet.spendable {
            // A send reserves the wholesale leg on the reseller's wallet too; its balance is the reseller's
            // business, so the sub-account learns only that the send cannot be paid for upstream of it.
            checks.append(
                SendCheck(
                    code: .insufficientCredits, subject: .balance,
                    message:
                        "the reseller's account cannot cover these messages: \(GatewayErrorCode.insufficientCredits.meaning)"
                ))
        }
        return .planned(
            SendPlan(
                subAccountID: subAccountID, resellerID: account.resellerID, instant: instant,
                effectiveStatus: account.effectiveStatus, groupOverLimit: expansion == .overLimit,
                sender: sender, segmentation: segmentation, checks: checks, recipients: recipients,
                resolution: resolution,
                balance: balance,
                messageCount: messageCount, partCount: parts * messageCount, retailTotal: retailTotal,
                wholesaleTotal: wholesaleTotal,
                upstreamCostTotal: upstreamCostTotal))
    }
}

/// A sub-account wallet's balance, as the ledger keeps it.
package struct WalletBalance: Sendable, Hashable {
    /// credits posted − debits posted − debits pending.
    package var available: Money
    /// How far below zero a postpaid wallet may go; zero otherwise.
    package var creditLimit: Money

    /// What a send may reserve at most.
    package var spendable: Money { available + creditLimit }

    /// The balance of `wallet`; empty when the ledger has none.
    package init(_ wallet: LedgerAccountRecord?) {
        self.init(available: Money(wallet?.available ?? 0), creditLimit: Money(wallet?.creditLimit ?? 0))
    }

    package init(available: Money, creditLimit: Money) {
        self.available = available
        self.creditLimit = creditLimit
    }
}
