import CompatibleGateway
import Finance
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
    /// Where the usage and balance reports and the exports read (`REPORTS_DATABASE_URL`): a streaming replica of
    /// `database`; nil reads `database`. Everything else, writes and reads alike, stays on `database`.
    package var reportsDatabase: PostgresConfiguration?
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
    /// How the dispatcher polls, leases, batches and retries, and the retry deadline the send path gives messages;
    /// each default is in `DispatcherSettings`.
    package var dispatch = DispatcherSettings()
    /// Ask the upstream about submitted messages without a final report (and expire them) from this instance.
    package var reportPolling: Bool = true
    /// When submitted messages are polled and expired; each default is in `ReportPoller.Settings`.
    package var reportPoll = ReportPoller.Settings()

    /// Reconciliation against the upstream (docs/reconciliation.md): the job's interval (zero: the job is off on this
    /// instance; the admin can still run it), the drift threshold and the report rows; defaults in
    /// `ReconciliationSettings`.
    package var reconciliation = ReconciliationSettings()

    /// Deliver webhook events from this instance. Several instances may run it on one database.
    package var webhooks: Bool = true
    /// How the webhook sender polls, times out and retries; each default is in `WebhookSenderSettings`.
    package var webhookDelivery = WebhookSenderSettings()
    /// CIDR ranges of the proxies in front of the service (`TRUSTED_PROXIES`): from them, `X-Forwarded-For` names the
    /// client whose wrong passwords the 1601-compatible endpoint counts. Without any, the TCP peer is the client.
    package var trustedProxies: [String] = []

    /// OpenTelemetry traces over OTLP/HTTP (docs/operations.md, "Tracing"); off without an endpoint.
    package var tracing = TracingSettings()

    /// How large request bodies of the JSON API may be (`MAX_JSON_BODY_BYTES` sets the JSON limit; the CSV uploads
    /// keep their documented limits). The 1601-compatible endpoint has its own (`GatewayEndpointSettings`).
    package var bodyLimits = BodyLimits()

    /// How often one reseller may call `POST /sub-accounts` (each attempt counts, refused ones too).
    package var subAccountCreationLimit = AppConfiguration.defaultSubAccountCreationLimit
    package static let defaultSubAccountCreationLimit = RateLimit(burst: 30, perMinute: 10)

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
