import Hummingbird
import Logging
import OpenAPIRuntime
import PostgresLibpq
import ResellerCore

/// Turns every error below it into an `application/problem+json` response, logs server errors
/// with their cause, and counts requests that matched no operation.
package struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    package let metrics: ServiceMetrics

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let started = ContinuousClock.now
        do {
            return try await next(request, context)
        } catch {
            var problem = APIProblem.from(error)
            // The router's "no route" is a bare HTTPError 404; handlers throw APIProblem instead.
            if let httpError = error as? HTTPError, httpError.status == .notFound, httpError.body == nil {
                problem.detail = "No route for \(request.method) \(request.uri.path)"
                metrics.recordRequest(operation: "unmatched", status: 404, duration: ContinuousClock.now - started)
            }
            if problem.status.kind == .serverError {
                context.logger.error(
                    "request failed",
                    metadata: ["error": "\(Self.loggable(error))", "status": "\(problem.status.code)"])
            } else {
                context.logger.debug(
                    "request refused", metadata: ["code": "\(problem.code)", "status": "\(problem.status.code)"])
            }
            var response = problem.response(instance: request.uri.path, requestID: RequestScope.requestID)
            if problem.status == .unauthorized { response.headers[.wwwAuthenticate] = "Bearer" }
            if let retryAfter = problem.retryAfter {
                response.headers[.retryAfter] = "\(max(1, Int(retryAfter.components.seconds)))"
            }
            return response
        }
    }

    package static func loggable(_ error: any Error) -> String { loggableAPIDescription(of: error) }
}

/// What may go into the log about an error. The OpenAPI runtime's `ServerError` carries the whole request (the
/// `Authorization` header with the API key, a body with a password), so only its operation, cause and underlying
/// error are kept; the rest is `loggableDescription(of:)`.
package func loggableAPIDescription(of error: any Error) -> String {
    if let serverError = error as? ServerError {
        return
            "\(serverError.operationID): \(serverError.causeDescription): \(loggableAPIDescription(of: serverError.underlyingError))"
    }
    return loggableDescription(of: error)
}
