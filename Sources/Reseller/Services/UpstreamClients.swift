import AsyncHTTPClient
import Foundation
import Gateway1601
import Logging
import Synchronization

/// One ``Gateway1601Client`` per upstream connection, all on one shared `HTTPClient` (so one connection pool per
/// host), rebuilt when the connection's client settings change (base URL, username, password, timeout).
///
/// The dispatcher loads a connection row for each batch and asks here for its client; `check` does the same.
final class UpstreamClients: Sendable {
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
    private let entries = Mutex<[UUID: Entry]>([:])

    /// `httpClient` is shared by every connection and owned by the caller (the process-wide one by default).
    init(httpClient: HTTPClient = .shared, logger: Logger) {
        self.httpClient = httpClient
        self.logger = logger
    }

    /// The client of `connection`, reused while its settings stay the same. Throws when its password cannot be opened
    /// (encrypted under a key this instance does not have).
    func client(for connection: UpstreamConnection) throws(UpstreamCredentialCipher.Failure) -> Gateway1601Client {
        let configuration = try connection.gatewayConfiguration()
        let settings = ClientSettings(configuration)
        return entries.withLock { entries in
            if let entry = entries[connection.id], entry.configuration == settings { return entry.client }
            var logger = logger
            logger[metadataKey: "upstream_connection"] = "\(connection.record.name)"
            let client = Gateway1601Client(configuration: configuration, httpClient: httpClient, logger: logger)
            entries[connection.id] = Entry(configuration: settings, client: client)
            return client
        }
    }

    /// How many clients are cached (for tests).
    var count: Int { entries.withLock { $0.count } }
}
