import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ResellerCore

/// Takes the caller's `X-Request-Id` when it is sane (1–128 characters of `A–Z a–z 0–9 . _ : -`),
/// generates one otherwise; puts it in the logger metadata, in `RequestScope.requestID` and in
/// the response's `X-Request-Id` header.
package struct RequestIDMiddleware<Context: RequestContext>: RouterMiddleware {
    package static var headerName: HTTPField.Name { HTTPField.Name("X-Request-Id")! }

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let requestID = request.headers[Self.headerName].flatMap(Self.accept) ?? Self.generate()
        var context = context
        context.logger[metadataKey: "request_id"] = .string(requestID)
        var response = try await RequestScope.$requestID.withValue(requestID) {
            try await next(request, context)
        }
        response.headers[Self.headerName] = requestID
        return response
    }

    package static func accept(_ value: String) -> String? {
        guard (1...128).contains(value.utf8.count),
            value.utf8.allSatisfy({ byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"),
                    UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "-"):
                    true
                default:
                    false
                }
            })
        else { return nil }
        return value
    }

    /// 128 random bits as 32 hex digits.
    package static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        return String(format: "%016llx%016llx", high, low)
    }
}
