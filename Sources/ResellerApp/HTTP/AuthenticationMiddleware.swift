import Foundation
import Hummingbird
import Logging
import ResellerCore

/// Resolves `Authorization: Bearer <key>` to a `Principal` and runs the rest of the request with it
/// in `AuthScope.principal`.
///
/// It runs for the JSON API's routes (not for the 1601-compatible endpoint, which has its own login). A presented
/// key that is unknown, revoked or malformed answers 401 at once. A request without a key continues without a
/// principal: public operations (health, metrics) answer as usual; `RequireKeyMiddleware` refuses every protected
/// operation with 401 before its input is decoded, and the handlers check again through `Access.principal()`.
package struct AuthenticationMiddleware<Context: RequestContext>: RouterMiddleware {
    package let keys: APIKeyRepository

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard let header = request.headers[.authorization] else {
            return try await next(request, context)
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { throw APIProblem.unauthorized }
        let secret = parts[1].trimmingCharacters(in: .whitespaces)
        guard APIKeySecret.isWellFormed(secret),
            let principal = try await keys.authenticate(secretHash: APIKeySecret.hash(secret))
        else {
            throw APIProblem.unauthorized
        }
        var context = context
        context.logger[metadataKey: "principal"] = .string(
            "\(principal.role.rawValue):\(principal.keyID.uuidString.lowercased())")
        return try await AuthScope.$principal.withValue(principal) {
            try await next(request, context)
        }
    }
}
