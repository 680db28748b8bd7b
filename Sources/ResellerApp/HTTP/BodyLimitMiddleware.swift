import Contacts
import HTTPTypes
import Hummingbird
import Pricing

/// How large a request body of the JSON API may be, by kind of route (docs/api.md, "Request size").
package struct BodyLimits: Sendable, Equatable {
    /// JSON bodies (and any other body of an operation without a larger limit of its own).
    package var json: Int = BodyLimits.defaultJSON
    /// `POST /sub-accounts/{id}/contact-imports` (a CSV file).
    package var contactsCSV: Int = ContactCSV.maximumBytes
    /// `POST /price-lists/{id}/versions`, as CSV or as JSON (a version has up to 50 000 entries either way).
    package var priceListVersion: Int = PriceListCSV.maximumBytes

    package static let defaultJSON = 4 << 20

    package init(json: Int = BodyLimits.defaultJSON) {
        self.json = json
    }

    /// The limit for a request to `path`.
    package func limit(path: String) -> Int {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        if segments.count == 3, segments[0] == "sub-accounts", segments[2] == "contact-imports" {
            return max(json, contactsCSV)
        }
        if segments.count == 3, segments[0] == "price-lists", segments[2] == "versions" {
            return max(json, priceListVersion)
        }
        return json
    }
}

/// Bounds every request body of the JSON API before anything reads it (the OpenAPI runtime collects JSON bodies
/// without a bound of its own): a `Content-Length` above the route's limit is refused with 413 before a byte of the
/// body is read, and a body without one (chunked) is refused with 413 as soon as it grows past the limit.
package struct BodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    package let limits: BodyLimits

    package init(limits: BodyLimits) {
        self.limits = limits
    }

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let limit = limits.limit(path: request.uri.path)
        if let declared = request.headers[.contentLength] {
            guard let length = Int(declared), length >= 0 else {
                throw APIProblem.badRequest("The Content-Length header is not a number of bytes.")
            }
            if length > limit { throw Self.tooLarge(limit) }
        }
        var limited = request
        limited.body = RequestBody(asyncSequence: LimitedBody(base: request.body, limit: limit))
        return try await next(limited, context)
    }

    package static func tooLarge(_ limit: Int) -> APIProblem {
        APIProblem(
            .contentTooLarge, code: "payload_too_large",
            detail: "The request body is larger than this operation takes (at most \(limit) bytes).")
    }
}

/// A request body that throws ``BodyLimitMiddleware/tooLarge(_:)`` once more than `limit` bytes have come.
struct LimitedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let base: RequestBody
    let limit: Int

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: RequestBody.AsyncIterator
        let limit: Int
        var seen = 0

        mutating func next() async throws -> ByteBuffer? {
            guard let chunk = try await base.next() else { return nil }
            seen += chunk.readableBytes
            if seen > limit { throw BodyLimitMiddleware<BasicRequestContext>.tooLarge(limit) }
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), limit: limit) }
}
