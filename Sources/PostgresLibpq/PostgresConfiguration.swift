import CLibpq

/// How to reach PostgreSQL: libpq keyword settings, built from a URL or given one by one.
///
/// Settings are handed to `PQconnectdbParams` as separate keywords and values, so no
/// connection string is ever assembled by hand. Every connection also gets the session
/// settings the decoders rely on (`TimeZone=UTC`, `DateStyle=ISO`, `bytea_output=hex`,
/// `client_encoding=UTF8`).
public struct PostgresConfiguration: Sendable {
    /// libpq keywords and values, in order; a later keyword overrides an earlier one.
    public private(set) var parameters: [(keyword: String, value: String)]
    /// Reported in `pg_stat_activity.application_name`.
    public var applicationName: String?
    /// Seconds libpq waits for a connection to be established (`connect_timeout`).
    public var connectTimeoutSeconds: Int?
    /// Server-side limit for every statement of the session (`statement_timeout`), in milliseconds.
    public var statementTimeoutMilliseconds: Int?
    /// Server-side limit for waiting on locks (`lock_timeout`), in milliseconds.
    public var lockTimeoutMilliseconds: Int?
    /// Statements each connection keeps prepared on the server (0 turns preparing off, e.g.
    /// behind a transaction-pooling proxy such as PgBouncer in transaction mode).
    public var preparedStatementCacheSize = 256

    /// Settings from libpq keywords (`host`, `port`, `user`, `password`, `dbname`, `sslmode`, …).
    public init(parameters: [(keyword: String, value: String)]) {
        self.parameters = parameters
    }

    /// Settings for a host, port, user and database.
    public init(host: String, port: Int = 5432, user: String, password: String? = nil, database: String) {
        var parameters: [(keyword: String, value: String)] = [
            ("host", host), ("port", String(port)), ("user", user), ("dbname", database),
        ]
        if let password { parameters.append(("password", password)) }
        self.init(parameters: parameters)
    }

    /// Settings parsed by libpq itself from a `postgres://` / `postgresql://` URL or a `key=value` string.
    public init(url: String) throws {
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(url, &errorMessage) else {
            defer { if let errorMessage { PQfreemem(errorMessage) } }
            let reason = errorMessage.map { String(cString: $0).trimmingTrailingNewlines() } ?? "not a connection URL"
            throw PostgresError(kind: .misuse, message: "invalid database URL: \(reason)")
        }
        defer { PQconninfoFree(options) }
        var parameters: [(keyword: String, value: String)] = []
        var option = options
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val {
                parameters.append((String(cString: keyword), String(cString: value)))
            }
            option += 1
        }
        self.init(parameters: parameters)
    }

    /// Returns the value given for a libpq keyword, if any.
    public func value(for keyword: String) -> String? {
        parameters.last(where: { $0.keyword == keyword })?.value
    }

    /// Sets (or replaces) a libpq keyword.
    public mutating func set(_ keyword: String, to value: String) {
        parameters.removeAll { $0.keyword == keyword }
        parameters.append((keyword, value))
    }

    /// The full keyword list handed to libpq, including session settings.
    var effectiveParameters: [(keyword: String, value: String)] {
        var result = parameters.filter { $0.keyword != "options" && $0.keyword != "client_encoding" }
        if let applicationName { result.append(("application_name", applicationName)) }
        if let connectTimeoutSeconds { result.append(("connect_timeout", String(connectTimeoutSeconds))) }
        result.append(("client_encoding", "UTF8"))
        var options = ["-c TimeZone=UTC", "-c DateStyle=ISO", "-c bytea_output=hex", "-c extra_float_digits=3"]
        if let statementTimeoutMilliseconds { options.append("-c statement_timeout=\(statementTimeoutMilliseconds)") }
        if let lockTimeoutMilliseconds { options.append("-c lock_timeout=\(lockTimeoutMilliseconds)") }
        // Options the caller gave (in the URL or as a keyword) come last, so they win.
        if let given = value(for: "options"), !given.isEmpty { options.append(given) }
        result.append(("options", options.joined(separator: " ")))
        return result
    }

    /// A description safe for logs: the password is never included.
    public var redactedDescription: String {
        parameters.filter { $0.keyword != "password" }.map { "\($0.keyword)=\($0.value)" }.joined(separator: " ")
    }
}
