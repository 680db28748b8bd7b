import Foundation
import Synchronization

/// Group commit for sends: concurrent sends of one reseller share transactions.
///
/// Every send of a reseller locks the reseller's wallet and revenue rows (the wholesale leg), and every send of a
/// sub-account its wallet, so one transaction per send would make them queue one commit at a time. Instead a send
/// joins the reseller's queue; while fewer than `maximumInFlight` groups of that reseller are being written, the
/// queue is written at once as one group (so an idle service adds no wait), otherwise the send waits for the next
/// group, which takes everything that arrived meanwhile (at most `maximumGroup`). Sends of different resellers never
/// wait for each other. A group is decided send by send and, if its transaction fails, retried send by send
/// (`SendService`), so a send that fails inside a group fails alone.
final class SendCoalescer: Sendable {
    private struct Waiting {
        var submission: SendSubmission
        var continuation: CheckedContinuation<SendOutcome, any Error>
    }

    private struct Queue {
        var waiting: [Waiting] = []
        var inFlight = 0
    }

    private let service: SendService
    private let maximumInFlight: Int
    private let maximumGroup: Int
    private let queues = Mutex<[UUID: Queue]>([:])

    init(service: SendService, maximumInFlight: Int = 1, maximumGroup: Int = 64) {
        self.service = service
        self.maximumInFlight = max(1, maximumInFlight)
        self.maximumGroup = max(1, maximumGroup)
    }

    /// Accepts one send (already planned and not refused by its plan) in a shared transaction.
    func accept(_ submission: SendSubmission) async throws -> SendOutcome {
        let reseller = submission.plan.resellerID
        return try await withCheckedThrowingContinuation { continuation in
            let group = queues.withLock { queues in
                queues[reseller, default: Queue()].waiting.append(Waiting(submission: submission, continuation: continuation))
                return Self.nextGroup(of: reseller, in: &queues, maximumInFlight: maximumInFlight, maximumGroup: maximumGroup)
            }
            if let group { start(group, of: reseller) }
        }
    }

    /// Takes the next group off `reseller`'s queue when another may be written now.
    private static func nextGroup(of reseller: UUID, in queues: inout [UUID: Queue], maximumInFlight: Int, maximumGroup: Int) -> [Waiting]? {
        guard var queue = queues[reseller], !queue.waiting.isEmpty, queue.inFlight < maximumInFlight else { return nil }
        let group = Array(queue.waiting.prefix(maximumGroup))
        queue.waiting.removeFirst(group.count)
        queue.inFlight += 1
        queues[reseller] = queue
        return group
    }

    private func start(_ group: [Waiting], of reseller: UUID) {
        Task {
            await write(group)
            let next = queues.withLock { queues in
                queues[reseller]?.inFlight -= 1
                let next = Self.nextGroup(of: reseller, in: &queues, maximumInFlight: maximumInFlight, maximumGroup: maximumGroup)
                if let queue = queues[reseller], queue.inFlight == 0, queue.waiting.isEmpty { queues[reseller] = nil }
                return next
            }
            if let next { start(next, of: reseller) }
        }
    }

    private func write(_ group: [Waiting]) async {
        let submissions = group.map(\.submission)
        do {
            let outcomes = try await service.accept(submissions)
            for (waiting, outcome) in zip(group, outcomes) { waiting.continuation.resume(returning: outcome) }
        } catch where group.count > 1 {
            for (waiting, result) in zip(group, await service.acceptOneByOne(submissions)) { waiting.continuation.resume(with: result) }
        } catch {
            group[0].continuation.resume(throwing: error)
        }
    }
}
