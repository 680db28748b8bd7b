import HTTPTypes
import Hummingbird
import Logging
import OpenAPIRuntime
import PostgresLibpq
import ResellerCore

/// Turns every error below it into an `application/problem+json` response, logs server errors
/// with their cause, and counts requests that matched no operation.
package struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    package let metrics: ServiceMetrics
    /// The router's routes: a path that exists with other methods answers 405 with `Allow`.
    package var routes = RouteMethods()

    package init(metrics: ServiceMetrics, routes: RouteMethods = RouteMethods()) {
        self.metrics = metrics
        self.routes = routes
    }

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let started = ContinuousClock.now
        do {
            return try await next(request, context)
        } catch {
            var problem = APIProblem.from(error)
            // The router's "no route" is a bare HTTPError 404; handlers throw APIProblem instead.
            var allowed: [HTTPRequest.Method] = []
            if let httpError = error as? HTTPError, httpError.status == .notFound, httpError.body == nil {
                allowed = routes.allowed(for: request.uri.path)
                if allowed.isEmpty {
                    problem.detail = "No route for \(request.method) \(request.uri.path)"
                } else {
                    problem = APIProblem(
                        .methodNotAllowed, code: "method_not_allowed",
                        detail:
                            "\(request.uri.path) does not take \(request.method); it takes \(allowed.map(\.rawValue).joined(separator: ", "))."
                    )
                }
                metrics.recordRequest(
                    operation: "unmatched", status: Int(problem.status.code), duration: ContinuousClock.now - started)
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
            if !allowed.isEmpty { response.headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ") }
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
