import Synchronization

/// Group commit: items submitted concurrently under one key are written together, one `write` call per group.
///
/// While fewer than `maximumInFlight` groups of a key are being written, a submitted item starts a group at once (so a
/// quiet service adds no wait); otherwise it waits for the next group of its key, which takes everything that arrived
/// meanwhile (at most `maximumGroup`). Items of different keys never wait for each other. `write` answers one result
/// per item, in order; each submitter gets its own.
package final class GroupCommitter<Key: Hashable & Sendable, Item: Sendable, Outcome: Sendable>: Sendable {
    package typealias Write = @Sendable ([Item]) async -> [Result<Outcome, any Error>]

    private struct Waiting {
        var item: Item
        var continuation: CheckedContinuation<Outcome, any Error>
    }

    private struct Queue {
        var waiting: [Waiting] = []
        var inFlight = 0
    }

    private let maximumInFlight: Int
    private let maximumGroup: Int
    private let write: Write
    private let queues = Mutex<[Key: Queue]>([:])

    package init(maximumInFlight: Int = 1, maximumGroup: Int = 64, write: @escaping Write) {
        self.maximumInFlight = max(1, maximumInFlight)
        self.maximumGroup = max(1, maximumGroup)
        self.write = write
    }

    package func submit(_ item: Item, key: Key) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
            let group = queues.withLock { queues in
                queues[key, default: Queue()].waiting.append(Waiting(item: item, continuation: continuation))
                return Self.nextGroup(
                    of: key, in: &queues, maximumInFlight: maximumInFlight, maximumGroup: maximumGroup)
            }
            if let group { start(group, of: key) }
        }
    }

    /// Takes the next group off `key`'s queue when another may be written now.
    private static func nextGroup(of key: Key, in queues: inout [Key: Queue], maximumInFlight: Int, maximumGroup: Int)
        -> [Waiting]?
    {
        guard var queue = queues[key], !queue.waiting.isEmpty, queue.inFlight < maximumInFlight else { return nil }
        let group = Array(queue.waiting.prefix(maximumGroup))
        queue.waiting.removeFirst(group.count)
        queue.inFlight += 1
        queues[key] = queue
        return group
    }

    private func start(_ group: [Waiting], of key: Key) {
        Task {
            let results = await write(group.map(\.item))
            for (index, waiting) in group.enumerated() {
                waiting.continuation.resume(
                    with: index < results.count ? results[index] : .failure(GroupCommitError.noResult))
            }
            let next = queues.withLock { queues in
                queues[key]?.inFlight -= 1
                let next = Self.nextGroup(
                    of: key, in: &queues, maximumInFlight: maximumInFlight, maximumGroup: maximumGroup)
                if let queue = queues[key], queue.inFlight == 0, queue.waiting.isEmpty { queues[key] = nil }
                return next
            }
            if let next { start(next, of: key) }
        }
    }
}

/// A `write` that answered fewer results than it was given items (a bug in the caller).
package struct GroupCommitError: Error, CustomStringConvertible {
    package static let noResult = GroupCommitError()
    package var description: String { "the group write gave no result for this item" }
}
