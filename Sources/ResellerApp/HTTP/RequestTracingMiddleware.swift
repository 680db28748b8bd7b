import HTTPTypes
import Hummingbird
import ResellerCore
import Tracing

/// A server span for each request (docs/operations.md, "Tracing"), child of the caller's W3C `traceparent` when it sends
/// one. Named after the matched route (`POST /sub-accounts/{subAccountId}/messages`), never the path with its ids; no
/// query, header or body is recorded (the 1601-compatible endpoint takes passwords in its query). The span's own
/// `traceparent` is in `RequestScope.traceparent` for what the request stores to continue later (a send's messages).
package struct RequestTracingMiddleware<Context: RequestContext>: RouterMiddleware {
    package let tracer: any Tracer

    package init(tracer: any Tracer) {
        self.tracer = tracer
    }

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        var parent = InstrumentationContext.topLevel
        tracer.extract(request.headers, into: &parent, using: HTTPFieldsExtractor())
        let span = tracer.startAnySpan("\(request.method.rawValue) (unmatched)", context: parent, ofKind: .server)
        span.attributes["http.request.method"] = request.method.rawValue
        defer { span.end() }
        var carrier: [String: String] = [:]
        tracer.inject(span.context, into: &carrier, using: DictionaryInjector())
        do {
            let response = try await InstrumentationContext.$current.withValue(span.context) {
                try await RequestScope.$traceparent.withValue(carrier["traceparent"]) {
                    try await next(request, context)
                }
            }
            finish(span, request: request, context: context, status: response.status.code)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            finish(span, request: request, context: context, status: status)
            span.recordError(error)
            throw error
        }
    }

    private func finish(_ span: any Span, request: Request, context: Context, status: Int) {
        if let route = context.endpointPath {
            span.operationName = "\(request.method.rawValue) \(route)"
            span.attributes["http.route"] = route
        }
        span.attributes["http.response.status_code"] = status
        if status >= 500 { span.setStatus(SpanStatus(code: .error)) }
    }
}

/// Reads `traceparent` and `tracestate` from request headers.
package struct HTTPFieldsExtractor: Extractor {
    package init() {}

    package func extract(key: String, from carrier: HTTPFields) -> String? {
        HTTPField.Name(key).flatMap { carrier[$0] }
    }
}

/// Writes trace headers into a dictionary (to store them, or to read the `traceparent` of a span).
package struct DictionaryInjector: Injector {
    package init() {}

    package func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}
