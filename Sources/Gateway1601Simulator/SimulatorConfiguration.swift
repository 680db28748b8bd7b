import Foundation
import Gateway1601

/// An amount of gateway credits; exact (decimal), written in JSON as a string such as `"1.5"` (numbers are read too).
public struct CreditAmount: Sendable, Hashable, Comparable, Codable, ExpressibleByIntegerLiteral,
    CustomStringConvertible
{
    public var value: Decimal

    public init(_ value: Decimal) { self.value = value }
    public init(integerLiteral value: Int) { self.value = Decimal(value) }

    /// Parses `"12"`, `"0.5"`, `"-3"`; `nil` otherwise.
    public init?(_ text: String) {
        guard let value = try? GatewayAnswer.parseCredits(text) else { return nil }
        self.value = value
    }

    public var description: String { GatewayAnswer.credits(value) }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }
    public static func + (lhs: Self, rhs: Self) -> Self { Self(lhs.value + rhs.value) }
    public static func - (lhs: Self, rhs: Self) -> Self { Self(lhs.value - rhs.value) }
    public static func * (lhs: Self, parts: Int) -> Self { Self(lhs.value * Decimal(parts)) }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self), let amount = Self(text) {
            self = amount
        } else if let number = try? container.decode(Int.self) {
            self.init(Decimal(number))
        } else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "expected a decimal amount such as \"1.5\"")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Whether an account may send.
public enum AccountStatus: String, Sendable, Hashable, Codable {
    case active
    /// Blocked for a missing payment: every call answers `ERROR 115`.
    case blockedPayment = "blocked_payment"
    /// Blocked for other reasons: every call answers `ERROR 116`.
    case blocked
}

/// An upstream account kept by the simulator.
public struct SimulatedAccount: Sendable, Hashable, Codable {
    public var username: String
    /// The plain password; the gateway accepts it or its SHA-1 hex.
    public var password: String
    public var credits: CreditAmount
    public var status: AccountStatus
    /// Per-country credit cost per part, keyed by calling code (`"31"`, `"1876"`), overriding the country table.
    public var countryCosts: [String: CreditAmount]
    /// Address-book groups: name → numbers.
    public var groups: [String: [String]]
    /// Sender names refused with `ERROR 117` (compared trimmed and case-insensitively).
    public var blockedSenders: [String]
    /// Where delivery callbacks go (GET); `nil` sends none.
    public var callbackURL: String?

    public init(
        username: String,
        password: String,
        credits: CreditAmount = 1000,
        status: AccountStatus = .active,
        countryCosts: [String: CreditAmount] = [:],
        groups: [String: [String]] = [:],
        blockedSenders: [String] = [],
        callbackURL: String? = nil
    ) {
        self.username = username
        self.password = password
        self.credits = credits
        self.status = status
        self.countryCosts = countryCosts
        self.groups = groups
        self.blockedSenders = blockedSenders
        self.callbackURL = callbackURL
    }

    enum CodingKeys: String, CodingKey {
        case username, password, credits, status, countryCosts, groups, blockedSenders, callbackURL
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            username: try container.decode(String.self, forKey: .username),
            password: try container.decode(String.self, forKey: .password),
            credits: try container.decodeIfPresent(CreditAmount.self, forKey: .credits) ?? 1000,
            status: try container.decodeIfPresent(AccountStatus.self, forKey: .status) ?? .active,
            countryCosts: try container.decodeIfPresent([String: CreditAmount].self, forKey: .countryCosts) ?? [:],
            groups: try container.decodeIfPresent([String: [String]].self, forKey: .groups) ?? [:],
            blockedSenders: try container.decodeIfPresent([String].self, forKey: .blockedSenders) ?? [],
            callbackURL: try container.decodeIfPresent(String.self, forKey: .callbackURL)
        )
    }
}

/// How the simulator treats a destination country (see `PROTOCOL.md` for the three country errors).
public enum CountryStatus: String, Sendable, Hashable, Codable {
    /// Messages are accepted and charged.
    case enabled
    /// A real country the gateway does not sell: `ERROR 107`.
    case notOffered = "not_offered"
    /// A country the gateway refuses on principle (sanctions, fraud): `ERROR 114`.
    case forbidden
}

/// The simulator's settings for one calling code.
public struct CountryRule: Sendable, Hashable, Codable {
    public var status: CountryStatus
    /// Credits per part.
    public var costPerPart: CreditAmount
    /// Whether messages of more than one part are accepted (otherwise `ERROR 119`).
    public var longMessages: Bool

    public init(status: CountryStatus = .enabled, costPerPart: CreditAmount = 1, longMessages: Bool = true) {
        self.status = status
        self.costPerPart = costPerPart
        self.longMessages = longMessages
    }
}

/// Delays and final outcomes of the simulated delivery (SUBMITTED → BUFFERED → final).
public struct DeliveryBehaviour: Sendable, Hashable, Codable {
    /// Whether sent messages progress by themselves; when `false` only `/_sim/messages/{id}/status` moves them.
    public var automatic: Bool
    /// Delay from acceptance to SUBMITTED.
    public var submittedAfterMilliseconds: Int
    /// Delay from SUBMITTED to BUFFERED.
    public var bufferedAfterMilliseconds: Int
    /// Delay from BUFFERED to the final status.
    public var finalAfterMilliseconds: Int
    /// Relative weights of the final outcomes.
    public var deliveredWeight: Double
    public var notDeliveredWeight: Double
    public var rejectedWeight: Double

    public init(
        automatic: Bool = true,
        submittedAfterMilliseconds: Int = 200,
        bufferedAfterMilliseconds: Int = 500,
        finalAfterMilliseconds: Int = 1000,
        deliveredWeight: Double = 0.9,
        notDeliveredWeight: Double = 0.07,
        rejectedWeight: Double = 0.03
    ) {
        self.automatic = automatic
        self.submittedAfterMilliseconds = submittedAfterMilliseconds
        self.bufferedAfterMilliseconds = bufferedAfterMilliseconds
        self.finalAfterMilliseconds = finalAfterMilliseconds
        self.deliveredWeight = deliveredWeight
        self.notDeliveredWeight = notDeliveredWeight
        self.rejectedWeight = rejectedWeight
    }
}

/// A period during which every gateway call answers `ERROR 150`.
public struct MaintenanceWindow: Sendable, Hashable, Codable {
    public var start: Date
    public var end: Date

    public init(start: Date, end: Date) {
        self.start = start
        self.end = end
    }

    public func contains(_ date: Date) -> Bool { start <= date && date < end }
}

/// Faults injected into gateway calls and callbacks. Rates are probabilities in 0…1.
///
/// Per gateway call: first the latency, then one draw picks at most one of drop, hang, `ERROR 120`, `ERROR 150`, lost
/// answer (in that order of the cumulative rates); an active maintenance window answers 150 before any check.
public struct FaultConfiguration: Sendable, Hashable, Codable {
    /// Added latency, uniformly distributed between the bounds (equal bounds: fixed).
    public var latencyMinimumMilliseconds: Int
    public var latencyMaximumMilliseconds: Int
    /// Share of calls answered `ERROR 120`.
    public var gatewayErrorRate: Double
    /// Share of calls answered `ERROR 150`.
    public var maintenanceErrorRate: Double
    /// Share of calls that hang for ``hangMilliseconds`` and then lose their connection without an answer.
    public var hangRate: Double
    public var hangMilliseconds: Int
    /// Share of calls whose connection is closed without an answer.
    public var dropRate: Double
    /// Share of calls carried out (a send is accepted, charged and reported like any other) whose connection is then
    /// closed without the answer: the client cannot tell whether its message was taken.
    public var answerLossRate: Double
    /// Maintenance switched on now, until switched off.
    public var maintenance: Bool
    /// Scheduled maintenance.
    public var maintenanceWindows: [MaintenanceWindow]
    /// Share of callbacks never sent.
    public var callbackLossRate: Double
    /// Share of callbacks sent twice.
    public var callbackDuplicateRate: Double
    /// Share of messages whose intermediate callbacks are held back and sent after the final one.
    public var callbackOutOfOrderRate: Double
    /// Drift for reconciliation tests: the next this many messages sent at once are each charged twice and listed twice
    /// in the report table (a second message with its own id and the same `referentie`, without callbacks); the answer
    /// names the first. Counts down with each message.
    public var chargeTwiceNext: Int
    /// Drift for reconciliation tests: the next this many messages sent at once are answered `OK <id>` as usual but
    /// neither kept (not in the report table, no callbacks, `NONE` at `gatewayrapport.php`) nor charged.
    public var unrecordedNext: Int

    public init(
        latencyMinimumMilliseconds: Int = 0,
        latencyMaximumMilliseconds: Int = 0,
        gatewayErrorRate: Double = 0,
        maintenanceErrorRate: Double = 0,
        hangRate: Double = 0,
        hangMilliseconds: Int = 30_000,
        dropRate: Double = 0,
        answerLossRate: Double = 0,
        maintenance: Bool = false,
        maintenanceWindows: [MaintenanceWindow] = [],
        callbackLossRate: Double = 0,
        callbackDuplicateRate: Double = 0,
        callbackOutOfOrderRate: Double = 0,
        chargeTwiceNext: Int = 0,
        unrecordedNext: Int = 0
    ) {
        self.latencyMinimumMilliseconds = latencyMinimumMilliseconds
        self.latencyMaximumMilliseconds = latencyMaximumMilliseconds
        self.gatewayErrorRate = gatewayErrorRate
        self.maintenanceErrorRate = maintenanceErrorRate
        self.hangRate = hangRate
        self.hangMilliseconds = hangMilliseconds
        self.dropRate = dropRate
        self.answerLossRate = answerLossRate
        self.maintenance = maintenance
        self.maintenanceWindows = maintenanceWindows
        self.callbackLossRate = callbackLossRate
        self.callbackDuplicateRate = callbackDuplicateRate
        self.callbackOutOfOrderRate = callbackOutOfOrderRate
        self.chargeTwiceNext = chargeTwiceNext
        self.unrecordedNext = unrecordedNext
    }

    enum CodingKeys: String, CodingKey {
        case latencyMinimumMilliseconds, latencyMaximumMilliseconds, gatewayErrorRate, maintenanceErrorRate, hangRate
        case hangMilliseconds, dropRate, answerLossRate, maintenance, maintenanceWindows, callbackLossRate
        case callbackDuplicateRate, callbackOutOfOrderRate, chargeTwiceNext, unrecordedNext
    }

    /// Reads every key; the two drift counters may be left out (configurations written before they existed).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            latencyMinimumMilliseconds: try container.decode(Int.self, forKey: .latencyMinimumMilliseconds),
            latencyMaximumMilliseconds: try container.decode(Int.self, forKey: .latencyMaximumMilliseconds),
            gatewayErrorRate: try container.decode(Double.self, forKey: .gatewayErrorRate),
            maintenanceErrorRate: try container.decode(Double.self, forKey: .maintenanceErrorRate),
            hangRate: try container.decode(Double.self, forKey: .hangRate),
            hangMilliseconds: try container.decode(Int.self, forKey: .hangMilliseconds),
            dropRate: try container.decode(Double.self, forKey: .dropRate),
            answerLossRate: try container.decode(Double.self, forKey: .answerLossRate),
            maintenance: try container.decode(Bool.self, forKey: .maintenance),
            maintenanceWindows: try container.decode([MaintenanceWindow].self, forKey: .maintenanceWindows),
            callbackLossRate: try container.decode(Double.self, forKey: .callbackLossRate),
            callbackDuplicateRate: try container.decode(Double.self, forKey: .callbackDuplicateRate),
            callbackOutOfOrderRate: try container.decode(Double.self, forKey: .callbackOutOfOrderRate),
            chargeTwiceNext: try container.decodeIfPresent(Int.self, forKey: .chargeTwiceNext) ?? 0,
            unrecordedNext: try container.decodeIfPresent(Int.self, forKey: .unrecordedNext) ?? 0
        )
    }

    /// No faults at all.
    public static let none = FaultConfiguration()

    /// Whether maintenance is on at `date`.
    public func inMaintenance(at date: Date) -> Bool {
        maintenance || maintenanceWindows.contains { $0.contains(date) }
    }
}

/// Everything the simulator starts with.
public struct SimulatorConfiguration: Sendable, Hashable, Codable {
    /// Address to bind.
    public var host: String
    /// Port to bind; 0 picks a free one (read it back with ``GatewaySimulator/listeningPort()``).
    public var port: Int
    /// Seed of every random choice (faults, outcomes), so runs repeat.
    public var seed: UInt64
    public var accounts: [SimulatedAccount]
    /// Country rules keyed by calling code as in `CallingCode` (`"31"`, `"1876"`); a code has its own rule or none.
    public var countries: [String: CountryRule]
    /// Status of assigned calling codes without a rule.
    public var defaultCountryStatus: CountryStatus
    public var segmentation: SegmentationPolicy
    /// Time zone of `datum` and of report dates.
    public var timeZoneIdentifier: String
    public var faults: FaultConfiguration
    public var delivery: DeliveryBehaviour
    /// The first message id handed out.
    public var firstMessageID: Int
    /// The first outbox id handed out.
    public var firstOutboxID: Int
    /// How often the outbox is checked for due messages.
    public var outboxCheckMilliseconds: Int
    /// The most a delivery callback may take.
    public var callbackTimeoutMilliseconds: Int

    public init(
        host: String = "127.0.0.1",
        port: Int = 8099,
        seed: UInt64 = 1,
        accounts: [SimulatedAccount] = [],
        countries: [String: CountryRule] = [:],
        defaultCountryStatus: CountryStatus = .notOffered,
        segmentation: SegmentationPolicy = .standard,
        timeZoneIdentifier: String = "Europe/Amsterdam",
        faults: FaultConfiguration = .none,
        delivery: DeliveryBehaviour = DeliveryBehaviour(),
        firstMessageID: Int = 1_000_001,
        firstOutboxID: Int = 501,
        outboxCheckMilliseconds: Int = 250,
        callbackTimeoutMilliseconds: Int = 5000
    ) {
        self.host = host
        self.port = port
        self.seed = seed
        self.accounts = accounts
        self.countries = countries
        self.defaultCountryStatus = defaultCountryStatus
        self.segmentation = segmentation
        self.timeZoneIdentifier = timeZoneIdentifier
        self.faults = faults
        self.delivery = delivery
        self.firstMessageID = firstMessageID
        self.firstOutboxID = firstOutboxID
        self.outboxCheckMilliseconds = outboxCheckMilliseconds
        self.callbackTimeoutMilliseconds = callbackTimeoutMilliseconds
    }

    /// The default sandbox account: username `sandbox`, password `sandbox`.
    public static let sandboxAccount = SimulatedAccount(username: "sandbox", password: "sandbox", credits: 1_000_000)

    /// Common destinations: EU/EEA neighbours, UK, North America and Jamaica enabled (1 credit per part for the
    /// Netherlands, 1.5 elsewhere); Russia enabled without long messages (119); North Korea and Iran forbidden (114);
    /// every other assigned code not offered (107).
    public static let commonCountries: [String: CountryRule] = {
        var rules: [String: CountryRule] = ["31": CountryRule(costPerPart: 1)]
        for code in [
            "32", "33", "34", "39", "41", "43", "44", "45", "46", "47", "48", "49", "351", "352", "353", "1", "1876",
        ] {
            rules[code] = CountryRule(costPerPart: CreditAmount(Decimal(string: "1.5")!))
        }
        rules["7"] = CountryRule(costPerPart: 2, longMessages: false)
        rules["850"] = CountryRule(status: .forbidden)
        rules["98"] = CountryRule(status: .forbidden)
        return rules
    }()

    /// A sandbox to develop against: the ``sandboxAccount`` with a million credits, ``commonCountries``, no faults,
    /// delivery progressing within about two seconds, on 127.0.0.1:8099.
    public static let sandbox = SimulatorConfiguration(accounts: [sandboxAccount], countries: commonCountries)

    /// This configuration with the top-level keys of a JSON object laid over it (dates ISO 8601, amounts as strings).
    public func merging(json: Data) throws -> SimulatorConfiguration {
        try JSONBody.merge(self, with: json)
    }
}
