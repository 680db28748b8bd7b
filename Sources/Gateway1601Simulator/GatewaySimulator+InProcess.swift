import Gateway1601
import Logging

extension GatewaySimulator: InProcessGateway {
    /// The simulator with its sandbox account on 127.0.0.1 at `port` (0: any free port): what `sms-reseller serve`
    /// runs when no upstream is configured.
    public static func sandbox(port: Int = 0, logger: Logger) -> GatewaySimulator {
        var configuration = SimulatorConfiguration.sandbox
        configuration.host = "127.0.0.1"
        configuration.port = port
        return GatewaySimulator(configuration: configuration, logger: logger)
    }

    public var connectionName: String { "built-in simulator" }

    /// The first configured account (the sandbox account of `sandbox(port:logger:)`).
    public var credentials: GatewayCredentials {
        let account = configuration.accounts.first ?? SimulatorConfiguration.sandboxAccount
        return GatewayCredentials(username: account.username, password: account.password)
    }

    public func banner(baseURL: String) -> [String] {
        [
            "NO UPSTREAM CONFIGURED: using the BUILT-IN 1601 SIMULATOR at \(baseURL)",
            "Messages are NOT delivered to real phones. Set UPSTREAM_1601_URL for the real gateway.",
            "Sandbox account: \(credentials.username) / \(credentials.password). Control API: \(baseURL)/_sim",
        ]
    }
}
