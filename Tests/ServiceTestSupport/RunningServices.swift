import Logging
import ServiceLifecycle

/// Runs `services` while `body` runs, then shuts them down gracefully and waits for them.
///
/// Stopped by graceful shutdown, never by cancellation: cancelling a NIO server while it is accepting a connection
/// traps in NIOAsyncWriter (apple/swift-nio#2813).
public func withRunning<Result>(
    _ services: [any Service], logger: Logger = Logger(label: "test-services") { _ in SwiftLogNoOpLogHandler() },
    _ body: () async throws -> Result
) async throws -> Result {
    let group = ServiceGroup(configuration: .init(services: services, logger: logger))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        do {
            let result = try await body()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
    }
}
