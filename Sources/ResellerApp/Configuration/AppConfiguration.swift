import CompatibleGateway
import Gateway1601
import Logging
import Messaging
import PostgresLibpq
import ResellerCore
import ServiceLifecycle
import Webhooks

/// Everything the service needs to start, from flags or environment variables
/// (see `sms-reseller serve --help` and docs/configuration.md).
package struct AppConfiguration: Sendable {
    /// Address to listen on.
    package var host: String = "127.0.0.1"
    /// Port to listen on; 0 picks a free one.
    package var port: Int = 8080
    /// The database, usually parsed from a libpq URL (`DATABASE_URL`).
    package var database: PostgresConfiguration
    package var logLevel: Logger.Level = .info
    package var logFormat: LogFormat = .text
    /// Connections kept open / at most.
    package var databasePoolMinimum: Int = 2
    package var databasePoolMaximum: Int = 10
    /// Server-side statement timeout for every session, in milliseconds (0: none).
    package var databaseStatementTimeoutMilliseconds: Int = 30_000
    /// Apply pending migrations before serving.
    package var migrate: Bool = false
    /// Where messages go upstream when no upstream connection exists yet: the first start creates the default
    /// connection from it (see `UpstreamBootstrap`); afterwards connections are managed through the API.
    package var upstream: Upstream = .none
    /// 32 random bytes in base64 (`UPSTREAM_CREDENTIALS_KEY`): upstream passwords are stored encrypted with it
    /// (AES-256-GCM). Without it they are stored as they are, with a warning at start.
    package var upstreamCredentialsKey: String?
    /// PBKDF2 rounds for new sub-account passwords (tests lower it; production keeps the default).
    package var passwordIterations: Int = PasswordHasher.defaultIterations
    /// Run the ledger upkeep (expiring reservations, purging old idempotency records) on this instance.
    package var ledgerMaintenance: Bool = true
    /// How often the ledger upkeep looks for expired reservations.
    package var ledgerMaintenanceInterval: Duration = .seconds(1)
    /// How long idempotency keys are remembered; never less than 7 days.
    package var idempotencyRetention: Duration = .seconds(7 * 86_400) {
        didSet { idempotencyRetention = max(idempotencyRetention, Self.minimumIdempotencyRetention) }
    }
    package static let minimumIdempotencyRetention: Duration = .seconds(7 * 86_400)
    /// Run the dispatcher (sending queued messages upstream) on this instance. Several instances may run it on one
    /// database; an API-only instance switches it off.
    package var dispatcher: Bool = true
    /// How often an idle dispatcher looks for due messages (and for connections paused or resumed); the send path
    /// wakes it at once for new messages.
    package var dispatcherPollInterval: Duration = .milliseconds(250)
    /// How long a claim holds a message: a worker that dies holding it delays the message by this much, after which
    /// another claims it. Raised per connection to twice its request timeout when shorter.
    package var dispatcherLease: Duration = .seconds(60)
    /// Messages claimed at once per connection (fewer when the connection's rate limit could not start them within
    /// the lease).
    package var dispatcherBatchSize: Int = 100
    /// How long transient upstream failures are retried before the message fails: the send path sets each message's
    /// deadline to its acceptance (or schedule) time plus this.
    package var dispatcherRetryDeadline: Duration = .seconds(86_400)
    /// The first retry waits up to this long (full jitter), each further one up to twice as long as the one before …
    package var dispatcherBackoffBase: Duration = .seconds(1)
    /// … but never longer than this.
    package var dispatcherBackoffCap: Duration = .seconds(300)
    /// Ask the upstream about submitted messages without a final report (and expire them) from this instance.
    package var reportPolling: Bool = true
    /// How often the poller looks for messages due for a poll or for expiry.
    package var reportPollInterval: Duration = .seconds(5)
    /// A submitted message is first polled this long after submission, then at doubling intervals …
    package var reportPollAfter: Duration = .seconds(30 * 60)
    /// … at most this far apart.
    package var reportPollCap: Duration = .seconds(6 * 3600)
    /// A submitted message still without a final report this long after submission becomes `expired`.
    package var reportExpireAfter: Duration = .seconds(72 * 3600)

    /// Deliver webhook events from this instance. Several instances may run it on one database.
    package var webhooks: Bool = true
    /// How often an idle webhook sender looks for due deliveries.
    package var webhookPollInterval: Duration = .seconds(1)
    /// A receiver must answer (2xx) within this, or the attempt has failed.
    package var webhookTimeout: Duration = .seconds(10)
    /// CIDR ranges of the proxies in front of the service (`TRUSTED_PROXIES`): from them, `X-Forwarded-For` names the
    /// client whose wrong passwords the 1601-compatible endpoint counts. Without any, the TCP peer is the client.
    package var trustedProxies: [String] = []

    package init(database: PostgresConfiguration) {
        self.database = database
    }
}

/// The 1601 gateway the service talks to.
package enum Upstream: Sendable {
    /// The real gateway (or any compatible one) at this base URL, with the account to create the first default
    /// connection with (`UPSTREAM_1601_USERNAME` / `UPSTREAM_1601_PASSWORD`; nil: create none).
    case external(baseURL: String, credentials: GatewayCredentials?)
    /// A gateway that runs in this process (the executable's built-in simulator): the application runs its service and
    /// makes it the first default connection.
    case embedded(EmbeddedUpstream)
    /// None: connections are managed through the API only.
    case none
}

/// A gateway the application runs in its own process (the built-in simulator, which the executable creates: the
/// application does not know what it is). It starts before the dispatcher and stops after it, so calls in flight still
/// reach it.
package struct EmbeddedUpstream: Sendable {
    package var gateway: any InProcessGateway
    package var service: any Service

    package init(_ gateway: some InProcessGateway & Service) {
        self.gateway = gateway
        self.service = gateway
    }
}

/// How log lines are written.
package enum LogFormat: String, Sendable, CaseIterable {
    /// One human-readable line per event.
    case text
    /// One JSON object per line, for log collectors.
    case json
}

extension DispatcherSettings {
    /// The settings `configuration` gives.
    package init(_ configuration: AppConfiguration) {
        self.init()
        pollInterval = configuration.dispatcherPollInterval
        lease = configuration.dispatcherLease
        batchSize = configuration.dispatcherBatchSize
        backoff = RetryBackoff(base: configuration.dispatcherBackoffBase, cap: configuration.dispatcherBackoffCap)
    }
}

extension WebhookSenderSettings {
    /// The settings `configuration` gives.
    package init(_ configuration: AppConfiguration) {
        self.init()
        pollInterval = configuration.webhookPollInterval
        timeout = configuration.webhookTimeout
    }
}
