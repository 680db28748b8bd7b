import Foundation
import HTTPTypes
import Ledger
import PostgresLibpq
import ResellerApp
import ResellerCore
import Testing

/// The ledger through the REST API: funding a reseller, funding its customers, idempotency,
/// credit limits, statements and low-balance events.
@Suite(.timeLimit(.minutes(3))) struct LedgerAPITests {
    static func key(_ value: String = UUID().uuidString) -> HTTPFields {
        var fields = HTTPFields()
        fields[HTTPField.Name("Idempotency-Key")!] = value
        return fields
    }

    static func wallet(_ api: TenancyHarness, key: String, kind: String, subAccountID: String? = nil) async throws
        -> [String: Any]
    {
        let path = "/accounts?kind=\(kind)" + (subAccountID.map { "&subAccountId=\($0)" } ?? "")
        let reply = try await api.call(.get, path, key: key)
        try #require(reply.status == .ok && reply.items.count == 1, "\(path): \(reply.json)")
        return reply.items[0]
    }

    @Test func aPlatformFundsAResellerWhichFundsItsCustomer() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Acme")
            let topUpKey = Self.key()
            let topUp = try await api.call(
                .post, "/resellers/\(tenant.resellerID)/top-ups", key: api.adminKey,
                body: ["amount": "100", "paymentReference": "INV-2026-001", "note": "first payment"], headers: topUpKey)
            #expect(topUp.status == .created, "\(topUp.json)")
            #expect(topUp.headers[HTTPField.Name("Idempotent-Replayed")!] == "false")
            let transfer = try #require(topUp["transfer"] as? [String: Any])
            #expect(transfer["amount"] as? String == "100.0000" && transfer["code"] as? String == "top_up")
            #expect(transfer["reference"] as? String == "INV-2026-001")
            #expect((topUp["account"] as? [String: Any])?["available"] as? String == "100.0000")

            // A retry with the same key answers the same response and moves nothing.
            let replay = try await api.call(
                .post, "/resellers/\(tenant.resellerID)/top-ups", key: api.adminKey,
                body: ["note": "first payment", "paymentReference": "INV-2026-001", "amount": "100.0000"],
                headers: topUpKey)
            #expect(replay.status == .created)
            #expect(replay.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            #expect((replay["transfer"] as? [String: Any])?["id"] as? String == transfer["id"] as? String)
            let reused = try await api.call(
                .post, "/resellers/\(tenant.resellerID)/top-ups", key: api.adminKey,
                body: ["amount": "101", "paymentReference": "INV-2026-001"], headers: topUpKey)
            #expect(reused.status == .unprocessableContent && reused.string("code") == "idempotency_key_reused")
            let withoutKey = try await api.call(
                .post, "/resellers/\(tenant.resellerID)/top-ups", key: api.adminKey,
                body: ["amount": "1", "paymentReference": "x"])
            #expect(withoutKey.status == .badRequest, "the Idempotency-Key header is required: \(withoutKey.json)")
            let wallet = try await Self.wallet(api, key: tenant.resellerKey, kind: "reseller_wallet")
            #expect(wallet["balance"] as? String == "100.0000" && wallet["available"] as? String == "100.0000")

            // Only the admin funds resellers.
            let selfFunded = try await api.call(
                .post, "/resellers/\(tenant.resellerID)/top-ups", key: tenant.resellerKey,
                body: ["amount": "5", "paymentReference": "x"],
                headers: Self.key())
            #expect(selfFunded.status == .forbidden)

            // The reseller funds its customer, and takes part back; never more than the customer has.
            let give = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/credit-transfers", key: tenant.resellerKey,
                body: ["amount": "30", "direction": "to_sub_account"], headers: Self.key())
            #expect(give.status == .created, "\(give.json)")
            #expect((give["account"] as? [String: Any])?["available"] as? String == "30.0000")
            let tooMuch = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/credit-transfers", key: tenant.resellerKey,
                body: ["amount": "30.0001", "direction": "from_sub_account"], headers: Self.key())
            #expect(tooMuch.status == .conflict && tooMuch.string("code") == "insufficient_funds")
            #expect(tooMuch["gatewayCode"] as? Int == 108)
            let takeBack = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/credit-transfers", key: tenant.resellerKey,
                body: ["amount": "10.5", "direction": "from_sub_account", "note": "unused"], headers: Self.key())
            #expect(takeBack.status == .created)
            let bySubAccount = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/credit-transfers", key: tenant.subAccountKey,
                body: ["amount": "1", "direction": "to_sub_account"], headers: Self.key())
            #expect(bySubAccount.status == .forbidden)

            // The customer sees its own wallet, and only that.
            let mine = try await api.call(.get, "/accounts", key: tenant.subAccountKey)
            #expect(mine.items.count == 1 && mine.items[0]["kind"] as? String == "sub_account_wallet")
            #expect(mine.items[0]["available"] as? String == "19.5000")
            let accountID = try #require(mine.items[0]["id"] as? String)

            // Its statement explains the balance entry by entry.
            let from = "2000-01-01T00:00:00Z"
            let to = "2100-01-01T00:00:00Z"
            let statement = try await api.call(
                .get, "/accounts/\(accountID)/statement?from=\(from)&to=\(to)", key: tenant.subAccountKey)
            #expect(statement.status == .ok, "\(statement.json)")
            #expect(statement.string("openingBalance") == "0.0000" && statement.string("closingBalance") == "19.5000")
            #expect(statement["provisional"] as? Bool == true, "a period that has not ended may still change")
            let closed = try await api.call(
                .get, "/accounts/\(accountID)/statement?from=\(from)&to=2020-01-01T00:00:00Z", key: tenant.subAccountKey
            )
            #expect(closed["provisional"] as? Bool == false && closed.string("closingBalance") == "0.0000")
            #expect(statement.string("totalCredits") == "30.0000" && statement.string("totalDebits") == "10.5000")
            let lines = try #require(statement["lines"] as? [[String: Any]])
            #expect(lines.map { $0["balance"] as? String } == ["30.0000", "19.5000"])
            #expect(lines.map { $0["code"] as? String } == ["credit_transfer", "credit_return"])
            // A period that starts after the first movement opens with its balance; paging keeps the running balance.
            let secondAt = try #require(lines[1]["at"] as? String)
            let later = try await api.call(
                .get, "/accounts/\(accountID)/statement?from=\(secondAt)&to=\(to)", key: tenant.subAccountKey)
            #expect(later.string("openingBalance") == "30.0000" && later.string("closingBalance") == "19.5000")
            let firstPage = try await api.call(
                .get, "/accounts/\(accountID)/statement?from=\(from)&to=\(to)&limit=1", key: tenant.resellerKey)
            let cursor = try #require(firstPage.string("nextCursor"))
            let secondPage = try await api.call(
                .get, "/accounts/\(accountID)/statement?from=\(from)&to=\(to)&limit=1&cursor=\(cursor)",
                key: tenant.resellerKey)
            #expect((secondPage["lines"] as? [[String: Any]])?.first?["balance"] as? String == "19.5000")
            #expect(secondPage.string("nextCursor") == nil)

            // Transfers list and single transfer, in scope.
            let transfers = try await api.call(.get, "/accounts/\(accountID)/transfers", key: tenant.subAccountKey)
            #expect(transfers.items.count == 2)
            let topUpID = try #require(transfer["id"] as? String)
            #expect(try await api.call(.get, "/transfers/\(topUpID)", key: tenant.resellerKey).status == .ok)
            #expect(try await api.call(.get, "/transfers/\(topUpID)", key: tenant.subAccountKey).status == .notFound)

            // One audit row per movement.
            #expect(try await api.auditCount(action: "ledger.top_up") == 1)
            #expect(try await api.auditCount(action: "ledger.credit_transfer") == 1)
            #expect(try await api.auditCount(action: "ledger.credit_return") == 1)
        }
    }

    @Test(arguments: [
        ("abc", "must be a decimal number"), ("1.00001", "at most 4 decimal places"), ("-5", "must not be negative"),
        ("1000000000.0001", "at most 1000000000 credits"), ("0", "must not be zero"),
        ("1e3", "must be a decimal number"),
        ("", "must be a decimal number"), ("12,50", "must be a decimal number"),
    ])
    func aBadAmountIs422NamingTheField(amount: String, message: String) async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Bad")
            let reply = try await api.call(
                .post, "/resellers/\(tenant.resellerID)/top-ups", key: api.adminKey,
                body: ["amount": amount, "paymentReference": "p"],
                headers: Self.key())
            #expect(reply.status == .unprocessableContent)
            let errors = try #require(reply["errors"] as? [[String: Any]])
            #expect(errors.first?["field"] as? String == "/amount")
            #expect((errors.first?["message"] as? String)?.contains(message) == true, "\(errors)")
            #expect(try await api.pool.query("SELECT count(*) FROM ledger_transfer").first(as: Int.self) == 0)
            #expect(try await api.auditCount(action: "ledger.top_up") == 0)
        }
    }

    @Test func aConcurrentDuplicateIs409AndLosesNothing() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Twice")
            let key = "pay-\(UUID().uuidString)"
            // Another request with this key is in flight: it holds the key's lock.
            try await api.pool.withTransaction { connection in
                #expect(try await IdempotencyRepository.tryLock(scope: "admin", key: key, on: connection))
                let duplicate = try await api.call(
                    .post, "/resellers/\(tenant.resellerID)/top-ups", key: api.adminKey,
                    body: ["amount": "5", "paymentReference": "p"],
                    headers: Self.key(key))
                #expect(duplicate.status == .conflict && duplicate.string("code") == "idempotency_in_progress")
            }
            let first = try await api.call(
                .post, "/resellers/\(tenant.resellerID)/top-ups", key: api.adminKey,
                body: ["amount": "5", "paymentReference": "p"],
                headers: Self.key(key))
            #expect(first.status == .created)
            // Truly concurrent duplicates: exactly one moves money; the others replay it or are told to retry.
            let racingKey = Self.key()
            let statuses = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String?).self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        let reply = try await api.call(
                            .post, "/resellers/\(tenant.resellerID)/top-ups", key: api.adminKey,
                            body: ["amount": "7", "paymentReference": "p"],
                            headers: racingKey)
                        return (reply.status, reply.headers[HTTPField.Name("Idempotent-Replayed")!])
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0.0 == .created && $0.1 == "false" }.count == 1, "\(statuses)")
            #expect(statuses.allSatisfy { $0.0 == .created || $0.0 == .conflict })
            let wallet = try await Self.wallet(api, key: tenant.resellerKey, kind: "reseller_wallet")
            #expect(wallet["balance"] as? String == "12.0000")
        }
    }

    @Test func creditLimitsBelongToTheWalletsParent() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Limits")
            let resellerWallet = try #require(
                try await Self.wallet(api, key: tenant.resellerKey, kind: "reseller_wallet")["id"] as? String)
            let subWallet = try #require(
                try await Self.wallet(api, key: tenant.subAccountKey, kind: "sub_account_wallet")["id"] as? String)
            // The reseller may not extend its own credit; the admin may.
            let own = try await api.call(
                .put, "/accounts/\(resellerWallet)/credit-limit", key: tenant.resellerKey, body: ["creditLimit": "100"],
                headers: Self.key())
            #expect(own.status == .forbidden)
            let granted = try await api.call(
                .put, "/accounts/\(resellerWallet)/credit-limit", key: api.adminKey, body: ["creditLimit": "100"],
                headers: Self.key())
            #expect(
                granted.status == .ok && granted.string("creditLimit") == "100.0000"
                    && granted.string("spendable") == "100.0000")
            // A postpaid reseller can be corrected below zero, down to its limit and no further.
            let debit = try await api.call(
                .post, "/resellers/\(tenant.resellerID)/adjustments", key: api.adminKey,
                body: ["amount": "-60", "reason": "usage invoice"], headers: Self.key())
            #expect(debit.status == .created, "\(debit.json)")
            #expect((debit["account"] as? [String: Any])?["available"] as? String == "-60.0000")
            let beyond = try await api.call(
                .post, "/resellers/\(tenant.resellerID)/adjustments", key: api.adminKey,
                body: ["amount": "-40.0001", "reason": "x"], headers: Self.key())
            #expect(beyond.status == .conflict && beyond.string("code") == "insufficient_funds")
            // The limit cannot drop below what is already used.
            let tooLow = try await api.call(
                .put, "/accounts/\(resellerWallet)/credit-limit", key: api.adminKey, body: ["creditLimit": "59.9999"],
                headers: Self.key())
            #expect(tooLow.status == .conflict && tooLow.string("code") == "credit_limit_too_low")
            // The reseller sets its customer's limit; the customer cannot.
            #expect(
                try await api.call(
                    .put, "/accounts/\(subWallet)/credit-limit", key: tenant.subAccountKey, body: ["creditLimit": "5"],
                    headers: Self.key()
                ).status == .forbidden)
            let customer = try await api.call(
                .put, "/accounts/\(subWallet)/credit-limit", key: tenant.resellerKey, body: ["creditLimit": "5"],
                headers: Self.key())
            #expect(customer.status == .ok && customer.string("spendable") == "5.0000")
            // Taking credits back never reaches into the customer's credit line.
            _ = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/credit-transfers", key: tenant.resellerKey,
                body: ["amount": "2", "direction": "to_sub_account"], headers: Self.key())
            let intoTheLine = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/credit-transfers", key: tenant.resellerKey,
                body: ["amount": "3", "direction": "from_sub_account"], headers: Self.key())
            #expect(intoTheLine.status == .conflict && intoTheLine.string("code") == "insufficient_funds")
            // System accounts have no limits; the reseller cannot even see the platform's.
            let revenue = try #require(
                try await Self.wallet(api, key: tenant.resellerKey, kind: "reseller_revenue")["id"] as? String)
            #expect(
                try await api.call(
                    .put, "/accounts/\(revenue)/credit-limit", key: api.adminKey, body: ["creditLimit": "1"],
                    headers: Self.key()
                ).status == .conflict)
            #expect(try await api.call(.get, "/accounts?kind=platform_funding", key: tenant.resellerKey).items.isEmpty)
            #expect(try await api.call(.get, "/accounts?kind=platform_revenue", key: tenant.resellerKey).items.isEmpty)
            #expect(
                try await api.call(
                    .get, "/accounts?kind=platform_revenue&resellerId=\(tenant.resellerID)", key: api.adminKey
                ).items.count == 1)
            #expect(try await api.auditCount(action: "ledger.credit_limit") == 2)
        }
    }

    @Test func theRunningServiceExpiresReservationsAndForgetsOldKeys() async throws {
        try await TenancyHarness.run(configure: {
            $0.ledgerMaintenance = true
            $0.ledgerMaintenanceInterval = .milliseconds(100)
        }) { api in
            let tenant = try await api.onboard("Upkeep")
            _ = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/credit-transfers", key: tenant.resellerKey,
                body: ["amount": "5", "direction": "to_sub_account"], headers: Self.key())
            let ledger = LedgerRepository(pool: api.pool)
            let wallet = try #require(try await ledger.wallet(subAccountID: UUID(uuidString: tenant.subAccountID)!))
            let revenue = try #require(
                try await ledger.account(kind: .resellerRevenue, resellerID: wallet.resellerID, subAccountID: nil))
            let reservation = try await ledger.apply([
                .pending(
                    from: wallet.id, to: revenue.id, amount: 10_000, timeoutAt: Date().addingTimeInterval(0.3),
                    code: "send_retail", by: "test")
            ])[0]
            #expect(try await ledger.wallet(subAccountID: wallet.subAccountID!)?.available == 40_000)
            // The service in the app, not the test, voids it once the timeout has passed.
            var state: ReservationState?
            for _ in 0..<50 where state != .expired {
                try await Task.sleep(for: .milliseconds(100))
                state = try await ledger.transfer(id: reservation.id, scope: .everything)?.state
            }
            #expect(state == .expired)
            #expect(try await ledger.wallet(subAccountID: wallet.subAccountID!)?.available == 50_000)
            // Idempotency records older than the retention are purged; fresh ones stay. The app's upkeep purges too
            // (every 60 rounds), and may take the old record between the insert and the call below: either did it.
            try await api.pool.query(
                "INSERT INTO idempotency_record (scope, key, operation, request_hash, status_code, response, created_at) VALUES ('admin', 'old', 'x', '\\x00', 201, '{}', now() - interval '8 days')"
            )
            let purged = try await IdempotencyRepository(pool: api.pool).purge(olderThan: .seconds(7 * 86_400))
            #expect(purged <= 1)
            #expect(
                try await api.pool.query("SELECT count(*) FROM idempotency_record WHERE key = 'old'").first(
                    as: Int.self)
                    == 0)
            #expect(
                try await api.pool.query("SELECT count(*) FROM idempotency_record").first(as: Int.self) == 1,
                "the credit transfer's key stays")
        }
    }

    @Test func aClosedResellerGrantsNoCreditsButMayTakeThemBack() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Closing")
            let give = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/credit-transfers", key: tenant.resellerKey,
                body: ["amount": "5", "direction": "to_sub_account"], headers: Self.key())
            #expect(give.status == .created)
            #expect(
                try await api.call(
                    .post, "/resellers/\(tenant.resellerID)/close", key: api.adminKey,
                    body: ["reason": "contract ended"]
                ).status == .ok)
            // The admin acts for the closed reseller (its own keys stop working when it closes).
            let more = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/credit-transfers", key: api.adminKey,
                body: ["amount": "1", "direction": "to_sub_account"], headers: Self.key())
            #expect(more.status == .conflict, "\(more.json)")
            let back = try await api.call(
                .post, "/sub-accounts/\(tenant.subAccountID)/credit-transfers", key: api.adminKey,
                body: ["amount": "5", "direction": "from_sub_account"], headers: Self.key())
            #expect(back.status == .created, "\(back.json)")
            #expect((back["account"] as? [String: Any])?["available"] as? String == "0.0000")
        }
    }

    @Test func crossingTheLowBalanceThresholdRecordsEvents() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Low")
            let subWallet = try #require(
                try await Self.wallet(api, key: tenant.subAccountKey, kind: "sub_account_wallet")["id"] as? String)
            let set = try await api.call(
                .put, "/accounts/\(subWallet)/low-balance-threshold", key: tenant.subAccountKey,
                body: ["threshold": "15"])
            #expect(set.status == .ok && set.string("lowBalanceThreshold") == "15.0000")
            // Already below (0 < 15): one event at once.
            #expect(set["belowLowBalanceThreshold"] as? Bool == true)
            for (amount, direction) in [
                ("20", "to_sub_account"), ("3", "from_sub_account"), ("4", "from_sub_account"),
                ("1", "from_sub_account"),
            ] {
                let reply = try await api.call(
                    .post, "/sub-accounts/\(tenant.subAccountID)/credit-transfers", key: tenant.resellerKey,
                    body: ["amount": amount, "direction": direction], headers: Self.key())
                #expect(reply.status == .created)
            }
            // 0 → 20 recovers, 17 stays above, 13 drops below, 12 stays below.
            let events = try await api.call(.get, "/accounts/\(subWallet)/events", key: tenant.subAccountKey)
            #expect(events.items.map { $0["kind"] as? String } == ["low_balance", "balance_recovered", "low_balance"])
            #expect(events.items.first?["available"] as? String == "13.0000")
            // Setting the threshold again while already below records no second alert.
            let again = try await api.call(
                .put, "/accounts/\(subWallet)/low-balance-threshold", key: tenant.resellerKey, body: ["threshold": "14"]
            )
            #expect(again.status == .ok)
            #expect(
                try await api.call(.get, "/accounts/\(subWallet)/events", key: tenant.subAccountKey).items.count == 3)
            let removed = try await api.call(
                .delete, "/accounts/\(subWallet)/low-balance-threshold", key: tenant.subAccountKey)
            #expect(removed.status == .ok && removed["lowBalanceThreshold"] == nil)
        }
    }
}
