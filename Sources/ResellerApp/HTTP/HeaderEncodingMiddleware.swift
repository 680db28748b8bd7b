import Foundation
import HTTPTypes
import Hummingbird

/// Undoes the percent-encoding that swift-openapi-runtime applies to every response header value it sets
/// (apple/swift-openapi-generator#857), for headers whose value is structured text rather than a URI component:
/// `Content-Disposition: attachment; filename="…"` would otherwise reach clients as `attachment%3B%20filename…`.
///
/// Only the headers listed here are touched; the values the handlers put in them are plain ASCII.
package struct HeaderEncodingMiddleware<Context: RequestContext>: RouterMiddleware {
    package static var structuredHeaders: [HTTPField.Name] { [.contentDisposition] }

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        var response = try await next(request, context)
        for name in Self.structuredHeaders {
            if let value = response.headers[name], value.contains("%"), let decoded = value.removingPercentEncoding {
                response.headers[name] = decoded
            }
        }
        return response
    }
}
