/// Who a send goes to.
public enum Recipients: Sendable, Hashable {
    /// One or more numbers, sent comma-separated in `naar` exactly as given (country code first, no `+`).
    case numbers([String])
    /// An address-book group of the upstream account: `naar=groep&groep=<name>`.
    case group(String)
}

/// A send through `gateway.php`, with every option the document lists.
public struct SendRequest: Sendable, Hashable {
    /// The longest `referentie` the gateway keeps.
    public static let maximumReferenceLength = 75

    /// `bericht`: the text, UTF-8.
    public var message: String
    /// `naar` (and `groep`).
    public var recipients: Recipients
    /// `afzender`: the sender name or `+`number.
    public var sender: String
    /// `logging=ja|nee`; `nil` omits it (the gateway then logs, see `PROTOCOL.md`).
    public var logging: Bool?
    /// `delivery=ja`: answer with message ids and send delivery callbacks.
    public var deliveryReport: Bool
    /// `type=long`: allow up to three concatenated parts.
    public var long: Bool
    /// `datum=yyyymmddhhii`: put the message in the outbox for this gateway-local time.
    public var schedule: GatewayDateTime?
    /// `outboxid=ja`: with ``schedule``, answer with the outbox id.
    public var requestOutboxID: Bool
    /// `emailen=ja|nee`: e-mail confirmation of a scheduled send; `nil` omits it.
    public var emailConfirmation: Bool?
    /// `referentie`: echoed in delivery callbacks; at most ``maximumReferenceLength`` characters.
    public var reference: String?
    /// `test=ja`: every check, no send, no charge.
    public var test: Bool

    public init(
        message: String,
        recipients: Recipients,
        sender: String,
        logging: Bool? = nil,
        deliveryReport: Bool = false,
        long: Bool = false,
        schedule: GatewayDateTime? = nil,
        requestOutboxID: Bool = false,
        emailConfirmation: Bool? = nil,
        reference: String? = nil,
        test: Bool = false
    ) {
        self.message = message
        self.recipients = recipients
        self.sender = sender
        self.logging = logging
        self.deliveryReport = deliveryReport
        self.long = long
        self.schedule = schedule
        self.requestOutboxID = requestOutboxID
        self.emailConfirmation = emailConfirmation
        self.reference = reference
        self.test = test
    }
}

/// How to pick outbox messages for removal (`action=verwijderbericht`).
public enum OutboxSelector: Sendable, Hashable {
    /// Every scheduled message to this number: `naar=<number>`.
    case number(String)
    /// The outbox entry with this id: `id=<outboxid>`.
    case id(String)
}

/// Every call the gateway documents, as a path and its parameters.
public enum GatewayCall: Sendable, Hashable {
    case send(SendRequest)
    /// `gatewayrapport.php?smsid=…[&datum=ja]`.
    case deliveryStatus(smsID: String, includeDate: Bool)
    /// `action=credits`.
    case credits
    /// `action=rapport&aantal=<count>`.
    case report(count: Int)
    /// `action=verwijderbericht`.
    case removeOutboxMessage(OutboxSelector)
    /// `action=verwijderoutbox`.
    case emptyOutbox

    /// The path of the send/account script.
    public static let gatewayPath = "/module/gateway.php"
    /// The path of the delivery-status script.
    public static let reportPath = "/module/gatewayrapport.php"

    /// The request path for this call.
    public var path: String {
        if case .deliveryStatus = self { return Self.reportPath }
        return Self.gatewayPath
    }

    /// The parameters for this call, credentials first.
    ///
    /// Throws ``GatewayRequestError`` when the call cannot be expressed (a reference over 75 characters).
    public func parameters(credentials: GatewayCredentials) throws(GatewayRequestError) -> [GatewayParameter] {
        var parameters = credentials.parameters
        func add(_ name: String, _ value: String) { parameters.append(GatewayParameter(name, value)) }
        func yesNo(_ flag: Bool) -> String { flag ? "ja" : "nee" }
        switch self {
        case .send(let request):
            add("bericht", request.message)
            switch request.recipients {
            case .numbers(let numbers): add("naar", numbers.joined(separator: ","))
            case .group(let group):
                add("naar", "groep")
                add("groep", group)
            }
            add("afzender", request.sender)
            if let logging = request.logging { add("logging", yesNo(logging)) }
            if request.deliveryReport { add("delivery", "ja") }
            if request.long { add("type", "long") }
            if let schedule = request.schedule { add("datum", schedule.scheduleText) }
            if request.requestOutboxID { add("outboxid", "ja") }
            if let email = request.emailConfirmation { add("emailen", yesNo(email)) }
            if let reference = request.reference {
                guard reference.unicodeScalars.count <= SendRequest.maximumReferenceLength else {
                    throw .referenceTooLong(reference.unicodeScalars.count)
                }
                add("referentie", reference)
            }
            if request.test { add("test", "ja") }
        case .deliveryStatus(let smsID, let includeDate):
            add("smsid", smsID)
            if includeDate { add("datum", "ja") }
        case .credits:
            add("action", "credits")
        case .report(let count):
            add("action", "rapport")
            add("aantal", String(count))
        case .removeOutboxMessage(let selector):
            add("action", "verwijderbericht")
            switch selector {
            case .number(let number): add("naar", number)
            case .id(let id): add("id", id)
            }
        case .emptyOutbox:
            add("action", "verwijderoutbox")
        }
        return parameters
    }
}

/// A call that cannot be sent as asked.
public enum GatewayRequestError: Error, Sendable, Hashable {
    /// `referentie` longer than ``SendRequest/maximumReferenceLength`` (the length is attached).
    case referenceTooLong(Int)
}
