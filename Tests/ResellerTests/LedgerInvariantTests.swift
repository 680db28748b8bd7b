import CompatibleGateway
import Foundation
import Ledger
import Logging
import Messaging
import PostgresLibpq
import PostgresTestSupport
import ResellerApp
import ResellerCore
import SMSCore
import Synchronization
import Testing

/// The ledger under concurrency: many tasks mixing every kind of movement on shared accounts, then
/// the invariants that must hold whatever the interleaving.
@Suite(.timeLimit(.minutes(5))) struct LedgerInvariantTests {
    /// Resellers with sub-accounts, made with plain SQL (the triggers open their ledger accounts).
    struct World: Sendable {
        var resellers: [UUID]
        /// reseller id → its sub-accounts.
        var subAccounts: [UUID: [SubAccountRecord]]
        var wallets: [UUID: UUID]
        var revenue: [UUID: UUID]
        var subWallets: [UUID: UUID]
        /// reseller id → the platform's revenue account for it.
        var platformRevenue: [UUID: UUID]

        static func make(pool: PostgresPool, resellers count: Int, subAccountsEach: Int) async throws -> World {
            var world = World(
                resellers: [], subAccounts: [:], wallets: [:], revenue: [:], subWallets: [:], platformRevenue: [:])
            let repository = SubAccountRepository(pool: pool)
            for index in 0..<count {
                let reseller = try #require(
                    try await pool.query("INSERT INTO reseller (name) VALUES (\("Reseller \(index)")) RETURNING id")
                        .first(as: UUID.self))
                world.resellers.append(reseller)
                for sub in 0..<subAccountsEach {
                    let id = try #require(
                        try await pool.query(
                            """
                            INSERT INTO sub_account (reseller_id, name, username, password_salt, password_iterations, password_hash)
                            VALUES (\(reseller), \("Customer \(sub)"), \("r\(index)-c\(sub)-\(UUID().uuidString.prefix(6))"), \(Data([1])), 1, \(Data([1])))
                            RETURNING id
                            """
                        ).first(as: UUID.self))
                    let record = try #require(try await repository.find(id: id, scope: .everything))
                    world.subAccounts[reseller, default: []].append(record)
                    world.subWallets[id] = try #require(
                        try await LedgerRepository(pool: pool)
                            .account(kind: .subAccountWallet, resellerID: reseller, subAccountID: id)?.id)
                }
                world.wallets[reseller] = try #require(
                    try await LedgerRepository(pool: pool).account(
                        kind: .resellerWallet, resellerID: reseller, subAccountID: nil)?.id)
                world.revenue[reseller] = try #require(
                    try await LedgerRepository(pool: pool).account(
                        kind: .resellerRevenue, resellerID: reseller, subAccountID: nil)?.id)
                world.platformRevenue[reseller] = try #require(
                    try await LedgerRepository(pool: pool).account(
                        kind: .platformRevenue, resellerID: reseller, subAccountID: nil)?.id)
            }
            return world
        }
    }

    /// What the tasks did, to compare with the database afterwards.
    final class Tally: Sendable {
        struct Counts {
            var transfers = 0
            var topUpUnits: Int64 = 0
            var replays = 0
            var concurrentDuplicates = 0
            var refused = 0
            var resolutions = 0
            var doubleResolutionsRefused = 0
            var openReservations: [(retail: UUID, wholesale: UUID)] = []
            var topUpKeys: [(principal: Principal, key: String, reseller: UUID, amount: Money, transferID: UUID)] = []
        }
        let counts = Mutex(Counts())
    }

    static let actor = AuditActor(actor: "test", role: .system, requestID: nil)
    static let quiet: Logger = {
        var logger = Logger(label: "test.ledger")
        logger.logLevel = .warning
        return logger
    }()

    @Test func randomizedConcurrentMovementsKeepEveryInvariant() async throws {
        try await TestDatabase.withFreshDatabase { database in
            try await TestDatabase.withPool(database, maximumConnections: 24) { pool in
                try await Migrator(pool: pool, migrations: try BundledMigrations.load(), logger: Self.quiet).migrate()
                let world = try await World.make(pool: pool, resellers: 4, subAccountsEach: 6)
                let tally = Tally()
                let tasks = 32
                let operationsPerTask = 120
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for task in 0..<tasks {
                        group.addTask {
                            var random = SeededGenerator(seed: UInt64(task) &* 0x9E37_79B9_7F4A_7C15 &+ 1)
                            for _ in 0..<operationsPerTask {
                                try await Self.randomOperation(pool: pool, world: world, tally: tally, random: &random)
                            }
                        }
                    }
                    // Expiry runs alongside, as on a live instance.
                    group.addTask {
                        let maintenance = LedgerMaintenance(
                            pool: pool, interval: .milliseconds(20), retention: .seconds(7 * 86_400), logger: Self.quiet
                        )
                        for _ in 0..<40 {
                            await maintenance.runOnce(purge: false)
                            try await Task.sleep(for: .milliseconds(25))
                        }
                    }
                    try await group.waitForAll()
                }
                // Let every short timeout pass, then expire what is left of them.
                try await Task.sleep(for: .milliseconds(300))
                await LedgerMaintenance(
                    pool: pool, interval: .seconds(1), retention: .seconds(7 * 86_400), logger: Self.quiet
                ).runOnce(purge: false)

                let counts = tally.counts.withLock { $0 }
                print(
                    "ledger run: \(counts.transfers) transfers, \(counts.replays) replays, \(counts.concurrentDuplicates) concurrent duplicates, \(counts.refused) refusals, \(counts.resolutions) resolutions, \(counts.doubleResolutionsRefused) second resolutions refused"
                )
                // Loose floors (the interleaving decides how many movements find funds), so that a run
                // which exercised too little fails rather than passes quietly.
                #expect(
                    counts.transfers > 1_000 && counts.replays > 20 && counts.refused > 10 && counts.resolutions > 100
                        && counts.doubleResolutionsRefused > 0,
                    "every path should be exercised: \(counts.transfers) transfers, \(counts.replays) replays, \(counts.refused) refusals, \(counts.resolutions) resolutions, \(counts.doubleResolutionsRefused) double resolutions refused"
                )
                try await Self.checkInvariants(pool: pool)
                let transfers = try await pool.query("SELECT count(*) FROM ledger_transfer").first(as: Int.self)
                #expect(
                    transfers == counts.transfers
                        + (try await pool.query("SELECT count(*) FROM ledger_transfer WHERE code = 'expired'").first(
                            as: Int.self) ?? 0),
                    "exactly the successful operations (and expiries) wrote transfers; replays and refusals wrote none")
                let funded = try await pool.query(
                    "SELECT debits_posted FROM ledger_account WHERE kind = 'platform_funding'"
                ).first(as: Int64.self)
                #expect(funded == counts.topUpUnits, "platform funding equals the sum of first-time top-ups")
            }
        }
    }

    @Test func reservationsPostFullyOrPartlyVoidOrExpireExactlyOnce() async throws {
        try await TestDatabase.withFreshDatabase { database in
            try await TestDatabase.withPool(database) { pool in
                try await Migrator(pool: pool, migrations: try BundledMigrations.load(), logger: Self.quiet).migrate()
                let world = try await World.make(pool: pool, resellers: 1, subAccountsEach: 1)
                let reseller = world.resellers[0]
                let subAccount = world.subAccounts[reseller]![0]
                let ledger = LedgerRepository(pool: pool)
                _ = try await pool.withTransaction { connection in
                    try await LedgerService.transferCredits(
                        subAccount: subAccount, amount: Money(credits: 10), direction: .toSubAccount, note: nil,
                        by: Self.actor, on: connection)
                }
                let wallet = world.subWallets[subAccount.id]!
                let probe = Probe(ledger: ledger, wallet: wallet, revenue: world.revenue[reseller]!)
                // Reserve 4, post 2.5 of it: 2.5 is spent, 1.5 comes back.
                let first = try await probe.reserve(40_000)
                #expect(try await probe.balances() == (60_000, 40_000, 0))
                #expect(
                    try await probe.refusal([.post(first, amount: 40_001, code: "send_retail", by: "test")])
                        == .exceedsReservation)
                _ = try await ledger.apply([.post(first, amount: 25_000, code: "send_retail", by: "test")])
                #expect(try await probe.balances() == (75_000, 0, 25_000))
                #expect(try await probe.refusal([.void(first, code: "send_cancelled", by: "test")]) == .alreadyResolved)
                #expect(try await probe.refusal([.post(first, code: "send_retail", by: "test")]) == .alreadyResolved)
                // Reserve more than is left: refused, nothing reserved.
                #expect(
                    try await probe.refusal([
                        .pending(
                            from: wallet, to: world.revenue[reseller]!, amount: 75_001, code: "send_retail", by: "test")
                    ]) == .insufficientFunds)
                // Void gives it all back.
                let second = try await probe.reserve(75_000)
                #expect(try await probe.balances().available == 0)
                _ = try await ledger.apply([.void(second, code: "send_cancelled", by: "test")])
                #expect(try await probe.balances() == (75_000, 0, 25_000))
                // Linked: when the second leg fails, the first is not applied either.
                let retail = TransferRequest.pending(
                    from: wallet, to: world.revenue[reseller]!, amount: 10_000, code: "send_retail", by: "test")
                let wholesale = TransferRequest.pending(
                    from: world.wallets[reseller]!, to: world.platformRevenue[reseller]!, amount: 7_000,
                    code: "send_wholesale", by: "test")
                #expect(try await probe.refusal([retail, wholesale]) == .insufficientFunds)
                #expect(try await probe.balances() == (75_000, 0, 25_000))
                #expect(try await ledger.transfer(id: retail.id, scope: .everything) == nil)
                // An expired reservation cannot be posted; the upkeep voids it as expired.
                let third = try await probe.reserve(5_000, timeout: Date().addingTimeInterval(0.2))
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await probe.refusal([.post(third, code: "send_retail", by: "test")]) == .expired)
                await LedgerMaintenance(
                    pool: pool, interval: .seconds(1), retention: .seconds(7 * 86_400), logger: Self.quiet
                ).runOnce(purge: false)
                #expect(try await ledger.transfer(id: third, scope: .everything)?.state == .expired)
                #expect(try await probe.balances() == (75_000, 0, 25_000))
                // The same transfer id twice is refused: ids make retries safe.
                let once = TransferRequest.posted(
                    from: wallet, to: world.revenue[reseller]!, amount: 1, code: "test", by: "test")
                _ = try await ledger.apply([once])
                #expect(try await probe.refusal([once]) == .exists)
                #expect(
                    try await probe.refusal([.posted(from: wallet, to: UUID(), amount: 1, code: "test", by: "test")])
                        == .notFound)
                #expect(try await probe.refusal([.post(UUID(), code: "test", by: "test")]) == .notFound)
                #expect(
                    try await probe.refusal([.posted(from: wallet, to: wallet, amount: 1, code: "test", by: "test")])
                        == .malformed)
                // History is append-only.
                await #expect(throws: PostgresError.self) {
                    try await pool.query("UPDATE ledger_transfer SET amount = 0 WHERE id = \(first)")
                }
                await #expect(throws: PostgresError.self) {
                    try await pool.query("DELETE FROM ledger_transfer WHERE id = \(first)")
                }
                await #expect(throws: PostgresError.self) {
                    try await pool.query("UPDATE ledger_transfer SET state = 'pending' WHERE id = \(first)")
                }
                // A reservation's state moves only together with its resolution, inside the apply function.
                let open = try await probe.reserve(1)
                await #expect(throws: PostgresError.self) {
                    try await pool.query("UPDATE ledger_transfer SET state = 'posted' WHERE id = \(open)")
                }
                _ = try await ledger.apply([.void(open, code: "send_cancelled", by: "test")])

                // The set-based resolution (`ledger_resolve`): one call posts one reservation and voids another, with
                // the same balances as one by one; then the same refusals as `apply`, and nothing changes on refusal.
                let (posted, voided) = (try await probe.reserve(2_000), try await probe.reserve(3_000))
                #expect(try await probe.balances() == (69_999, 5_000, 25_001))
                func resolve(_ resolutions: [LedgerRepository.Resolution]) async throws -> LedgerFailure.Reason? {
                    do {
                        try await pool.withConnection {
                            try await LedgerRepository.resolve(resolutions, by: "test", on: $0)
                        }
                        return nil
                    } catch let failure as LedgerFailure {
                        return failure.reason
                    }
                }
                #expect(
                    try await resolve([
                        .init(pendingID: posted, post: true, code: "message_delivered"),
                        .init(pendingID: voided, post: false, code: "message_failed"),
                    ]) == nil)
                #expect(try await probe.balances() == (72_999, 0, 27_001))
                #expect(try await ledger.transfer(id: posted, scope: .everything)?.state == .posted)
                #expect(try await ledger.transfer(id: voided, scope: .everything)?.state == .voided)
                #expect(
                    try await pool.query(
                        "SELECT array_agg(kind ORDER BY seq) FROM ledger_transfer WHERE pending_id IN (\(posted), \(voided))"
                    ).first(as: [String].self) == ["post_pending", "void_pending"])
                #expect(try await resolve([.init(pendingID: posted, post: false, code: "x")]) == .alreadyResolved)
                let twice = try await probe.reserve(1_000)
                #expect(
                    try await resolve([
                        .init(pendingID: twice, post: true, code: "x"), .init(pendingID: twice, post: false, code: "x"),
                    ]) == .alreadyResolved)
                #expect(try await resolve([.init(pendingID: UUID(), post: true, code: "x")]) == .notFound)
                #expect(try await resolve([.init(pendingID: once.id, post: true, code: "x")]) == .notFound)
                let late = try await probe.reserve(500, timeout: Date().addingTimeInterval(0.1))
                try await Task.sleep(for: .milliseconds(200))
                #expect(try await resolve([.init(pendingID: late, post: true, code: "x")]) == .expired)
                #expect(try await probe.balances() == (71_499, 1_500, 27_001), "refusals changed nothing")
                #expect(
                    try await resolve([.init(pendingID: late, post: false, code: "x")]) == nil, "voiding is allowed")
                #expect(try await resolve([.init(pendingID: twice, post: false, code: "x")]) == nil)
                #expect(try await probe.balances() == (72_999, 0, 27_001))
                try await Self.checkInvariants(pool: pool)
            }
        }
    }

    /// One wallet's view for the two-phase test.
    struct Probe {
        let ledger: LedgerRepository
        let wallet: UUID
        let revenue: UUID

        func balances() async throws -> (available: Int64, pending: Int64, posted: Int64) {
            let account = try #require(try await ledger.account(id: wallet, scope: .everything))
            return (account.available, account.debitsPending, account.debitsPosted)
        }

        func reserve(_ units: Int64, timeout: Date? = nil) async throws -> UUID {
            let request = TransferRequest.pending(
                from: wallet, to: revenue, amount: units, timeoutAt: timeout, code: "send_retail", by: "test")
            return try await ledger.apply([request])[0].id
        }

        func refusal(_ requests: [TransferRequest]) async throws -> LedgerFailure.Reason? {
            try await LedgerInvariantTests.refusal(ledger, requests)
        }
    }

    /// Why the ledger refused `requests`, or nil when it applied them.
    static func refusal(_ ledger: LedgerRepository, _ requests: [TransferRequest]) async throws -> LedgerFailure.Reason?
    {
        do {
            _ = try await ledger.apply(requests)
            return nil
        } catch let failure as LedgerFailure {
            return failure.reason
        }
    }

    @Test func theInvariantChecksCatchACorruptedBalance() async throws {
        try await TestDatabase.withFreshDatabase { database in
            try await TestDatabase.withPool(database) { pool in
                try await Migrator(pool: pool, migrations: try BundledMigrations.load(), logger: Self.quiet).migrate()
                let world = try await World.make(pool: pool, resellers: 1, subAccountsEach: 1)
                let reseller = world.resellers[0]
                _ = try await pool.withTransaction { connection in
                    try await LedgerService.topUp(
                        resellerID: reseller, amount: Money(credits: 5), paymentReference: "p", note: nil,
                        by: Self.actor, on: connection)
                }
                try await Self.checkInvariants(pool: pool)
                // A balance changed behind the ledger's back must be noticed.
                try await pool.query(
                    "UPDATE ledger_account SET credits_posted = credits_posted + 1 WHERE id = \(world.wallets[reseller]!)"
                )
                let broken = try await LedgerVerifier(pool: pool).verify().filter { !$0.holds }
                #expect(broken.map(\.name) == ["ledger_sums_to_zero", "balances_equal_transfers"], "\(broken)")
                #expect(broken.last?.sample == [world.wallets[reseller]!.apiString])
            }
        }
    }

    @Test func theMessageMoneyChecksCatchBrokenMessages() async throws {
        try await TestDatabase.withFreshDatabase { database in
            try await TestDatabase.withPool(database) { pool in
                try await Migrator(pool: pool, migrations: try BundledMigrations.load(), logger: Self.quiet).migrate()
                let tenant = try await MessageFixtures.tenant(pool: pool)
                let ids = try await MessageFixtures.accept(
                    pool: pool, tenant: tenant, recipients: ["31611111111", "31622222222", "31633333333"])
                let verifier = LedgerVerifier(
                    pool: pool, checks: LedgerVerifier.ledgerChecks + MessageMoneyChecks.checks)
                #expect(try await verifier.verify().allSatisfy(\.holds))
                // Failed without releasing its money; queued without an outbox row (lost); posted and charged late.
                try await pool.query("UPDATE message SET status = 'failed' WHERE id = \(ids[0])")
                try await pool.query("DELETE FROM message_outbox WHERE message_id = \(ids[1])")
                try await pool.withTransaction { connection in
                    let reservation = try #require(
                        try await connection.query(
                            "SELECT retail_reservation_id FROM message WHERE id = \(ids[2])"
                        ).first(as: UUID.self))
                    let row = try #require(
                        try await connection.query(
                            "SELECT debit_account_id, credit_account_id, amount FROM ledger_transfer WHERE id = \(reservation)"
                        ).first(as: (UUID, UUID, Int64).self))
                    _ = try await LedgerRepository.apply(
                        [
                            .post(reservation, code: "message_delivered", by: "test"),
                            .posted(
                                from: row.0, to: row.1, amount: row.2, code: "late_delivery", by: "test",
                                resellerID: tenant.resellerID, subAccountID: tenant.subAccountID,
                                reference: ids[2].apiString),
                        ], on: connection)
                }
                let broken = try await verifier.verify().filter { !$0.holds }
                #expect(
                    broken.map(\.name) == [
                        "no_double_charge", "final_messages_hold_nothing", "unsent_messages_are_queued",
                    ],
                    "\(broken)")
                // The failed message also kept its outbox row.
                #expect(
                    broken.map { Set($0.sample) } == [
                        [ids[2].apiString], [ids[0].apiString], [ids[0].apiString, ids[1].apiString],
                    ])
                // A final message whose row a dispatcher still holds under a live lease (the instance was killed after
                // its call; the report came through another): the dispatcher's to clear, an offender only once the
                // lease has run out.
                let held = try #require(
                    try await MessageFixtures.accept(pool: pool, tenant: tenant, recipients: ["31644444444"]).first)
                try await pool.query(
                    "UPDATE message_outbox SET leased_by = 'killed', due_at = now() + interval '1 minute' WHERE message_id = \(held)"
                )
                try await pool.query("UPDATE message SET status = 'failed' WHERE id = \(held)")
                let unsent = { @Sendable () async throws -> Set<String> in
                    Set(try await verifier.verify().first { $0.name == "unsent_messages_are_queued" }?.sample ?? [])
                }
                #expect(try await unsent() == [ids[0].apiString, ids[1].apiString])
                try await pool.query(
                    "UPDATE message_outbox SET due_at = now() - interval '1 second' WHERE message_id = \(held)")
                #expect(try await unsent() == [ids[0].apiString, ids[1].apiString, held.apiString])
            }
        }
    }

    /// One random movement; refusals the ledger must make are counted, anything else fails the test.
    static func randomOperation(pool: PostgresPool, world: World, tally: Tally, random: inout SeededGenerator)
        async throws
    {
        let reseller = world.resellers.randomElement(using: &random)!
        let subAccount = world.subAccounts[reseller]!.randomElement(using: &random)!
        let amount = Money(minorUnits: Int64.random(in: 1...50_000, using: &random))
        let principal = Principal(role: .admin, resellerID: nil, subAccountID: nil, keyID: UUID())
        switch Int.random(in: 0..<100, using: &random) {
        case 0..<12:  // a top-up, sometimes a replay of an earlier one
            let earlier = tally.counts.withLock { $0.topUpKeys.isEmpty ? nil : $0.topUpKeys.randomElement() }
            if let earlier, Bool.random(using: &random) {
                let request = try Idempotency.request(
                    principal: earlier.principal, key: earlier.key, operation: "topUp:\(earlier.reseller)",
                    body: earlier.amount)
                do {
                    let (transferID, replayed) = try await Idempotency(pool: pool).run(request, status: 201) {
                        connection in
                        try await LedgerService.topUp(
                            resellerID: earlier.reseller, amount: earlier.amount, paymentReference: "r", note: nil,
                            by: actor, on: connection
                        ).transfer.id
                    }
                    #expect(replayed && transferID == earlier.transferID, "a replay answers the first response")
                    tally.counts.withLock { $0.replays += 1 }
                } catch let problem as DomainError where problem.code == "idempotency_in_progress" {
                    // Another task is replaying the same key at this moment.
                    tally.counts.withLock { $0.concurrentDuplicates += 1 }
                }
            } else {
                let key = UUID().uuidString
                let topUp = Money(minorUnits: amount.minorUnits * 20)
                let request = try Idempotency.request(
                    principal: principal, key: key, operation: "topUp:\(reseller)", body: topUp)
                let (transferID, replayed) = try await Idempotency(pool: pool).run(request, status: 201) { connection in
                    try await LedgerService.topUp(
                        resellerID: reseller, amount: topUp, paymentReference: "pay-\(key)", note: nil, by: actor,
                        on: connection
                    ).transfer.id
                }
                #expect(!replayed)
                tally.counts.withLock {
                    $0.transfers += 1
                    $0.topUpUnits += topUp.minorUnits
                    $0.topUpKeys.append((principal, key, reseller, topUp, transferID))
                }
            }
        case 12..<30:  // credits to or from a sub-account
            let direction: LedgerService.CreditDirection = Bool.random(using: &random) ? .toSubAccount : .fromSubAccount
            try await counted(tally) {
                _ = try await pool.withTransaction { connection in
                    try await LedgerService.transferCredits(
                        subAccount: subAccount,
                        amount: direction == .toSubAccount ? Money(minorUnits: amount.minorUnits * 8) : amount,
                        direction: direction, note: nil, by: actor, on: connection)
                }
            }
        case 30..<60:  // a send's linked reservations: retail on the sub-account, wholesale on the reseller
            let timeout: Date? =
                switch Int.random(in: 0..<4, using: &random) {
                case 0: Date().addingTimeInterval(0.05)
                case 1: Date().addingTimeInterval(3600)
                default: nil
                }
            let retail = TransferRequest.pending(
                from: world.subWallets[subAccount.id]!, to: world.revenue[reseller]!, amount: amount.minorUnits,
                timeoutAt: timeout,
                code: "send_retail", by: "test", resellerID: reseller, subAccountID: subAccount.id)
            let wholesale = TransferRequest.pending(
                from: world.wallets[reseller]!, to: world.platformRevenue[reseller]!,
                amount: amount.minorUnits * 7 / 10, timeoutAt: timeout,
                code: "send_wholesale", by: "test", resellerID: reseller)
            try await counted(tally, transfers: 2) {
                _ = try await LedgerRepository(pool: pool).apply([retail, wholesale])
                tally.counts.withLock { $0.openReservations.append((retail.id, wholesale.id)) }
            }
        case 60..<90:  // resolve a reservation pair: post in full, post part, or void; sometimes twice at once
            guard let pair = tally.counts.withLock({ $0.openReservations.randomElement() }) else { return }
            let choice = Int.random(in: 0..<3, using: &random)
            let twice = Int.random(in: 0..<5, using: &random) == 0
            let attempts = twice ? 2 : 1
            // Whole postings and voids go through the set-based `ledger_resolve` half of the time (as delivery
            // reports settle), partial postings always through `ledger_apply_transfers`.
            let setBased = choice != 1 && Bool.random(using: &random)
            let won = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<attempts {
                    group.addTask {
                        if setBased {
                            let code = choice == 0 ? "send_retail" : "send_cancelled"
                            do {
                                try await pool.withConnection { connection in
                                    try await LedgerRepository.resolve(
                                        [
                                            .init(pendingID: pair.retail, post: choice == 0, code: code),
                                            .init(pendingID: pair.wholesale, post: choice == 0, code: code),
                                        ], by: "test", on: connection)
                                }
                                return true
                            } catch let failure as LedgerFailure
                                where failure.reason == .alreadyResolved || failure.reason == .expired
                            {
                                tally.counts.withLock { $0.doubleResolutionsRefused += 1 }
                                return false
                            }
                        }
                        let requests: [TransferRequest] =
                            switch choice {
                            case 0:
                                [
                                    .post(pair.retail, code: "send_retail", by: "test"),
                                    .post(pair.wholesale, code: "send_wholesale", by: "test"),
                                ]
                            case 1:
                                [
                                    .post(pair.retail, amount: 1, code: "send_retail", by: "test"),
                                    .post(pair.wholesale, amount: 0, code: "send_wholesale", by: "test"),
                                ]
                            default:
                                [
                                    .void(pair.retail, code: "send_cancelled", by: "test"),
                                    .void(pair.wholesale, code: "send_cancelled", by: "test"),
                                ]
                            }
                        do {
                            _ = try await LedgerRepository(pool: pool).apply(requests)
                            return true
                        } catch let failure as LedgerFailure
                            where failure.reason == .alreadyResolved || failure.reason == .expired
                        {
                            tally.counts.withLock { $0.doubleResolutionsRefused += 1 }
                            return false
                        }
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(won <= 1, "a reservation resolves at most once")
            tally.counts.withLock {
                $0.transfers += 2 * won
                $0.resolutions += won
                if won == 1 { $0.openReservations.removeAll { $0.retail == pair.retail } }
            }
        case 90..<95:  // a postpaid line on a sub-account, or back to prepaid
            let limit = Money(minorUnits: [0, 10_000, 500_000].randomElement(using: &random)!)
            let account = try #require(
                try await LedgerRepository(pool: pool).account(id: world.subWallets[subAccount.id]!, scope: .everything)
            )
            do {
                _ = try await pool.withTransaction { connection in
                    try await LedgerService.setCreditLimit(account: account, limit: limit, by: actor, on: connection)
                }
            } catch let problem as DomainError where problem.code == "credit_limit_too_low" {
                tally.counts.withLock { $0.refused += 1 }
            }
        default:  // a reseller correction, which may be refused for want of funds
            try await counted(tally) {
                _ = try await pool.withTransaction { connection in
                    try await LedgerService.adjust(
                        resellerID: reseller, amount: -amount, reason: "correction", by: actor, on: connection)
                }
            }
        }
    }

    /// Runs a movement of `transfers` transfers; a refusal for want of funds is counted, not an error.
    static func counted(_ tally: Tally, transfers: Int = 1, _ body: () async throws -> Void) async throws {
        do {
            try await body()
            tally.counts.withLock { $0.transfers += transfers }
        } catch let problem as DomainError where problem.code == "insufficient_funds" {
            #expect(problem.gatewayCode?.rawValue == 108)
            tally.counts.withLock { $0.refused += 1 }
        } catch let failure as LedgerFailure where failure.reason == .insufficientFunds {
            tally.counts.withLock { $0.refused += 1 }
        }
    }

    /// The ledger's invariants, checked on the database as a whole (the checks of `sms-reseller verify-ledger`).
    static func checkInvariants(pool: PostgresPool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        for result in try await LedgerVerifier(pool: pool).verify() {
            #expect(
                result.holds, "\(result.name): \(result.rule); \(result.count) offenders: \(result.sample)",
                sourceLocation: sourceLocation)
        }
    }
}

/// A small deterministic generator (SplitMix64), so a failing run can be repeated.
struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
