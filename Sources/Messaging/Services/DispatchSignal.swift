import Synchronization

/// Tells the dispatcher that outbox rows are due now, so it claims at once instead of at its next poll.
///
/// One instance is created by `buildApplication` and shared by the accept path (which calls ``wake()`` after the
/// transaction that wrote new outbox rows has committed) and the ``Dispatcher`` (which waits on it between polls).
/// Waking is cheap and never blocks; a wake with nobody waiting is remembered as a generation number, so a waiter that
/// looked at the outbox before the wake and starts waiting after it does not sleep through it. Without a dispatcher on
/// this instance a wake does nothing (another instance's dispatcher finds the rows at its next poll).
package final class DispatchSignal: Sendable {
    private enum Waiter {
        case waiting(CheckedContinuation<Void, Never>)
        /// Cancelled before its continuation was registered.
        case cancelled
    }

    private struct State {
        var generation: UInt64 = 0
        var nextWaiter: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
    }

    private let state = Mutex(State())

    package init() {}

    /// Wakes every waiter now.
    package func wake() {
        let waiting = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.generation &+= 1
            let waiting = state.waiters.values.compactMap { waiter -> CheckedContinuation<Void, Never>? in
                if case .waiting(let continuation) = waiter { return continuation }
                return nil
            }
            state.waiters.removeAll()
            return waiting
        }
        for continuation in waiting { continuation.resume() }
    }

    /// The number of wakes so far; pass it to ``wait(since:timeout:)`` after looking at the outbox.
    package var generation: UInt64 { state.withLock { $0.generation } }

    /// Returns after `timeout`, or sooner when woken after the wake count was `generation` (at once when it has moved
    /// on already), or when the task is cancelled.
    package func wait(since generation: UInt64, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: timeout) }
            group.addTask { await self.nextWake(after: generation) }
            await group.next()
            group.cancelAll()
        }
    }

    private func nextWake(after generation: UInt64) async {
        let id = state.withLock { state -> UInt64? in
            guard state.generation == generation else { return nil }
            state.nextWaiter &+= 1
            return state.nextWaiter
        }
        guard let id else { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    // Woken or cancelled between the check above and here.
                    if state.generation != generation { return true }
                    if case .cancelled = state.waiters[id] {
                        state.waiters[id] = nil
                        return true
                    }
                    state.waiters[id] = .waiting(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
                switch state.waiters[id] {
                case .waiting(let continuation):
                    state.waiters[id] = nil
                    return continuation
                case .cancelled:
                    return nil
                case nil:
                    // Not registered yet (or already woken): leave a mark so that registering resumes at once.
                    if state.generation == generation { state.waiters[id] = .cancelled }
                    return nil
                }
            }
            continuation?.resume()
        }
    }
}
