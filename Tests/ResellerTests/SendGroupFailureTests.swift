import Foundation
import Ledger
import Messaging
import PostgresLibpq
import ResellerCore
import SMSCore
import Synchronization
import Testing

/// A group of sends whose transaction fails: the sends that committed answer what they committed, and only those that
/// provably did not are retried (sends without an idempotency key, as on the 1601-compatible endpoint, would otherwise
/// be written twice).
@Suite(.serialized, .timeLimit(.minutes(5))) struct SendGroupFailureTests {
    struct InjectedFault: Error {}

    final class Counter: Sendable {
        let value = Atomic(0)
        /// Counts one; true the first time.
        func first() -> Bool { value.wrappingAdd(1, ordering: .relaxed).oldValue == 0 }
    }

    /// `count` submissions of one tenant, planned as the send path plans them; every other one carries a key.
    static func submissions(_ api: TenancyHarness, count: Int) async throws -> [SendSubmission] {
        let tenant = try await api.sendingTenant("Group", credits: "100").tenant
        let planner = SendPlanner(pool: api.pool)
        var submissions: [SendSubmission] = []
        for index in 0..<count {
            let request = SendRequest(
                sender: "Jansen", text: "Group \(index)", recipients: ["3161234\(String(format: "%04d", index))"],
                long: false)
            let plan = try #require(
                try await planner.plan(subAccountID: UUID(uuidString: tenant.subAccountID)!, request: request))
            try #require(plan.isAccepted, "\(plan.checks)")
            let key =
                index.isMultiple(of: 2)
                ? nil
                : Idempotency.Request(
                    scope: "sub_account:\(tenant.subAccountID)", key: UUID().uuidString, operation: "send",
                    hash: Data([UInt8(index)]))
            submissions.append(
                SendSubmission(
                    plan: plan, request: request, options: SendOptions(),
                    actor: AuditActor(actor: "test", role: .subAccount, requestID: nil), idempotency: key))
        }
        return submissions
    }

    /// The accepted batches of `results`; records an issue for any other result.
    static func acceptedBatches(_ results: [Result<SendOutcome, any Error>]) -> [UUID] {
        results.compactMap { result in
            guard case .success(.accepted(let batch, replayed: false)) = result else {
                Issue.record("not accepted: \(result)")
                return nil
            }
            return batch.batchID
        }
    }

    /// What `sendRowCounts` grew by since `before`.
    static func written(_ api: TenancyHarness, since before: [Int]) async throws -> [Int] {
        zip(try await api.sendRowCounts(), before).map { $0 - $1 }
    }

    static func batchIDs(_ api: TenancyHarness) async throws -> [UUID] {
        try await api.pool.query("SELECT id FROM message_batch ORDER BY id").decode(UUID.self)
    }

    @Test func aGroupWhoseCommitAnswerIsLostIsNotWrittenAgain() async throws {
        try await TenancyHarness.run { api in
            let submissions = try await Self.submissions(api, count: 4)
            let before = try await api.sendRowCounts()
            let failed = Counter()
            let service = SendService(pool: api.pool, retryDeadline: .seconds(3_600)) { point, group in
                // The group's COMMIT succeeds; its answer is lost once.
                if point == .afterCommit, group.count > 1, failed.first() {
                    throw InjectedFault()
                }
            }
            let results = await SendCoalescer.acceptGroup(submissions, service: service)
            #expect(failed.value.load(ordering: .relaxed) == 1)
            let accepted = Self.acceptedBatches(results)
            #expect(accepted.count == 4)
            // Each send written once, with the batch its answer names.
            #expect(try await Self.batchIDs(api) == accepted.sorted())
            #expect(try await Self.written(api, since: before) == [4, 4, 4, 8, 2])
        }
    }

    @Test func aSingleSendWhoseCommitAnswerIsLostAnswersWhatItCommitted() async throws {
        try await TenancyHarness.run { api in
            let submissions = try await Self.submissions(api, count: 1)
            let before = try await api.sendRowCounts()
            let service = SendService(pool: api.pool, retryDeadline: .seconds(3_600)) { point, _ in
                if point == .afterCommit { throw InjectedFault() }
            }
            let results = await SendCoalescer.acceptGroup(submissions, service: service)
            #expect(Self.acceptedBatches(results) == [submissions[0].batchID])
            #expect(try await Self.batchIDs(api) == [submissions[0].batchID])
            #expect(try await Self.written(api, since: before) == [1, 1, 1, 2, 0])
        }
    }

    @Test func aGroupRolledBackIsRetriedSendBySendAndEachWrittenOnce() async throws {
        try await TenancyHarness.run { api in
            let submissions = try await Self.submissions(api, count: 3)
            let before = try await api.sendRowCounts()
            let service = SendService(pool: api.pool, retryDeadline: .seconds(3_600)) { point, group in
                if point == .beforeCommit, group.count > 1 { throw InjectedFault() }
            }
            let results = await SendCoalescer.acceptGroup(submissions, service: service)
            let accepted = Self.acceptedBatches(results)
            #expect(accepted == submissions.map(\.batchID))
            #expect(try await Self.batchIDs(api) == accepted.sorted())
            #expect(try await Self.written(api, since: before) == [3, 3, 3, 6, 1])
        }
    }

    /// The retry of a lost commit is also safe one send at a time: a send of the retry whose answer is lost again
    /// answers what it committed.
    @Test func aRetriedSendWhoseCommitAnswerIsLostIsNotWrittenAgain() async throws {
        try await TenancyHarness.run { api in
            let submissions = try await Self.submissions(api, count: 3)
            let before = try await api.sendRowCounts()
            let service = SendService(pool: api.pool, retryDeadline: .seconds(3_600)) { point, group in
                if point == .beforeCommit, group.count > 1 { throw InjectedFault() }
                if point == .afterCommit, group.count == 1 { throw InjectedFault() }
            }
            let results = await SendCoalescer.acceptGroup(submissions, service: service)
            #expect(Self.acceptedBatches(results) == submissions.map(\.batchID))
            #expect(try await Self.written(api, since: before) == [3, 3, 3, 6, 1])
        }
    }
}
