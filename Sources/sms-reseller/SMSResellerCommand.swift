import ArgumentParser
import Finance
import Foundation
import Gateway1601
import Gateway1601Simulator
import Hummingbird
import Logging
import Messaging
import PostgresLibpq
import ResellerApp
import ResellerCore
import ServiceLifecycle
import Webhooks

@main
struct SMSResellerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sms-reseller",
        abstract: "Multi-tenant SMS reseller and billing backend in front of the 1601SMS gateway.",
        subcommands: [
            Serve.self, Migrate.self, Admin.self, Export.self, VerifyLedger.self, InvoiceRunCommand.self,
            Partitions.self,
        ],
        defaultSubcommand: Serve.self
    )
}

/// Options every subcommand shares. Each falls back to an environment variable, then to a default.
struct CommonOptions: ParsableArguments {
    @Option(
        help:
            "libpq URL of the database, e.g. postgres://user:pass@127.0.0.1:5432/sms_reseller (env: DATABASE_URL; required)."
    )
    var databaseURL: String?

    @Option(
        help:
            "Named prepared statements on each database connection: on, or off behind a transaction-pooling proxy such as PgBouncer in transaction mode (env: DB_PREPARED_STATEMENTS; default on)."
    )
    var dbPreparedStatements: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (env: LOG_LEVEL; default info).")
    var logLevel: String?

    @Option(help: "Log format: text or json (env: LOG_FORMAT; default text).")
    var logFormat: String?

    func environment(_ name: String) -> String? {
        ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    func resolvedDatabaseURL() throws -> String {
        guard let url = databaseURL ?? environment("DATABASE_URL") else {
            throw ValidationError(
                "No database given: pass --database-url or set DATABASE_URL (scripts/run.sh starts a private PostgreSQL for you)."
            )
        }
        return url
    }

    /// The database settings: the URL, and whether statements are prepared.
    func resolvedDatabaseConfiguration() throws -> PostgresConfiguration {
        var configuration = try PostgresConfiguration(url: try resolvedDatabaseURL())
        let text = dbPreparedStatements ?? environment("DB_PREPARED_STATEMENTS") ?? "on"
        switch text.lowercased() {
        case "on", "1", "true", "yes": break
        case "off", "0", "false", "no": configuration.preparedStatementCacheSize = 0
        default: throw ValidationError("DB_PREPARED_STATEMENTS must be on or off, got '\(text)'.")
        }
        return configuration
    }

    func resolvedLogLevel() throws -> Logger.Level {
        let text = logLevel ?? environment("LOG_LEVEL") ?? "info"
        guard let level = Logger.Level(rawValue: text.lowercased()) else {
            throw ValidationError(
                "Unknown log level '\(text)'; use one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))."
            )
        }
        return level
    }

    func resolvedLogFormat() throws -> LogFormat {
        let text = logFormat ?? environment("LOG_FORMAT") ?? "text"
        guard let format = LogFormat(rawValue: text.lowercased()) else {
            throw ValidationError("Unknown log format '\(text)'; use text or json.")
        }
        return format
    }

    func integer(_ flag: Int?, env name: String, default fallback: Int) throws -> Int {
        if let flag { return flag }
        guard let text = environment(name) else { return fallback }
        guard let value = Int(text) else { throw ValidationError("\(name) must be a whole number, got '\(text)'.") }
        return value
    }

    /// Runs `body` with a one-connection pool on the configured database, after applying pending
    /// migrations (it gets the ones applied now and the number known); closes the pool afterwards.
    func withMigratedDatabase<Result: Sendable>(
        applicationName: String, logger: Logger,
        _ body: (PostgresPool, _ applied: [Migration], _ known: Int) async throws -> Result
    ) async throws -> Result {
        let migrations = try BundledMigrations.load()
        return try await withDatabase(applicationName: applicationName, logger: logger) { pool in
            let applied = try await Migrator(pool: pool, migrations: migrations, logger: logger).migrate()
            return try await body(pool, applied, migrations.count)
        }
    }

    /// Runs `body` with a one-connection pool on the configured database, which must already have every migration
    /// of this build applied: the read-only commands (`verify-ledger`, `export`) migrate nothing, so that they also
    /// run on a standby and through a transaction-pooling proxy. Pending or changed migrations refuse with what to do;
    /// migrations of a newer build are fine (an older build lives with a newer schema: docs/operations.md, "The
    /// migration policy").
    func withCurrentSchema<Result: Sendable>(
        applicationName: String, logger: Logger, _ body: (PostgresPool) async throws -> Result
    ) async throws -> Result {
        let migrations = try BundledMigrations.load()
        return try await withDatabase(applicationName: applicationName, logger: logger) { pool in
            let statuses = try await Migrator(pool: pool, migrations: migrations, logger: logger).status()
            let behind = statuses.filter { $0.state != .applied && $0.state != .unknown }
            guard behind.isEmpty else {
                throw SchemaBehind(
                    migrations: behind.map { String(format: "%04d_", $0.version) + $0.name })
            }
            return try await body(pool)
        }
    }

    /// Runs `body` with a one-connection pool on the configured database, as it is; closes the pool afterwards.
    func withDatabase<Result: Sendable>(
        applicationName: String, logger: Logger, _ body: (PostgresPool) async throws -> Result
    ) async throws -> Result {
        var databaseConfiguration = try resolvedDatabaseConfiguration()
        databaseConfiguration.applicationName = applicationName
        databaseConfiguration.connectTimeoutSeconds = 10
        let pool = PostgresPool(
            configuration: databaseConfiguration,
            poolConfiguration: .init(minimumConnections: 0, maximumConnections: 1), logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pool.run() }
            defer { group.cancelAll() }
            return try await body(pool)
        }
    }

    /// The bundled migrations compared with the database's, applying nothing.
    func migrationStatus(applicationName: String, logger: Logger) async throws -> [MigrationStatus] {
        let migrations = try BundledMigrations.load()
        return try await withDatabase(applicationName: applicationName, logger: logger) { pool in
            try await Migrator(pool: pool, migrations: migrations, logger: logger).status()
        }
    }

    func bootstrapLogging() throws -> Logger {
        LoggingBootstrap.bootstrap(level: try resolvedLogLevel(), format: try resolvedLogFormat())
        return Logger(label: "sms-reseller")
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the REST API (default subcommand). Stops gracefully on SIGTERM or SIGINT.")

    @OptionGroup var common: CommonOptions

    @Option(help: "Address to listen on (env: HOST; default 127.0.0.1).")
    var host: String?

    @Option(help: "Port to listen on; 0 picks a free one (env: PORT; default 8080).")
    var port: Int?

    @Option(help: "Database connections kept open (env: DB_POOL_MIN; default 2).")
    var dbPoolMin: Int?

    @Option(help: "Database connections at most (env: DB_POOL_MAX; default 10).")
    var dbPoolMax: Int?

    @Option(
        help:
            "Statement timeout in milliseconds for every database session, 0 for none (env: DB_STATEMENT_TIMEOUT_MS; default 30000)."
    )
    var dbStatementTimeoutMs: Int?

    @Option(
        help:
            "libpq URL of a streaming replica the usage and balance reports and the exports read from (env: REPORTS_DATABASE_URL; default: the database)."
    )
    var reportsDatabaseURL: String?

    @Flag(help: "Apply pending database migrations before serving (env: MIGRATE=1).")
    var migrate = false

    @Option(
        help:
            "Base URL of the 1601 gateway, e.g. http://217.19.227.48 (env: UPSTREAM_1601_URL). Without it the built-in simulator is started."
    )
    var upstreamURL: String?

    @Option(
        help:
            "Port of the built-in simulator when no upstream URL is given; 0 picks a free one (env: SIMULATOR_PORT; default 8099)."
    )
    var simulatorPort: Int?

    @Option(
        help:
            "Gateway account (klantuser) for the first default upstream connection, created from --upstream-url when no connection exists (env: UPSTREAM_1601_USERNAME)."
    )
    var upstreamUsername: String?

    @Option(help: "Its password (env: UPSTREAM_1601_PASSWORD; prefer the environment, flags show in process lists).")
    var upstreamPassword: String?

    @Option(
        help:
            "32 random bytes in base64 to encrypt upstream passwords in the database, e.g. from `openssl rand -base64 32` (env: UPSTREAM_CREDENTIALS_KEY; prefer the environment). Without it they are stored unencrypted."
    )
    var upstreamCredentialsKey: String?

    @Flag(
        help:
            "Do not run the ledger upkeep (reservation expiry, idempotency purge) on this instance (env: LEDGER_MAINTENANCE=off)."
    )
    var noLedgerMaintenance = false

    @Option(help: "Days to remember Idempotency-Keys, at least 7 (env: IDEMPOTENCY_RETENTION_DAYS; default 7).")
    var idempotencyRetentionDays: Int?

    @Flag(
        help: "Do not send queued messages upstream from this instance, e.g. on API-only nodes (env: DISPATCHER=off).")
    var noDispatcher = false

    @Option(
        help:
            "Milliseconds between looks for due messages when idle, 10-60000 (env: DISPATCHER_POLL_INTERVAL_MS; default \(Defaults.dispatch.pollInterval.whole(.milliseconds(1))))."
    )
    var dispatcherPollIntervalMs: Int?

    @Option(
        help:
            "Seconds a claimed message is held before another worker may take it over, 2-3600; raised per connection to twice its request timeout (env: DISPATCHER_LEASE_SECONDS; default \(Defaults.dispatch.lease.whole(.seconds(1))))."
    )
    var dispatcherLeaseSeconds: Int?

    @Option(
        help:
            "Messages claimed at once per upstream connection, 1-1000 (env: DISPATCHER_BATCH_SIZE; default \(Defaults.dispatch.batchSize))."
    )
    var dispatcherBatchSize: Int?

    @Option(
        help:
            "Minutes transient upstream failures are retried before a message fails, at least 1 (env: DISPATCHER_RETRY_DEADLINE_MINUTES; default \(Defaults.dispatch.retryDeadline.whole(.seconds(60))))."
    )
    var dispatcherRetryDeadlineMinutes: Int?

    @Option(
        help:
            "Upper bound in milliseconds of the first retry's random wait; it doubles per attempt (env: DISPATCHER_BACKOFF_BASE_MS; default \(Defaults.dispatch.backoff.base.whole(.milliseconds(1))))."
    )
    var dispatcherBackoffBaseMs: Int?

    @Option(
        help:
            "Longest wait in seconds between two attempts of a message (env: DISPATCHER_BACKOFF_CAP_SECONDS; default \(Defaults.dispatch.backoff.cap.whole(.seconds(1))))."
    )
    var dispatcherBackoffCapSeconds: Int?

    @Option(
        help:
            "Seconds after an attempt in doubt (its answer lost) before the upstream's report table is asked whether it took the message, 0-3600 (env: DISPATCHER_IN_DOUBT_SETTLE_SECONDS; default \(Defaults.dispatch.inDoubtSettle.whole(.seconds(1))))."
    )
    var dispatcherInDoubtSettleSeconds: Int?

    @Option(
        help:
            "Rows of the upstream's report table read to resolve messages in doubt, 1-100000 (env: DISPATCHER_IN_DOUBT_REPORT_ROWS; default \(Defaults.dispatch.inDoubtReportRows))."
    )
    var dispatcherInDoubtReportRows: Int?

    @Flag(
        help:
            "Do not poll the upstream for delivery reports nor expire messages from this instance (env: REPORT_POLLING=off)."
    )
    var noReportPolling = false

    @Option(
        help:
            "Minutes after submission before a message without a final report is first polled, at least 1 (env: REPORT_POLL_AFTER_MINUTES; default \(Defaults.reportPoll.pollAfter.whole(.seconds(60))))."
    )
    var reportPollAfterMinutes: Int?

    @Option(
        help:
            "Hours after submission before a message without a final report expires, at least 1 (env: REPORT_EXPIRE_AFTER_HOURS; default \(Defaults.reportPoll.expireAfter.whole(.seconds(3600))))."
    )
    var reportExpireAfterHours: Int?

    @Option(
        help:
            "Seconds between two reconciliations of each upstream connection against its 1601 account, 0 switches the job off on this instance (env: RECONCILIATION_INTERVAL_SECONDS; default \(Defaults.reconciliation.interval.whole(.seconds(1))))."
    )
    var reconciliationIntervalSeconds: Int?

    @Option(
        help:
            "Credits of drift between the upstream's credits and the ledger past which upstream.credit_drift is raised (env: RECONCILIATION_DRIFT_THRESHOLD; default \(Defaults.reconciliation.driftThresholdText))."
    )
    var reconciliationDriftThreshold: String?

    @Option(
        help:
            "Rows of the upstream's report table a reconciliation reads, 1-100000 (env: RECONCILIATION_REPORT_ROWS; default \(Defaults.reconciliation.reportRows))."
    )
    var reconciliationReportRows: Int?

    @Flag(help: "Do not deliver webhook events from this instance (env: WEBHOOKS=off).")
    var noWebhooks = false

    @Option(
        help:
            "Base URL of an OpenTelemetry OTLP/HTTP receiver for traces, e.g. http://127.0.0.1:4318 (env: OTEL_EXPORTER_OTLP_ENDPOINT; default none: tracing off)."
    )
    var otelEndpoint: String?

    @Option(help: "The service.name of the traces (env: OTEL_SERVICE_NAME; default sms-reseller).")
    var otelServiceName: String?

    @Option(
        help:
            "Seconds a webhook receiver has to answer 2xx, 1-60 (env: WEBHOOK_TIMEOUT_SECONDS; default \(Defaults.webhookDelivery.timeout.whole(.seconds(1))))."
    )
    var webhookTimeoutSeconds: Int?

    @Option(
        help:
            "Comma-separated CIDR ranges of proxies whose X-Forwarded-For names the client, for the 1601-compatible endpoint's per-address password limits (env: TRUSTED_PROXIES; default none)."
    )
    var trustedProxies: String?

    @Option(
        help:
            "Largest JSON request body in bytes, 64 KiB-64 MiB (env: MAX_JSON_BODY_BYTES; default \(BodyLimits.defaultJSON)); the CSV uploads keep their own limits."
    )
    var maxJSONBodyBytes: Int?

    func run() async throws {
        var configuration = AppConfiguration(database: try common.resolvedDatabaseConfiguration())
        configuration.ledgerMaintenance =
            !noLedgerMaintenance
            && !["off", "0", "false", "no"].contains(common.environment("LEDGER_MAINTENANCE")?.lowercased() ?? "")
        let retentionDays = try common.integer(idempotencyRetentionDays, env: "IDEMPOTENCY_RETENTION_DAYS", default: 7)
        guard retentionDays >= 7 else { throw ValidationError("Idempotency-Keys are kept at least 7 days.") }
        configuration.idempotencyRetention = .seconds(retentionDays * 86_400)
        try configureDispatcher(&configuration)
        configuration.tracing.endpoint = otelEndpoint ?? common.environment("OTEL_EXPORTER_OTLP_ENDPOINT")
        if let endpoint = configuration.tracing.endpoint,
            !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) || URL(string: endpoint)?.host == nil
        {
            throw ValidationError("--otel-endpoint must be an http:// or https:// URL, not \(endpoint).")
        }
        configuration.tracing.serviceName =
            otelServiceName ?? common.environment("OTEL_SERVICE_NAME") ?? configuration.tracing.serviceName
        configuration.webhooks =
            !noWebhooks && !["off", "0", "false", "no"].contains(common.environment("WEBHOOKS")?.lowercased() ?? "")
        let webhookTimeout = try common.integer(
            webhookTimeoutSeconds, env: "WEBHOOK_TIMEOUT_SECONDS",
            default: Defaults.webhookDelivery.timeout.whole(.seconds(1)))
        guard (1...60).contains(webhookTimeout) else {
            throw ValidationError("The webhook timeout must be 1-60 seconds.")
        }
        configuration.webhookDelivery.timeout = .seconds(webhookTimeout)
        let jsonBodyLimit = try common.integer(
            maxJSONBodyBytes, env: "MAX_JSON_BODY_BYTES", default: BodyLimits.defaultJSON)
        guard (64 << 10...64 << 20).contains(jsonBodyLimit) else {
            throw ValidationError("The JSON body limit must be 65536-67108864 bytes.")
        }
        configuration.bodyLimits.json = jsonBodyLimit
        configuration.trustedProxies = (trustedProxies ?? common.environment("TRUSTED_PROXIES") ?? "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        configuration.reportPolling =
            !noReportPolling
            && !["off", "0", "false", "no"].contains(common.environment("REPORT_POLLING")?.lowercased() ?? "")
        let pollAfter = try common.integer(
            reportPollAfterMinutes, env: "REPORT_POLL_AFTER_MINUTES",
            default: Defaults.reportPoll.pollAfter.whole(.seconds(60)))
        let expireAfter = try common.integer(
            reportExpireAfterHours, env: "REPORT_EXPIRE_AFTER_HOURS",
            default: Defaults.reportPoll.expireAfter.whole(.seconds(3600)))
        guard pollAfter >= 1, expireAfter >= 1, expireAfter * 60 > pollAfter else {
            throw ValidationError(
                "Reports are polled at least 1 minute and expire at least 1 hour after submission, the expiry after the first poll."
            )
        }
        configuration.reportPoll.pollAfter = .seconds(pollAfter * 60)
        configuration.reportPoll.expireAfter = .seconds(expireAfter * 3600)
        let reconciliationInterval = try common.integer(
            reconciliationIntervalSeconds, env: "RECONCILIATION_INTERVAL_SECONDS",
            default: Defaults.reconciliation.interval.whole(.seconds(1)))
        guard (0...86_400).contains(reconciliationInterval) else {
            throw ValidationError("The reconciliation interval must be 0-86400 seconds.")
        }
        configuration.reconciliation.interval = .seconds(reconciliationInterval)
        if let text = reconciliationDriftThreshold ?? common.environment("RECONCILIATION_DRIFT_THRESHOLD") {
            guard let threshold = ReconciliationSettings.threshold(parsing: text) else {
                throw ValidationError(
                    "The reconciliation drift threshold must be an amount of credits such as 10 or 2.5.")
            }
            configuration.reconciliation.driftThreshold = threshold
        }
        let reconciliationRows = try common.integer(
            reconciliationReportRows, env: "RECONCILIATION_REPORT_ROWS", default: Defaults.reconciliation.reportRows)
        guard (1...100_000).contains(reconciliationRows) else {
            throw ValidationError("The reconciliation report rows must be 1-100000.")
        }
        configuration.reconciliation.reportRows = reconciliationRows
        configuration.host = host ?? common.environment("HOST") ?? configuration.host
        configuration.port = try common.integer(port, env: "PORT", default: configuration.port)
        configuration.databasePoolMinimum = try common.integer(
            dbPoolMin, env: "DB_POOL_MIN", default: configuration.databasePoolMinimum)
        configuration.databasePoolMaximum = try common.integer(
            dbPoolMax, env: "DB_POOL_MAX", default: configuration.databasePoolMaximum)
        configuration.databaseStatementTimeoutMilliseconds = try common.integer(
            dbStatementTimeoutMs, env: "DB_STATEMENT_TIMEOUT_MS",
            default: configuration.databaseStatementTimeoutMilliseconds)
        if let url = reportsDatabaseURL ?? common.environment("REPORTS_DATABASE_URL") {
            var reports = try PostgresConfiguration(url: url)
            reports.preparedStatementCacheSize = configuration.database.preparedStatementCacheSize
            configuration.reportsDatabase = reports
        }
        configuration.migrate =
            migrate || ["1", "true", "yes"].contains(common.environment("MIGRATE")?.lowercased() ?? "")
        let username = upstreamUsername ?? common.environment("UPSTREAM_1601_USERNAME")
        let password = upstreamPassword ?? common.environment("UPSTREAM_1601_PASSWORD")
        guard (username == nil) == (password == nil) else {
            throw ValidationError(
                "UPSTREAM_1601_USERNAME and UPSTREAM_1601_PASSWORD go together: give both or neither.")
        }
        var builtInSimulatorPort: Int?
        if let url = upstreamURL ?? common.environment("UPSTREAM_1601_URL") {
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil
            else {
                throw ValidationError("UPSTREAM_1601_URL must be an http(s) URL, got '\(url)'.")
            }
            configuration.upstream = .external(
                baseURL: url,
                credentials: username.flatMap { username in
                    password.map { GatewayCredentials(username: username, password: $0) }
                })
        } else {
            guard username == nil else {
                throw ValidationError(
                    "UPSTREAM_1601_USERNAME and UPSTREAM_1601_PASSWORD need UPSTREAM_1601_URL; the built-in simulator uses its sandbox account."
                )
            }
            let port = try common.integer(simulatorPort, env: "SIMULATOR_PORT", default: 8099)
            guard (0...65535).contains(port) else {
                throw ValidationError("The simulator port must be between 0 and 65535.")
            }
            builtInSimulatorPort = port
        }
        guard (0...65535).contains(configuration.port) else {
            throw ValidationError("The port must be between 0 and 65535.")
        }
        guard configuration.databasePoolMaximum >= 1,
            (0...configuration.databasePoolMaximum).contains(configuration.databasePoolMinimum)
        else {
            throw ValidationError("Pool sizes must satisfy 0 <= DB_POOL_MIN <= DB_POOL_MAX and DB_POOL_MAX >= 1.")
        }
        configuration.upstreamCredentialsKey = upstreamCredentialsKey ?? common.environment("UPSTREAM_CREDENTIALS_KEY")
        configuration.logLevel = try common.resolvedLogLevel()
        configuration.logFormat = try common.resolvedLogFormat()
        let logger = try common.bootstrapLogging()
        if let builtInSimulatorPort {
            configuration.upstream = .embedded(
                EmbeddedUpstream(
                    GatewaySimulator.sandbox(port: builtInSimulatorPort, logger: logger.relabeled("gateway1601-sim"))))
        }
        let app = try buildApplication(configuration: configuration, logger: logger)
        try await app.runService()
    }

    /// The dispatcher's switch and settings, from flags or the environment, checked.
    private func configureDispatcher(_ configuration: inout AppConfiguration) throws {
        configuration.dispatcher =
            !noDispatcher
            && !["off", "0", "false", "no"].contains(common.environment("DISPATCHER")?.lowercased() ?? "")
        let poll = try common.integer(
            dispatcherPollIntervalMs, env: "DISPATCHER_POLL_INTERVAL_MS",
            default: Defaults.dispatch.pollInterval.whole(.milliseconds(1)))
        guard (10...60_000).contains(poll) else {
            throw ValidationError("The dispatcher poll interval must be 10-60000 ms.")
        }
        let lease = try common.integer(
            dispatcherLeaseSeconds, env: "DISPATCHER_LEASE_SECONDS", default: Defaults.dispatch.lease.whole(.seconds(1))
        )
        guard (2...3600).contains(lease) else { throw ValidationError("The dispatcher lease must be 2-3600 seconds.") }
        let batch = try common.integer(
            dispatcherBatchSize, env: "DISPATCHER_BATCH_SIZE", default: Defaults.dispatch.batchSize)
        guard (1...1000).contains(batch) else { throw ValidationError("The dispatcher batch size must be 1-1000.") }
        let deadline = try common.integer(
            dispatcherRetryDeadlineMinutes, env: "DISPATCHER_RETRY_DEADLINE_MINUTES",
            default: Defaults.dispatch.retryDeadline.whole(.seconds(60)))
        guard deadline >= 1 else { throw ValidationError("The retry deadline must be at least 1 minute.") }
        let base = try common.integer(
            dispatcherBackoffBaseMs, env: "DISPATCHER_BACKOFF_BASE_MS",
            default: Defaults.dispatch.backoff.base.whole(.milliseconds(1)))
        let cap = try common.integer(
            dispatcherBackoffCapSeconds, env: "DISPATCHER_BACKOFF_CAP_SECONDS",
            default: Defaults.dispatch.backoff.cap.whole(.seconds(1)))
        guard base >= 1, cap >= 1, cap * 1000 >= base else {
            throw ValidationError("The backoff base and cap must be positive, the cap at least the base.")
        }
        let settle = try common.integer(
            dispatcherInDoubtSettleSeconds, env: "DISPATCHER_IN_DOUBT_SETTLE_SECONDS",
            default: Defaults.dispatch.inDoubtSettle.whole(.seconds(1)))
        guard (0...3600).contains(settle) else {
            throw ValidationError("The in-doubt settle time must be 0-3600 seconds.")
        }
        let reportRows = try common.integer(
            dispatcherInDoubtReportRows, env: "DISPATCHER_IN_DOUBT_REPORT_ROWS",
            default: Defaults.dispatch.inDoubtReportRows)
        guard (1...100_000).contains(reportRows) else {
            throw ValidationError("The in-doubt report rows must be 1-100000.")
        }
        configuration.dispatch.inDoubtSettle = .seconds(settle)
        configuration.dispatch.inDoubtReportRows = reportRows
        configuration.dispatch.pollInterval = .milliseconds(poll)
        configuration.dispatch.lease = .seconds(lease)
        configuration.dispatch.batchSize = batch
        configuration.dispatch.retryDeadline = .seconds(deadline * 60)
        configuration.dispatch.backoff = RetryBackoff(base: .milliseconds(base), cap: .seconds(cap))
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Apply pending database migrations and exit (the default), or show what is applied and what would be.",
        subcommands: [Apply.self, Status.self],
        defaultSubcommand: Apply.self)

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "apply",
            abstract:
                "Apply pending database migrations and exit (`sms-reseller migrate`). Safe to run from several instances at once."
        )

        @OptionGroup var common: CommonOptions

        @Flag(
            help:
                "List the migrations that would be applied, in order, with their checksums, and apply nothing; exits 1 when migrating would be refused (an applied migration changed, or unknown to this build)."
        )
        var dryRun = false

        func run() async throws {
            let logger = try common.bootstrapLogging()
            guard dryRun else {
                try await common.withMigratedDatabase(applicationName: "sms-reseller migrate", logger: logger) {
                    _, applied, known in
                    logger.info(
                        "migrations done",
                        metadata: ["applied": "\(applied.map { "\($0.version)_\($0.name)" })", "known": "\(known)"])
                }
                return
            }
            let statuses = try await common.migrationStatus(applicationName: "sms-reseller migrate", logger: logger)
            let pending = statuses.filter { $0.state == .pending }
            for status in pending { print("would apply \(status.label) \(status.checksum)") }
            let blocking = statuses.filter(\.blocksMigration)
            for status in blocking { print("refused     \(status.label) \(status.stateText)") }
            print(
                "dry-run: pending=\(pending.count) applied=\(statuses.count(where: { $0.state == .applied })) refused=\(blocking.count); nothing was applied"
            )
            if !blocking.isEmpty { throw ExitCode(1) }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show each migration as applied, pending, changed or unknown; apply nothing.",
            discussion: """
                One line per migration: its state, number and name, checksum. `changed`: applied, but this build's \
                file differs; `unknown`: applied in the database, absent from this build (a newer build migrated it). \
                Exits 1 when any is changed or unknown (`migrate` would refuse to run), else 0, pending or not.
                """)

        @OptionGroup var common: CommonOptions

        func run() async throws {
            let logger = try common.bootstrapLogging()
            let statuses = try await common.migrationStatus(applicationName: "sms-reseller migrate", logger: logger)
            let width = statuses.map(\.label.count).max() ?? 0
            for status in statuses {
                let label = status.label.padding(toLength: width, withPad: " ", startingAt: 0)
                print(
                    "\(status.stateName.padding(toLength: 8, withPad: " ", startingAt: 0)) \(label) \(status.stateText)"
                )
            }
            let blocking = statuses.filter(\.blocksMigration)
            print(
                "migrations: applied=\(statuses.count(where: { $0.state == .applied })) pending=\(statuses.count(where: { $0.state == .pending })) changed=\(statuses.count(where: { $0.stateName == "changed" })) unknown=\(statuses.count(where: { $0.state == .unknown }))"
            )
            if !blocking.isEmpty { throw ExitCode(1) }
        }
    }
}

/// The database lacks migrations of this build (pending), or has one that differs from this build's (changed).
struct SchemaBehind: Error, CustomStringConvertible {
    let migrations: [String]

    var description: String {
        "the database's schema is not this build's (\(migrations.joined(separator: ", ")) not applied as this build has "
            + "them): run `sms-reseller migrate` against the primary first (`migrate status` shows each migration)"
    }
}

extension MigrationStatus {
    /// `0017_reconciliation`.
    fileprivate var label: String { String(format: "%04d", version) + "_" + name }

    fileprivate var stateName: String {
        switch state {
        case .applied: "applied"
        case .pending: "pending"
        case .changed: "changed"
        case .unknown: "unknown"
        }
    }

    /// The checksum, and what differs.
    fileprivate var stateText: String {
        switch state {
        case .applied, .pending: checksum
        case .changed(let applied): "file \(checksum), applied \(applied): changed after it was applied"
        case .unknown: "applied \(checksum): not in this build (a newer build migrated the database)"
        }
    }
}

struct Admin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Platform administration from the command line.",
        subcommands: [CreateKey.self])

    struct CreateKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create-key",
            abstract:
                "Create a platform admin API key and print it once (the way to get the first key). Applies pending migrations first."
        )

        @OptionGroup var common: CommonOptions

        @Option(help: "A name for the key, 1-100 characters (shown in key listings).")
        var name: String

        func run() async throws {
            let logger = try common.bootstrapLogging()
            let key = try await common.withMigratedDatabase(applicationName: "sms-reseller admin", logger: logger) {
                pool, _, _ in
                try await AdminBootstrap.createAdminKey(pool: pool, name: name)
            }
            print("Admin API key \(key.id.uuidString.lowercased()) (\(key.prefix)…). Shown only now; keep it safe:")
            print(key.secret)
        }
    }
}

/// The defaults that help texts show and unset options fall back to: the settings types' own, defined there once.
private enum Defaults {
    static let dispatch = DispatcherSettings()
    static let reportPoll = ReportPoller.Settings()
    static let webhookDelivery = WebhookSenderSettings()
    static let reconciliation = ReconciliationSettings()
}

extension Duration {
    /// How many whole `unit`s this is (a setting shown in the unit of its option).
    fileprivate func whole(_ unit: Duration) -> Int { Int(self / unit) }
}
