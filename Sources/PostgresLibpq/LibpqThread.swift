import Foundation
import Synchronization

/// The OS thread that runs one connection's blocking libpq calls, one after another.
///
/// Each connection owns its thread, so a `PGconn` is only ever touched by that thread, no call
/// blocks Swift's cooperative executor, and connections never contend for a shared work queue.
final class LibpqThread: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopping = false

    init(name: String) {
        let thread = Thread { [self] in loop() }
        thread.name = name
        thread.start()
    }

    /// Runs `body` on the thread and returns its result to the awaiting task.
    func run<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            submit { continuation.resume(with: Swift.Result(catching: body)) }
        }
    }

    /// Queues `job`; jobs run in submission order.
    func submit(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        let accepted = !stopping
        if accepted {
            jobs.append(job)
            condition.signal()
        }
        condition.unlock()
        // After stop the thread is gone; a late job (a cleanup) runs right here instead.
        if !accepted { job() }
    }

    /// Lets the thread finish the jobs already queued, then end.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch { job() }
        }
    }
}
