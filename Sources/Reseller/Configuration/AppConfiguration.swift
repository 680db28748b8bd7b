import Gateway1601
import Logging
import PostgresLibpq

/// Everything the service needs to start, from flags or environment variables
/// (see `sms-reseller serve --help` and the README).
public struct AppConfiguration: Sendable {
    /// Address to listen on.
    public var host: String = "127.0.0.1"
    /// Port to listen on; 0 picks a free one.
    public var port: Int = 8080
    /// The database, usually parsed from a libpq URL (`DATABASE_URL`).
    public var database: PostgresConfiguration
    public var logLevel: Logger.Level = .info
    public var logFormat: LogFormat = .text
    /// Connections kept open / at most.
    public var databasePoolMinimum: Int = 2
    public var databasePoolMaximum: Int = 10
    /// Server-side statement timeout for every session, in milliseconds (0: none).
    public var databaseStatementTimeoutMilliseconds: Int = 30_000
    /// Apply pending migrations before serving.
    public var migrate: Bool = false
    /// Where messages go upstream when no upstream connection exists yet: the first start creates the default
    /// connection from it (see `UpstreamBootstrap`); afterwards connections are managed through the API.
    public var upstream: Upstream = .builtInSimulator(port: 0)
    /// 32 random bytes in base64 (`UPSTREAM_CREDENTIALS_KEY`): upstream passwords are stored encrypted with it
    /// (AES-256-GCM). Without it they are stored as they are, with a warning at start.
    public var upstreamCredentialsKey: String?
    /// PBKDF2 rounds for new sub-account passwords (tests lower it; production keeps the default).
    public var passwordIterations: Int = PasswordHasher.defaultIterations
    /// Run the ledger upkeep (expiring reservations, purging old idempotency records) on this instance.
    public var ledgerMaintenance: Bool = true
    /// How often the ledger upkeep looks for expired reservations.
    public var ledgerMaintenanceInterval: Duration = .seconds(1)
    /// How long idempotency keys are remembered; never less than 7 days.
    public var idempotencyRetention: Duration = .seconds(7 * 86_400) {
        didSet { idempotencyRetention = max(idempotencyRetention, Self.minimumIdempotencyRetention) }
    }
    public static let minimumIdempotencyRetention: Duration = .seconds(7 * 86_400)
    /// Run the dispatcher (sending queued messages upstream) on this instance. Several instances may run it on one
    /// database; an API-only instance switches it off.
    public var dispatcher: Bool = true
    /// How often an idle dispatcher looks for due messages (and for connections paused or resumed); the send path
    /// wakes it at once for new messages.
    public var dispatcherPollInterval: Duration = .milliseconds(250)
    /// How long a claim holds a message: a worker that dies holding it delays the message by this much, after which
    /// another claims it. Raised per connection to twice its request timeout when shorter.
    public var dispatcherLease: Duration = .seconds(60)
    /// Messages claimed at once per connection (fewer when the connection's rate limit could not start them within
    /// the lease).
    public var dispatcherBatchSize: Int = 100
    /// How long transient upstream failures are retried before the message fails: the send path sets each message's
    /// deadline to its acceptance (or schedule) time plus this.
    public var dispatcherRetryDeadline: Duration = .seconds(86_400)
    /// The first retry waits up to this long (full jitter), each further one up to twice as long as the one before …
    public var dispatcherBackoffBase: Duration = .seconds(1)
    /// … but never longer than this.
    public var dispatcherBackoffCap: Duration = .seconds(300)
    /// Ask the upstream about submitted messages without a final report (and expire them) from this instance.
    public var reportPolling: Bool = true
    /// How often the poller looks for messages due for a poll or for expiry.
    public var reportPollInterval: Duration = .seconds(5)
    /// A submitted message is first polled this long after submission, then at doubling intervals …
    public var reportPollAfter: Duration = .seconds(30 * 60)
    /// … at most this far apart.
    public var reportPollCap: Duration = .seconds(6 * 3600)
    /// A submitted message still without a final report this long after submission becomes `expired`.
    public var reportExpireAfter: Duration = .seconds(72 * 3600)

    /// Deliver webhook events from this instance. Several instances may run it on one database.
    public var webhooks: Bool = true
    /// How often an idle webhook sender looks for due deliveries.
    public var webhookPollInterval: Duration = .seconds(1)
    /// A receiver must answer (2xx) within this, or the attempt has failed.
    public var webhookTimeout: Duration = .seconds(10)
    /// CIDR ranges of the proxies in front of the service (`TRUSTED_PROXIES`): from them, `X-Forwarded-For` names the
    /// client whose wrong passwords the 1601-compatible endpoint counts. Without any, the TCP peer is the client.
    public var trustedProxies: [String] = []

    public init(database: PostgresConfiguration) {
        self.database = database
    }
}

/// The 1601 gateway the service talks to.
public enum Upstream: Sendable, Equatable {
    /// The real gateway (or any compatible one) at this base URL, with the account to create the first default
    /// connection with (`UPSTREAM_1601_USERNAME` / `UPSTREAM_1601_PASSWORD`; nil: create none).
    case external(baseURL: String, credentials: GatewayCredentials?)
    /// The simulator from `Gateway1601Simulator`, started in-process on 127.0.0.1 at this port
    /// (0: any free port) with its sandbox account. Nothing leaves the machine.
    case builtInSimulator(port: Int)
}

/// How log lines are written.
public enum LogFormat: String, Sendable, CaseIterable {
    /// One human-readable line per event.
    case text
    /// One JSON object per line, for log collectors.
    case json
}

/// A setting the service cannot start with.
struct ConfigurationError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
