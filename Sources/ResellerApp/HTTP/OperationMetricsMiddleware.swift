import HTTPTypes
import OpenAPIRuntime
import ResellerCore

/// Records every OpenAPI operation's count and latency, labelled by operation id and status.
package struct OperationMetricsMiddleware: ServerMiddleware {
    package let metrics: ServiceMetrics

    package func intercept(
        _ request: HTTPRequest,
        body: HTTPBody?,
        metadata: ServerRequestMetadata,
        operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        let started = ContinuousClock.now
        do {
            let (response, responseBody) = try await next(request, body, metadata)
            metrics.recordRequest(
                operation: operationID, status: response.status.code, duration: ContinuousClock.now - started)
            return (response, responseBody)
        } catch {
            let status = APIProblem.from(error).status.code
            metrics.recordRequest(operation: operationID, status: status, duration: ContinuousClock.now - started)
            throw error
        }
    }
}
