import Logging
import PostgresLibpq
import ResellerAPI

/// Implements the generated `APIProtocol`: one extension file per area of `openapi.yaml`.
/// Handlers validate input, call domain services and map results to the generated outputs;
/// errors are thrown as `APIProblem` and rendered by `ProblemMiddleware`.
struct APIHandlers: APIProtocol {
    let pool: PostgresPool
    let metrics: ServiceMetrics
    let logger: Logger
    /// How long the readiness probe waits for the database.
    var readinessTimeout: Duration = .seconds(2)
    var passwordHasher = PasswordHasher()

    var apiKeys: APIKeyRepository { APIKeyRepository(pool: pool) }
    var resellers: ResellerRepository { ResellerRepository(pool: pool) }
    var subAccounts: SubAccountRepository { SubAccountRepository(pool: pool) }
    var audit: AuditRepository { AuditRepository(pool: pool) }
}
