import HTTPTypes
import OpenAPIRuntime
import Synchronization

/// The methods each path of the router answers, as registered, so that a request with another method on an existing
/// path gets 405 with `Allow` rather than the router's 404 (`ProblemMiddleware`).
package final class RouteMethods: Sendable {
    private let routes = Mutex<[(segments: [Substring?], method: HTTPRequest.Method)]>([])

    package init() {}

    /// Adds a route; `path` in OpenAPI (`/sub-accounts/{subAccountId}`) or router (`/exports/:dataset`) form.
    package func add(_ method: HTTPRequest.Method, _ path: String) {
        let segments: [Substring?] = path.split(separator: "/").map {
            $0.hasPrefix("{") || $0.hasPrefix(":") ? nil : $0
        }
        routes.withLock { $0.append((segments, method)) }
    }

    /// The methods registered for routes matching `path`, sorted; empty when no route has that path.
    package func allowed(for path: String) -> [HTTPRequest.Method] {
        let given = path.split(separator: "/")
        let methods = routes.withLock { routes in
            routes.filter { route in
                route.segments.count == given.count
                    && zip(route.segments, given).allSatisfy { pattern, segment in pattern.map { $0 == segment } ?? true
                    }
            }.map(\.method)
        }
        return Array(Set(methods)).sorted { $0.rawValue < $1.rawValue }
    }
}

/// A transport that records each operation's method and path in a ``RouteMethods`` as it registers it.
package struct RecordingTransport<Base: ServerTransport>: ServerTransport {
    package let base: Base
    package let routes: RouteMethods

    package init(_ base: Base, routes: RouteMethods) {
        self.base = base
        self.routes = routes
    }

    package func register(
        _ handler:
            @escaping @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (
                HTTPResponse, HTTPBody?
            ),
        method: HTTPRequest.Method,
        path: String
    ) throws {
        routes.add(method, path)
        try base.register(handler, method: method, path: path)
    }
}
