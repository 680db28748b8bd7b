import HTTPTypes
import Hummingbird

/// Lets operations with an optional JSON body (`POST …/unblock`) be called with no body at all.
///
/// The OpenAPI runtime decodes a body without a `Content-Type` as JSON, and an empty one is not
/// JSON, so a bare `curl -X POST` would get 400. A POST, PUT or PATCH that declares no content
/// type and carries no bytes is therefore given the body `{}` (an empty JSON object); a request
/// that names a content type is left exactly as it came.
package struct EmptyBodyMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Bodies without a content type are read into memory up to this size to see whether they are empty.
    package static var maximumUntypedBody: Int { 1 << 20 }

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard [.post, .put, .patch].contains(request.method), request.headers[.contentType] == nil else {
            return try await next(request, context)
        }
        let buffer = try await request.body.collect(upTo: Self.maximumUntypedBody)
        var head = request.head
        if buffer.readableBytes == 0 {
            head.headerFields[.contentType] = "application/json"
            head.headerFields[.contentLength] = "2"
            head.headerFields[.transferEncoding] = nil
            return try await next(Request(head: head, body: RequestBody(buffer: ByteBuffer(string: "{}"))), context)
        }
        return try await next(Request(head: head, body: RequestBody(buffer: buffer)), context)
    }
}
