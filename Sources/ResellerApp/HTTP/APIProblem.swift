import CompatibleGateway
import Foundation
import HTTPTypes
import Hummingbird
import OpenAPIRuntime
import PostgresLibpq
import ResellerAPI
import ResellerCore
import SMSCore

/// An error that reaches the client as an RFC 9457 problem document.
///
/// Handlers throw these; `ProblemMiddleware` renders them (and every other error) as
/// `application/problem+json` with the `Problem` schema of `openapi.yaml`.
package struct APIProblem: Error, Sendable, Equatable {
    package var status: HTTPResponse.Status
    /// Stable machine-readable code (`not_found`, `validation_failed`, …).
    package var code: String
    package var detail: String?
    /// The 1601 gateway error code, where one applies.
    package var gatewayCode: Int?
    package var fieldErrors: [FieldError]
    /// Seconds until a retry may succeed (`Retry-After`), for 429 and 503.
    package var retryAfter: Int?

    package struct FieldError: Sendable, Equatable {
        package var field: String
        package var message: String
        package var gatewayCode: Int?

        package init(field: String, message: String, gatewayCode: Int? = nil) {
            self.field = field
            self.message = message
            self.gatewayCode = gatewayCode
        }
    }

    package init(
        _ status: HTTPResponse.Status, code: String, detail: String? = nil, gatewayCode: Int? = nil,
        fieldErrors: [FieldError] = []
    ) {
        self.status = status
        self.code = code
        self.detail = detail
        self.gatewayCode = gatewayCode
        self.fieldErrors = fieldErrors
    }

    package static func notFound(_ detail: String) -> APIProblem {
        APIProblem(.notFound, code: "not_found", detail: detail)
    }
    package static func badRequest(_ detail: String) -> APIProblem {
        APIProblem(.badRequest, code: "bad_request", detail: detail)
    }
    package static func conflict(_ detail: String) -> APIProblem {
        APIProblem(.conflict, code: "conflict", detail: detail)
    }
    package static func validation(_ errors: [FieldError]) -> APIProblem {
        APIProblem(
            .unprocessableContent, code: "validation_failed",
            detail: errors.map { "\($0.field): \($0.message)" }.joined(separator: "; "), fieldErrors: errors)
    }
    /// A domain refusal as the REST API answers it: its kind picks the status; code, detail, 1601 code and fields
    /// carry over.
    package init(_ refusal: DomainError) {
        let status: HTTPResponse.Status =
            switch refusal.kind {
            case .badRequest: .badRequest
            case .unauthorized: .unauthorized
            case .insufficientCredits: .paymentRequired
            case .forbidden: .forbidden
            case .notFound: .notFound
            case .conflict: .conflict
            case .tooLarge: .contentTooLarge
            case .unprocessable: .unprocessableContent
            }
        self.init(
            status, code: refusal.code, detail: refusal.detail, gatewayCode: refusal.gatewayCode?.rawValue,
            fieldErrors: refusal.fieldErrors.map {
                FieldError(field: $0.field, message: $0.message, gatewayCode: $0.gatewayCode?.rawValue)
            })
    }

    /// 429: too many attempts of something rate-limited; `wait` becomes `Retry-After` (whole seconds, at least 1).
    package static func rateLimited(_ detail: String, wait: Duration) -> APIProblem {
        var problem = APIProblem(.tooManyRequests, code: "rate_limited", detail: detail)
        problem.retryAfter = max(1, Int(wait.components.seconds) + (wait.components.attoseconds > 0 ? 1 : 0))
        return problem
    }

    /// 503: the slow password hashes of this instance are all taken (``PasswordHashingBusy``).
    package static let hashingBusy: APIProblem = {
        var problem = APIProblem(
            .serviceUnavailable, code: "busy", detail: "Too many password checks are in progress; retry in a moment.")
        problem.retryAfter = 1
        return problem
    }()

    package static let unauthorized = APIProblem(DomainError.unauthorized)
    package static func forbidden(_ detail: String) -> APIProblem { APIProblem(DomainError.forbidden(detail)) }
    package static let internalError = APIProblem(
        .internalServerError, code: "internal_error",
        detail: "An unexpected error occurred; it has been logged with the request id.")

    /// The problem for any error: what handlers threw, what the OpenAPI runtime or the router
    /// reported, or an unexpected failure (500, details only in the log).
    package static func from(_ error: any Error) -> APIProblem {
        switch error {
        case let problem as APIProblem:
            return problem
        case let refusal as DomainError:
            return APIProblem(refusal)
        case is PasswordHashingBusy:
            return hashingBusy
        case let serverError as ServerError:
            if let problem = serverError.underlyingError as? APIProblem { return problem }
            if let refusal = serverError.underlyingError as? DomainError { return APIProblem(refusal) }
            if serverError.underlyingError is DecodingError {
                return APIProblem(
                    .badRequest, code: "invalid_body",
                    detail: "The request body does not match the schema: \(describe(serverError.underlyingError))")
            }
            if serverError.httpStatus.kind == .clientError {
                // The runtime's own request errors: missing or malformed parameters, wrong content type.
                return APIProblem(
                    serverError.httpStatus,
                    code: serverError.httpStatus == .unsupportedMediaType ? "unsupported_media_type" : "bad_request",
                    detail: "\(serverError.causeDescription): \(serverError.underlyingError)")
            }
            return from(serverError.underlyingError)
        case let httpError as HTTPError:
            let code: String =
                switch httpError.status {
                case .notFound: "not_found"
                case .methodNotAllowed: "method_not_allowed"
                case .contentTooLarge: "payload_too_large"
                case .badRequest: "bad_request"
                default: httpError.status.kind == .serverError ? "internal_error" : "http_\(httpError.status.code)"
                }
            return APIProblem(httpError.status, code: code, detail: httpError.body)
        case let postgres as PostgresError where postgres.sqlState == SQLState.queryCanceled:
            // The statement timeout (DB_STATEMENT_TIMEOUT_MS) cut the request short: say so rather than 500.
            return APIProblem(
                .serviceUnavailable, code: "statement_timeout",
                detail:
                    "The database did not finish this request within its statement timeout; ask for less (a shorter period, fewer groups) or retry later."
            )
        case let postgres as PostgresError
        where postgres.kind == .acquireTimeout || postgres.kind == .connection || postgres.kind == .poolClosed:
            return APIProblem(
                .serviceUnavailable, code: "database_unavailable",
                detail: "The database is not reachable right now; retry later.")
        default:
            return internalError
        }
    }

    private static func describe(_ error: any Error) -> String {
        guard let decoding = error as? DecodingError else { return "\(error)" }
        switch decoding {
        case .keyNotFound(let key, let context):
            return "missing field \(path(context.codingPath + [key]))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        "/" + keys.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: "/")
    }

    /// The document as the `Problem` schema describes it.
    package func document(instance: String?, requestID: String?) -> Components.Schemas.Problem {
        Components.Schemas.Problem(
            _type: "https://sms-reseller.dev/problems/\(code)",
            title: status.reasonPhrase,
            status: Int32(status.code),
            code: code,
            detail: detail,
            instance: instance,
            requestId: requestID,
            gatewayCode: gatewayCode.map { Int32($0) },
            errors: fieldErrors.isEmpty
                ? nil
                : fieldErrors.map {
                    Components.Schemas.FieldError(
                        field: $0.field, message: $0.message, gatewayCode: $0.gatewayCode.map { Int32($0) })
                }
        )
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// The HTTP response carrying this problem.
    package func response(instance: String?, requestID: String?) -> Response {
        let body = (try? Self.encoder.encode(document(instance: instance, requestID: requestID))) ?? Data("{}".utf8)
        var headers: HTTPFields = [.contentType: "application/problem+json; charset=utf-8"]
        headers[.contentLength] = String(body.count)
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension HTTPResponse.Status {
    /// 402: a send the balance does not cover (1601 error 108).
    package static let paymentRequired = HTTPResponse.Status(code: 402, reasonPhrase: "Payment Required")
}
