/// An error code of the 1601SMS gateway (`ERROR <code>`), with the meaning the upstream document gives it.
///
/// The raw value is the number the gateway sends. Codes the document does not list are not representable
/// on purpose: an unknown code is a protocol violation, not an error of this type.
public enum GatewayErrorCode: Int, Sendable, Hashable, CaseIterable, Codable, CustomStringConvertible {
    case usernameEmpty = 100
    case passwordEmpty = 101
    case messageEmpty = 102
    case recipientEmpty = 103
    case invalidCredentials = 104
    case messageTooLongForSinglePart = 105
    case invalidMobileNumber = 106
    case countryNotOffered = 107
    case insufficientCredits = 108
    case senderEmpty = 109
    case senderNumberWithoutPlus = 110
    case senderTooLong = 111
    case invalidCountryCode = 112
    case senderHasSpecialCharacters = 113
    case countryNotPermitted = 114
    case accountBlockedForPayment = 115
    case accountBlocked = 116
    case senderNotAllowed = 117
    case messageTooLong = 118
    case longMessagesNotOfferedForCountry = 119
    case gatewayProblem = 120
    case scheduleDateInvalid = 121
    case outboxMessageNotFound = 122
    case reportCountMissing = 123
    case reportCountInvalid = 124
    case groupNotFound = 125
    case groupEmpty = 126
    case maintenance = 150

    /// How a caller should treat a failure with this code.
    public enum Category: String, Sendable, Hashable, Codable {
        /// The gateway is temporarily unable to help (120, 150): retry later.
        case transient
        /// The upstream account itself is missing, wrong, blocked or out of credits (100 101 104 108 115 116):
        /// no message can pass until someone fixes the account.
        case account
        /// This particular request is wrong: retrying it unchanged gives the same answer.
        case message
    }

    /// The category of this code: transient (120, 150), account-level (100 101 104 108 115 116), otherwise message-level.
    public var category: Category {
        switch self {
        case .gatewayProblem, .maintenance:
            return .transient
        case .usernameEmpty, .passwordEmpty, .invalidCredentials, .insufficientCredits, .accountBlockedForPayment,
            .accountBlocked:
            return .account
        default:
            return .message
        }
    }

    /// The explanation the upstream document gives for the code.
    public var meaning: String {
        switch self {
        case .usernameEmpty: return "Username is empty and cannot be empty"
        case .passwordEmpty: return "Password is empty and cannot be empty"
        case .messageEmpty: return "SMS message has no content"
        case .recipientEmpty: return "Mobile number has no content"
        case .invalidCredentials: return "No valid username and/or password combination"
        case .messageTooLongForSinglePart: return "Message contains more characters (> 160 characters) than allowed"
        case .invalidMobileNumber:
            return "No valid mobile number. A valid number always starts with the country code followed by the number"
        case .countryNotOffered: return "No valid country code. You cannot send text messages to this country"
        case .insufficientCredits: return "You do not have sufficient credits left"
        case .senderEmpty: return "The sender name is empty"
        case .senderNumberWithoutPlus:
            return "You are using a sender number, but it should always start with the + sign"
        case .senderTooLong: return "You are using a non valid sender name"
        case .invalidCountryCode: return "You are using a non valid country code"
        case .senderHasSpecialCharacters:
            return "Your sender name/number contains special characters not allowed on all networks"
        case .countryNotPermitted: return "No valid country code (country is not permitted)"
        case .accountBlockedForPayment:
            return "Your account has been blocked because your payment has not been received (yet)"
        case .accountBlocked: return "Your account has been blocked for distinct reasons"
        case .senderNotAllowed: return "This sender name is not allowed"
        case .messageTooLong: return "A long text message may reach a maximum length of 3 messages (459 characters)"
        case .longMessagesNotOfferedForCountry:
            return "For delivery of text messages to this country, long text messages are not offered"
        case .gatewayProblem: return "There is a problem with the gateway"
        case .scheduleDateInvalid: return "The scheduled date/time is in the past or is not correct"
        case .outboxMessageNotFound: return "No matching message was found in the outbox"
        case .reportCountMissing: return "A report was requested without a number"
        case .reportCountInvalid: return "A report was requested without a valid number"
        case .groupNotFound: return "The group cannot be found in the phone list"
        case .groupEmpty: return "The group is empty"
        case .maintenance: return "The system is down for maintenance temporarily"
        }
    }

    public var description: String { "ERROR \(rawValue) (\(meaning))" }
}
