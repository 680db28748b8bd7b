import CompatibleGateway
import Finance
import Logging
import Messaging
import PostgresLibpq
import ResellerAPI
import ResellerCore

/// Implements the generated `APIProtocol`: one extension file per area of `openapi.yaml`.
/// Handlers validate input, call domain services and map results to the generated outputs;
/// errors are thrown as `APIProblem` and rendered by `ProblemMiddleware`.
///
/// See docs/api.md.
package struct APIHandlers: APIProtocol {
    package init(
        pool: PostgresPool, metrics: ServiceMetrics, logger: Logger, sending: Sending, deliveryReports: DeliveryReports
    ) {
        self.pool = pool
        self.metrics = metrics
        self.logger = logger
        self.sending = sending
        self.deliveryReports = deliveryReports
        self.timeZones = TimeZoneNames(pool: pool)
        self.reportsPool = pool
    }

    package let pool: PostgresPool
    /// Where the usage and balance reports and the exports read: a replica (`REPORTS_DATABASE_URL`), else `pool`.
    package var reportsPool: PostgresPool
    package let metrics: ServiceMetrics
    package let logger: Logger
    /// The IANA zones reports and exports accept (PostgreSQL's list, read once).
    package let timeZones: TimeZoneNames
    /// How long the readiness probe waits for the database.
    package var readinessTimeout: Duration = .seconds(2)
    package var passwordHasher = PasswordHasher()
    /// `POST /sub-accounts` attempts per reseller (docs/tenancy.md).
    package var subAccountCreations = RateLimiter(AppConfiguration.defaultSubAccountCreationLimit)
    /// How upstream passwords are stored (encrypted with `UPSTREAM_CREDENTIALS_KEY`, else as they are).
    package var upstreamCipher = UpstreamCredentialCipher.unencrypted
    /// The gateway clients of upstream connections, shared with the dispatcher.
    package var upstreamClients = UpstreamClients(logger: Logger(label: "gateway1601"))
    /// The send path, with its group commit queues (one per application, shared by every request).
    package var sending: Sending
    /// Delivery reports in, with their group commit queues.
    package var deliveryReports: DeliveryReports
    /// How reconciliation runs (the admin's run uses the drift threshold and report rows of the job).
    package var reconciliationSettings = ReconciliationSettings()

    package var apiKeys: APIKeyRepository { APIKeyRepository(pool: pool) }
    package var resellers: ResellerRepository { ResellerRepository(pool: pool) }
    package var subAccounts: SubAccountRepository { SubAccountRepository(pool: pool) }
    package var audit: AuditRepository { AuditRepository(pool: pool) }
    package var upstreamConnections: UpstreamConnectionRepository {
        UpstreamConnectionRepository(pool: pool, cipher: upstreamCipher)
    }
}
