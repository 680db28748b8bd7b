import CompatibleGateway
import Finance
import Foundation
import Gateway1601
import Hummingbird
import Ledger
import Logging
import Messaging
import OpenAPIHummingbird
import OpenAPIRuntime
import PostgresLibpq
import ResellerAPI
import ResellerCore
import ServiceLifecycle
import Tracing
import Webhooks

/// Builds the HTTP application: router, middleware, generated handlers, and the services it runs
/// (the database pool first, so it shuts down last, after in-flight requests have finished).
package func buildApplication(
    configuration: AppConfiguration,
    metrics: ServiceMetrics = ServiceMetrics(),
    logger: Logger = Logger(label: "sms-reseller"),
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) throws -> some ApplicationProtocol {
    // Settings first: nothing that needs shutting down exists yet when one is refused.
    var gatewaySettings = GatewayEndpointSettings()
    gatewaySettings.trustedProxies = try GatewayEndpointSettings.ranges(configuration.trustedProxies)
    var databaseConfiguration = configuration.database
    databaseConfiguration.applicationName = "sms-reseller"
    databaseConfiguration.connectTimeoutSeconds = 5
    if configuration.databaseStatementTimeoutMilliseconds > 0 {
        databaseConfiguration.statementTimeoutMilliseconds = configuration.databaseStatementTimeoutMilliseconds
    }
    var poolConfiguration = PostgresPoolConfiguration(
        minimumConnections: configuration.databasePoolMinimum, maximumConnections: configuration.databasePoolMaximum)
    poolConfiguration.acquireWaitObserver = metrics.poolAcquireWaitObserver()
    let tracing = try makeTracer(configuration.tracing)
    poolConfiguration.tracer = tracing?.tracer
    let pool = PostgresPool(
        configuration: databaseConfiguration, poolConfiguration: poolConfiguration, logger: logger.relabeled("postgres")
    )
    // Reports and exports on a replica when one is configured: same session settings, its own connections (none
    // kept open), each statement under the same timeout.
    let reportsPool = configuration.reportsDatabase.map { reports in
        var reportsConfiguration = reports
        reportsConfiguration.applicationName = "sms-reseller reports"
        reportsConfiguration.connectTimeoutSeconds = 5
        reportsConfiguration.statementTimeoutMilliseconds = databaseConfiguration.statementTimeoutMilliseconds
        return PostgresPool(
            configuration: reportsConfiguration,
            poolConfiguration: .init(minimumConnections: 0, maximumConnections: configuration.databasePoolMaximum),
            logger: logger.relabeled("postgres-reports"))
    }
    let upstreamCipher =
        try configuration.upstreamCredentialsKey.map { try UpstreamCredentialCipher(base64Key: $0) } ?? .unencrypted
    let upstreamHTTP = UpstreamHTTPClient()
    let upstreamClients = UpstreamClients(
        httpClient: upstreamHTTP.client, logger: logger.relabeled("gateway1601"), tracer: tracing?.tracer)
    // Shared by the dispatcher and the send path, which wakes it after committing new messages (a no-op without a
    // dispatcher on this instance).
    let dispatchSignal = DispatchSignal()
    let deliveryReports = DeliveryReports(pool: pool)
    let sending = Sending(
        pool: pool, retryDeadline: configuration.dispatch.retryDeadline,
        callbackPolicy: WebhookURLPolicy(endpoints: WebhookEndpointRepository(pool: pool)),
        wakeDispatcher: { dispatchSignal.wake() })
    // One bound on the slow password hashes of the whole application: the 1601 endpoint's checks and new passwords.
    let hashing = PasswordHashing()
    let router = try buildRouter(
        pool: pool, metrics: metrics, logger: logger, tracer: tracing?.tracer,
        passwordHasher: PasswordHasher(iterations: configuration.passwordIterations, hashing: hashing),
        upstreamCipher: upstreamCipher, upstreamClients: upstreamClients, sending: sending,
        deliveryReports: deliveryReports, bodyLimits: configuration.bodyLimits,
        reconciliation: configuration.reconciliation,
        subAccountCreationLimit: configuration.subAccountCreationLimit, reportsPool: reportsPool,
        gateway: GatewayEndpoint(
            pool: pool, sending: sending, passwordIterations: configuration.passwordIterations,
            settings: gatewaySettings, hashing: hashing,
            metrics: metrics, logger: logger.relabeled("gateway-endpoint")))
    // The span exporter first: services stop in reverse order, so it exports what the others finished last.
    var services: [any Service] = (tracing.map { [$0.service] } ?? []) + [pool]
    if let reportsPool { services.append(reportsPool) }
    services.append(upstreamHTTP)
    if configuration.ledgerMaintenance {
        services.append(UsageRollupService(pool: pool, logger: logger.relabeled("usage-rollup")))
        services.append(
            LedgerMaintenance(
                pool: pool, interval: configuration.ledgerMaintenanceInterval,
                retention: configuration.idempotencyRetention,
                logger: logger.relabeled("ledger"), onExpired: { metrics.recordReservationsExpired($0) }))
        services.append(PartitionMaintenance(pool: pool, logger: logger.relabeled("partitions")))
    }
    var embedded: EmbeddedUpstream?
    if case .embedded(let upstream) = configuration.upstream {
        services.append(upstream.service)
        embedded = upstream
    }
    // After an embedded upstream: services stop in reverse order, so calls in flight still reach it.
    if configuration.dispatcher {
        services.append(
            Dispatcher(
                connections: UpstreamConnectionRepository(pool: pool, cipher: upstreamCipher), clients: upstreamClients,
                signal: dispatchSignal, settings: configuration.dispatch, metrics: metrics,
                logger: logger.relabeled("dispatcher")))
    }
    if configuration.reportPolling {
        services.append(
            ReportPoller(
                reports: deliveryReports, connections: UpstreamConnectionRepository(pool: pool, cipher: upstreamCipher),
                clients: upstreamClients,
                settings: configuration.reportPoll, metrics: metrics,
                logger: logger.relabeled("delivery-reports")))
    }
    if configuration.reconciliation.interval > .zero {
        services.append(
            ReconciliationService(
                reconciler: Reconciler(
                    pool: pool,
                    upstream: APIHandlers.reconciliationUpstream(
                        connections: UpstreamConnectionRepository(pool: pool, cipher: upstreamCipher),
                        clients: upstreamClients),
                    settings: configuration.reconciliation, logger: logger.relabeled("reconciliation"))))
    }
    if configuration.webhooks {
        // The client first: services stop in reverse order, so the sender finishes before its client closes.
        let webhookHTTP = WebhookHTTPClient(timeout: configuration.webhookDelivery.timeout)
        services.append(webhookHTTP)
        services.append(
            WebhookSender(
                pool: pool, client: webhookHTTP.client, settings: configuration.webhookDelivery,
                logger: logger.relabeled("webhooks")))
    }
    var app = Application(
        router: router,
        configuration: .init(
            address: .hostname(configuration.host, port: configuration.port), serverName: "sms-reseller"),
        services: services,
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
        logger: logger
    )
    if let embedded {
        app.beforeServerStarts {
            let line = String(repeating: "!", count: 78)
            logger.warning("\(line)")
            for text in embedded.gateway.banner(baseURL: try await embedded.gateway.baseURL()) {
                logger.warning("!! \(text)")
            }
            logger.warning("\(line)")
        }
    }
    if configuration.migrate {
        app.beforeServerStarts {
            let applied = try await Migrator(pool: pool, migrations: try BundledMigrations.load(), logger: logger)
                .migrate()
            logger.info("database schema is up to date", metadata: ["applied_now": "\(applied.count)"])
        }
    }
    // After the migrations: the first default upstream connection, password encryption, warnings.
    app.beforeServerStarts {
        let configured: UpstreamConnectionSettings?
        switch configuration.upstream {
        case .embedded(let upstream):
            let gateway = upstream.gateway
            configured = UpstreamConnectionSettings(
                name: gateway.connectionName, baseURL: try await gateway.baseURL(),
                username: gateway.credentials.username,
                password: gateway.credentials.password)
        case .none:
            configured = nil
        case .external(let baseURL, let credentials):
            if credentials == nil {
                logger.notice(
                    "UPSTREAM_1601_URL is set without UPSTREAM_1601_USERNAME and UPSTREAM_1601_PASSWORD: no connection is created from it"
                )
            }
            var validator = Validator()
            if let normalized = validator.upstreamBaseURL(baseURL, field: "UPSTREAM_1601_URL") {
                configured = UpstreamConnectionSettings(
                    name: "1601SMS", baseURL: normalized, username: credentials?.username ?? "",
                    password: credentials?.password)
            } else {
                logger.error(
                    "UPSTREAM_1601_URL cannot be an upstream connection: \(validator.errors.map(\.message).joined(separator: "; "))"
                )
                configured = nil
            }
        }
        await UpstreamBootstrap.run(
            repository: UpstreamConnectionRepository(pool: pool, cipher: upstreamCipher), configured: configured,
            logger: logger.relabeled("upstream"))
    }
    return app
}

/// The router with middleware and every operation of `openapi.yaml` registered. `sending` is the send path, which wakes
/// this instance's dispatcher once new messages are committed.
package func buildRouter(
    pool: PostgresPool, metrics: ServiceMetrics, logger: Logger, tracer: (any Tracer)? = nil,
    passwordHasher: PasswordHasher,
    upstreamCipher: UpstreamCredentialCipher,
    upstreamClients: UpstreamClients, sending: Sending, deliveryReports: DeliveryReports,
    bodyLimits: BodyLimits = BodyLimits(), reconciliation: ReconciliationSettings = ReconciliationSettings(),
    subAccountCreationLimit: RateLimit = AppConfiguration.defaultSubAccountCreationLimit,
    reportsPool: PostgresPool? = nil, gateway: GatewayEndpoint
) throws -> Router<ResellerRequestContext> {
    let router = Router(context: ResellerRequestContext.self)
    let routes = RouteMethods()
    if let tracer { router.middlewares.add(RequestTracingMiddleware(tracer: tracer)) }
    router.middlewares.add(RequestIDMiddleware())
    router.middlewares.add(ProblemMiddleware(metrics: metrics, routes: routes))
    // The JSON API's own middleware; the 1601-compatible endpoint (added to the router itself) has its own login and
    // reads its own bodies.
    let api = router.group()
        .add(middleware: BodyLimitMiddleware(limits: bodyLimits))
        .add(middleware: AuthenticationMiddleware(keys: APIKeyRepository(pool: pool)))
        .add(middleware: HeaderEncodingMiddleware())
    var handlers = APIHandlers(
        pool: pool, metrics: metrics, logger: logger, sending: sending, deliveryReports: deliveryReports)
    handlers.passwordHasher = passwordHasher
    handlers.subAccountCreations = RateLimiter(subAccountCreationLimit)
    handlers.upstreamCipher = upstreamCipher
    handlers.upstreamClients = upstreamClients
    handlers.reconciliationSettings = reconciliation
    if let reportsPool { handlers.reportsPool = reportsPool }
    try handlers.registerHandlers(
        on: RecordingTransport(api, routes: routes), configuration: .init(dateTranscoder: APIDateTranscoder()),
        middlewares: [OperationMetricsMiddleware(metrics: metrics), RequireKeyMiddleware(), RequestSchemaMiddleware()])
    ExportRoute(handlers: handlers).register(on: api)
    routes.add(.get, ExportRoute.path)
    gateway.register(on: router)
    for path in [GatewayCall.gatewayPath, GatewayCall.reportPath] {
        routes.add(.get, path)
        routes.add(.post, path)
    }
    return router
}

extension Logger {
    package func relabeled(_ label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = logLevel
        return logger
    }
}
