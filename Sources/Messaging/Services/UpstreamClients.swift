import AsyncHTTPClient
import Foundation
import Gateway1601
import Logging
import NIOCore
import ResellerCore
import ServiceLifecycle
import Synchronization
import Tracing

/// One ``Gateway1601Client`` per upstream connection, all on one shared `HTTPClient` (so one connection pool per
/// host), rebuilt when the connection's client settings change (base URL, username, password, timeout).
///
/// The dispatcher loads a connection row for each batch and asks here for its client; `check` does the same.
package final class UpstreamClients: Sendable {
    private struct Entry {
        var configuration: ClientSettings
        var client: Gateway1601Client
    }

    /// What a client is built from; a change of any of these rebuilds it.
    private struct ClientSettings: Equatable {
        var baseURL: String
        var credentials: GatewayCredentials
        var requestTimeout: Duration

        init(_ configuration: Gateway1601Configuration) {
            baseURL = configuration.baseURL
            credentials = configuration.credentials
            requestTimeout = configuration.requestTimeout
        }
    }

    private let httpClient: HTTPClient
    private let logger: Logger
    private let tracer: (any Tracer)?
    private let entries = Mutex<[UUID: Entry]>([:])

    /// `httpClient` is shared by every connection and owned by the caller (the process-wide one by default); with a
    /// `tracer`, every call is a span (docs/operations.md, "Tracing").
    package init(httpClient: HTTPClient = .shared, logger: Logger, tracer: (any Tracer)? = nil) {
        self.httpClient = httpClient
        self.logger = logger
        self.tracer = tracer
    }

    /// The client of `connection`, reused while its settings stay the same. Throws when its password cannot be opened
    /// (encrypted under a key this instance does not have).
    package func client(for connection: UpstreamConnection) throws(UpstreamCredentialCipher.Failure)
        -> Gateway1601Client
    {
        let configuration = try connection.gatewayConfiguration()
        let settings = ClientSettings(configuration)
        return entries.withLock { entries in
            if let entry = entries[connection.id], entry.configuration == settings { return entry.client }
            var logger = logger
            logger[metadataKey: "upstream_connection"] = "\(connection.record.name)"
            let client = Gateway1601Client(
                configuration: configuration, httpClient: httpClient, logger: logger, tracer: tracer)
            entries[connection.id] = Entry(configuration: settings, client: client)
            return client
        }
    }

    /// How many clients are cached (for tests).
    package var count: Int { entries.withLock { $0.count } }
}

/// The HTTP client of upstream calls, owned by the application: its per-host connection limit covers the largest
/// `concurrency` a connection may have (the process-wide client keeps 8 per host, so more calls would queue inside it
/// and spend their timeout waiting). Registered right after the database pool, so it shuts down after the dispatcher.
package struct UpstreamHTTPClient: Service {
    package let client: HTTPClient

    package init() {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        configuration.redirectConfiguration = .disallow
        // Never async-http-client's own spans: they record the URL, whose query holds the password with GET. The
        // client's span of each call is in Gateway1601Client.
        configuration.tracing.tracer = nil
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    package func run() async throws {
        // Until the application shuts down (or is cancelled), then close the connections.
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}
