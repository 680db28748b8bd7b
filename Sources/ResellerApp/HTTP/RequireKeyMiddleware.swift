import HTTPTypes
import OpenAPIRuntime
import ResellerCore

/// Answers 401 for every protected operation called without a valid key, before the request is
/// decoded: an anonymous caller learns nothing about required headers or body fields. The public
/// operations are the ones `openapi.yaml` marks `security: []` (a test keeps the two lists equal).
package struct RequireKeyMiddleware: ServerMiddleware {
    package static let publicOperations: Set<String> = [
        "getLiveness", "getReadiness", "getMetrics", "receiveDeliveryReport",
    ]

    package func intercept(
        _ request: HTTPRequest,
        body: HTTPBody?,
        metadata: ServerRequestMetadata,
        operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        if AuthScope.principal == nil, !Self.publicOperations.contains(operationID) { throw APIProblem.unauthorized }
        return try await next(request, body, metadata)
    }
}
