import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import ResellerApp
import ServiceLifecycle
import Synchronization

/// One answer of the live server.
struct LiveResponse: Sendable {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let body: ByteBuffer
}

/// A client of the live server: HummingbirdTesting's `TestClient` on a connection of its own (a read that waits 20 s
/// fails), and the port it talks to.
struct LiveClient: Sendable {
    let port: Int
    let client: TestClient

    func execute(
        uri: String, method: HTTPRequest.Method, headers: HTTPFields = [:], body: ByteBuffer? = nil
    ) async throws -> LiveResponse {
        var headers = headers
        headers[.connection] = "keep-alive"
        let response = try await client.execute(
            .init(uri, method: method, authority: "localhost", headers: headers, body: body))
        return LiveResponse(status: response.status, headers: response.headers, body: response.body ?? ByteBuffer())
    }

    @discardableResult
    func execute<Value>(
        uri: String, method: HTTPRequest.Method, headers: HTTPFields = [:], body: ByteBuffer? = nil,
        _ check: (LiveResponse) async throws -> Value
    ) async throws -> Value {
        try await check(try await execute(uri: uri, method: method, headers: headers, body: body))
    }
}

/// Runs the service on a real socket for the length of a test.
///
/// Like HummingbirdTesting's `app.test(.live)`, except for one thing: that waits for the server's port with nothing
/// else in view, so an application that stops before it listens (a migration cut short, any step before the server
/// starts that throws) left the test waiting forever, and the whole run with it. Here that failure fails the test,
/// with the application's error.
enum LiveApp {
    /// The application ended before its server listened.
    struct StoppedBeforeListening: Error, CustomStringConvertible {
        let cause: (any Error)?
        var description: String {
            "the application stopped before it listened: \(cause.map { "\($0)" } ?? "it returned without an error")"
        }
    }

    /// Builds the application on 127.0.0.1 and a free port, runs `body` against it once it listens, then shuts it down
    /// gracefully and waits until it has stopped.
    static func run<Value: Sendable>(
        configuration: AppConfiguration, logger: Logger, _ body: (LiveClient) async throws -> Value
    ) async throws -> Value {
        var configuration = configuration
        configuration.host = "127.0.0.1"
        configuration.port = 0
        let listening = Listening()
        let app = try buildApplication(
            configuration: configuration, logger: logger, onServerRunning: { listening.bound($0) })
        let services = ServiceGroup(configuration: .init(services: [app], logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await services.run()
                    listening.stopped(nil)
                } catch {
                    listening.stopped(error)
                    throw error
                }
            }
            let port = try await listening.port()
            let client = TestClient(host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(20)))
            client.connect()
            let result: Result<Value, any Error>
            do {
                result = .success(try await body(LiveClient(port: port, client: client)))
            } catch {
                result = .failure(error)
            }
            try? await client.shutdown()
            await services.triggerGracefulShutdown()
            // What the application throws while it shuts down it has logged; the test's outcome is the body's.
            while !group.isEmpty { _ = try? await group.next() }
            return try result.get()
        }
    }

    /// The server's port once it listens, or why it never will.
    private final class Listening: Sendable {
        private enum State {
            case waiting([CheckedContinuation<Int, any Error>])
            case bound(Int)
            case stopped(StoppedBeforeListening)
        }

        private let state = Mutex(State.waiting([]))

        func port() async throws -> Int {
            try await withCheckedThrowingContinuation { continuation in
                let ready: Result<Int, any Error>? = state.withLock { state in
                    switch state {
                    case .waiting(let waiting):
                        state = .waiting(waiting + [continuation])
                        return nil
                    case .bound(let port): return .success(port)
                    case .stopped(let error): return .failure(error)
                    }
                }
                if let ready { continuation.resume(with: ready) }
            }
        }

        func bound(_ port: Int) { settle(.bound(port)) }

        /// The application ended; only matters when it never listened.
        func stopped(_ error: (any Error)?) { settle(.stopped(StoppedBeforeListening(cause: error))) }

        private func settle(_ outcome: State) {
            let waiting = state.withLock { state -> [CheckedContinuation<Int, any Error>] in
                guard case .waiting(let waiting) = state else { return [] }
                state = outcome
                return waiting
            }
            for continuation in waiting {
                switch outcome {
                case .bound(let port): continuation.resume(returning: port)
                case .stopped(let error): continuation.resume(throwing: error)
                case .waiting: break
                }
            }
        }
    }
}
