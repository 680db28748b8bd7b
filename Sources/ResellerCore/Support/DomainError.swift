import SMSCore

/// A refusal as a domain value: what kind of refusal it is, a stable code, a sentence for people, the 1601 error code
/// where one applies, and the fields at fault.
///
/// Services and repositories throw or return these; they know nothing of HTTP. The REST layer renders one as
/// problem+json (the kind picks the status, see `APIProblem`), the 1601-compatible endpoint as `ERROR <gatewayCode>`.
///
/// See docs/api.md, "Errors".
package struct DomainError: Error, Sendable, Equatable {
    /// What the refusal means to the caller; each REST status has one kind.
    package enum Kind: Sendable, Equatable {
        /// The request itself is malformed (400).
        case badRequest
        /// No valid credentials (401).
        case unauthorized
        /// The balance does not cover it (402, 1601 error 108).
        case insufficientCredits
        /// The caller may see the resource but not do this, or the account is blocked (403).
        case forbidden
        /// No such resource for this caller (404, the same for another tenant's resource).
        case notFound
        /// The resource's state does not allow it, or a concurrent duplicate (409).
        case conflict
        /// More than a documented limit (413).
        case tooLarge
        /// Well-formed but refused by a rule (422).
        case unprocessable
    }

    /// One field at fault.
    package struct FieldError: Sendable, Equatable {
        /// A JSON pointer into the request (`/recipients/3`) or a header's name.
        package var field: String
        package var message: String
        package var gatewayCode: GatewayErrorCode?

        package init(field: String, message: String, gatewayCode: GatewayErrorCode? = nil) {
            self.field = field
            self.message = message
            self.gatewayCode = gatewayCode
        }
    }

    package var kind: Kind
    /// Stable machine-readable code (`not_found`, `validation_failed`, `send_refused`, …).
    package var code: String
    package var detail: String?
    package var gatewayCode: GatewayErrorCode?
    package var fieldErrors: [FieldError]

    package init(
        _ kind: Kind, code: String, detail: String? = nil, gatewayCode: GatewayErrorCode? = nil,
        fieldErrors: [FieldError] = []
    ) {
        self.kind = kind
        self.code = code
        self.detail = detail
        self.gatewayCode = gatewayCode
        self.fieldErrors = fieldErrors
    }

    package static func notFound(_ detail: String) -> DomainError {
        DomainError(.notFound, code: "not_found", detail: detail)
    }
    package static func badRequest(_ detail: String) -> DomainError {
        DomainError(.badRequest, code: "bad_request", detail: detail)
    }
    package static func conflict(_ detail: String) -> DomainError {
        DomainError(.conflict, code: "conflict", detail: detail)
    }
    package static func forbidden(_ detail: String) -> DomainError {
        DomainError(.forbidden, code: "forbidden", detail: detail)
    }
    package static let unauthorized = DomainError(
        .unauthorized, code: "unauthorized", detail: "A valid API key is required (Authorization: Bearer sk_live_…).")
    package static func validation(_ errors: [FieldError]) -> DomainError {
        DomainError(
            .unprocessable, code: "validation_failed",
            detail: errors.map { "\($0.field): \($0.message)" }.joined(separator: "; "),
            fieldErrors: errors)
    }
    /// `insufficient_credits` (1601 error 108), `reason` first.
    package static func insufficientCredits(_ reason: String) -> DomainError {
        DomainError(
            .insufficientCredits, code: "insufficient_credits",
            detail: "\(reason): \(GatewayErrorCode.insufficientCredits.meaning)",
            gatewayCode: .insufficientCredits)
    }
}
