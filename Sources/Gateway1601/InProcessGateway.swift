/// A 1601 gateway that runs inside this process, such as the simulator: the service that runs it can use it as its
/// upstream without knowing what it is.
public protocol InProcessGateway: Sendable {
    /// The name of the upstream connection made for it.
    var connectionName: String { get }
    /// The account to send with.
    var credentials: GatewayCredentials { get }
    /// Where it listens, once it runs.
    func baseURL() async throws -> String
    /// Lines to log loudly when it starts serving at `baseURL`: what it is, and that nothing leaves the machine.
    func banner(baseURL: String) -> [String]
}
