import Logging
import PostgresLibpq
import ResellerAPI

/// Implements the generated `APIProtocol`: one extension file per area of `openapi.yaml`.
/// Handlers validate input, call domain services and map results to the generated outputs;
/// errors are thrown as `APIProblem` and rendered by `ProblemMiddleware`.
struct APIHandlers: APIProtocol {
    init(pool: PostgresPool, metrics: ServiceMetrics, logger: Logger, sending: Sending? = nil, deliveryReports: DeliveryReports? = nil) {
        self.pool = pool
        self.metrics = metrics
        self.logger = logger
        self.sending = sending ?? Sending(pool: pool, retryDeadline: .seconds(86_400))
        self.deliveryReports = deliveryReports ?? DeliveryReports(pool: pool)
    }

    let pool: PostgresPool
    let metrics: ServiceMetrics
    let logger: Logger
    /// How long the readiness probe waits for the database.
    var readinessTimeout: Duration = .seconds(2)
    var passwordHasher = PasswordHasher()
    /// How upstream passwords are stored (encrypted with `UPSTREAM_CREDENTIALS_KEY`, else as they are).
    var upstreamCipher = UpstreamCredentialCipher.unencrypted
    /// The gateway clients of upstream connections, shared with the dispatcher.
    var upstreamClients = UpstreamClients(logger: Logger(label: "gateway1601"))
    /// The send path, with its group commit queues (one per application, shared by every request).
    var sending: Sending
    /// Delivery reports in, with their group commit queues.
    var deliveryReports: DeliveryReports

    var apiKeys: APIKeyRepository { APIKeyRepository(pool: pool) }
    var resellers: ResellerRepository { ResellerRepository(pool: pool) }
    var subAccounts: SubAccountRepository { SubAccountRepository(pool: pool) }
    var audit: AuditRepository { AuditRepository(pool: pool) }
    var upstreamConnections: UpstreamConnectionRepository { UpstreamConnectionRepository(pool: pool, cipher: upstreamCipher) }
}
