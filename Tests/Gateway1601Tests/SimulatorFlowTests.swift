import Foundation
import Gateway1601
import Gateway1601Simulator
import Testing

/// Successful calls over HTTP: sending, charging, scheduling, outbox, reports, encoding and the SHA-1 password.
@Suite struct SimulatorFlowTests {
    @Test(arguments: [Gateway1601Configuration.Method.get, .post])
    func textSurvivesEncodingExactly(method: Gateway1601Configuration.Method) async throws {
        let text = "Prijs: 5 & 10 + 15% = 30 €? Zoë, café, ĳsje 😀👍🏽  twee  spaties\nregel 2"
        let reference = "order #1&2+3%=4 é"
        try await withSimulator { simulator, base in
            let client = makeClient(base, "sandbox", "sandbox", method: method)
            let result = try await client.send(
                SendRequest(
                    message: text, recipients: .numbers(["31612345678"]), sender: "A&B Shop",
                    deliveryReport: true, long: true, reference: reference)
            )
            let received = try #require(simulator.receivedRequests().last)
            #expect(received.method == (method == .get ? "GET" : "POST"))
            #expect(received.parameters.value(of: "bericht") == text)
            #expect(received.parameters.value(of: "afzender") == "A&B Shop")
            #expect(received.parameters.value(of: "referentie") == reference)
            let raw = try #require(method == .get ? received.rawQuery : received.rawBody)
            #expect(raw.contains("%26") && raw.contains("%2B") && raw.contains("%25") && !raw.contains("+"))
            #expect(raw.contains("%C4%B3"))  // ĳ as UTF-8, encoded once
            let id = try #require(result.messageIDs.first)
            let message = try #require(simulator.message(id))
            #expect(message.text == text)
            #expect(message.encoding == .ucs2)
            #expect(message.reference == reference)
        }
    }

    @Test func sha1PasswordIsAccepted() async throws {
        try await withSimulator { simulator, base in
            let hashed = makeClient(base, "alice", "geheim", encoding: .sha1Hex)
            #expect(try await hashed.credits() == 10)
            let sent = try #require(simulator.receivedRequests().last?.parameters.value(of: "klantpwd"))
            #expect(sent == GatewayCredentials.sha1Hex("geheim"))
            #expect(sent.count == 40 && sent != "geheim")
            let wrong = makeClient(base, "alice", "other", encoding: .sha1Hex)
            #expect(await gatewayError { try await wrong.credits() } == .gateway(.invalidCredentials))
        }
    }

    @Test func sendChargesPerPartAndRecipient() async throws {
        try await withSimulator { simulator, base in
            let client = makeClient(base)
            let plain = try await client.send(
                SendRequest(
                    message: String(repeating: "a", count: 161), recipients: .numbers(["31612345678", "31687654321"]),
                    sender: "Shop", long: true))
            #expect(plain.messageIDs.isEmpty)  // no delivery=ja: a bare OK
            #expect(try await client.credits() == 6)  // 2 parts × 2 recipients × 1
            let sandbox = makeClient(base, "sandbox", "sandbox")
            let result = try await sandbox.send(
                SendRequest(
                    message: "Hi", recipients: .numbers(["32478123456", "31612345678"]), sender: "Shop",
                    deliveryReport: true))
            #expect(result.messageIDs == ["1000003", "1000004"])
            #expect(try await sandbox.credits() == Decimal(1_000_000) - Decimal(string: "2.5")!)
            #expect(
                simulator.messages().map(\.recipient) == ["31612345678", "31687654321", "32478123456", "31612345678"])
        }
    }

    @Test func testModeChecksButNeitherSendsNorCharges() async throws {
        try await withSimulator { simulator, base in
            let client = makeClient(base)
            let request = SendRequest(
                message: "Hi", recipients: .numbers(["31612345678"]), sender: "Shop", deliveryReport: true, test: true)
            let result = try await client.send(request)
            #expect(result == SendResult(messageIDs: []))
            var blocked = request
            blocked.sender = "Bank"
            #expect(await gatewayError { try await client.send(blocked) } == .gateway(.senderNotAllowed))
            #expect(simulator.messages().isEmpty)
            let credits = try await client.credits()
            #expect(credits == 10)
        }
    }

    @Test func testModeOfAScheduledSendWithOutboxIDIsABareOK() async throws {
        try await withSimulator { simulator, base in
            let client = makeClient(base)
            let request = SendRequest(
                message: "Later", recipients: .numbers(["31612345678", "32478123456"]), sender: "Shop",
                deliveryReport: true,
                schedule: GatewayDateTime(Date() + 3600), requestOutboxID: true, test: true)
            let result = try await client.send(request)
            #expect(result == SendResult(messageIDs: []))
            #expect(simulator.receivedRequests().last?.answer == "OK")
            #expect(simulator.messages().isEmpty)
            let credits = try await client.credits()
            #expect(credits == 10)
        }
    }

    @Test func groupSendReachesEveryMember() async throws {
        try await withSimulator { simulator, base in
            let result = try await makeClient(base).send(
                SendRequest(message: "Team!", recipients: .group("team"), sender: "Shop", deliveryReport: true))
            #expect(result.messageIDs.count == 2)
            #expect(simulator.messages().map(\.recipient) == ["31612345678", "32478123456"])
        }
    }

    @Test func scheduledSendsWaitInTheOutboxAndCanBeRemoved() async throws {
        try await withSimulator { simulator, base in
            let client = makeClient(base)
            let later = GatewayDateTime(Date() + 3600)
            let first = try await client.send(
                SendRequest(
                    message: "Later", recipients: .numbers(["31612345678", "31687654321"]), sender: "Shop",
                    schedule: later, requestOutboxID: true, emailConfirmation: false))
            let outboxID = try #require(first.outboxID)
            #expect(outboxID == "501")
            #expect(try await client.credits() == 8)
            _ = try await client.send(
                SendRequest(message: "Later", recipients: .numbers(["31655555555"]), sender: "Shop", schedule: later))
            #expect(simulator.messages().allSatisfy { $0.state == .scheduled })

            try await client.removeOutboxMessage(.id(outboxID))
            #expect(try await client.credits() == 9)
            try await client.removeOutboxMessage(.number("+31 6 5555 5555"))
            #expect(try await client.credits() == 10)
            #expect(simulator.messages().allSatisfy { $0.state == .removed })
            #expect(await gatewayError { try await client.emptyOutbox() } == .gateway(.outboxMessageNotFound))

            _ = try await client.send(
                SendRequest(message: "Later", recipients: .numbers(["31612345678"]), sender: "Shop", schedule: later))
            try await client.emptyOutbox()
            #expect(try await client.credits() == 10)
        }
    }

    @Test func dueOutboxMessagesAreSent() async throws {
        try await withSimulator { simulator, base in
            // The gateway refuses a schedule before the current minute (121); do not let the minute
            // turn between taking "now" and the simulator checking it.
            let second = Calendar(identifier: .gregorian).component(.second, from: Date())
            if second >= 58 { try await Task.sleep(for: .seconds(61 - second)) }
            let now = GatewayDateTime(Date())
            _ = try await makeClient(base).send(
                SendRequest(message: "Now-ish", recipients: .numbers(["31612345678"]), sender: "Shop", schedule: now))
            #expect(try await eventually { simulator.messages().first?.status == .delivered })
            #expect(simulator.messages().first?.state == .sent)
        }
    }

    @Test func deliveryBegunBeforeAResetLeavesTheNewMessageWithTheSameIDAlone() async throws {
        var configuration = SimulatorConfiguration.testing()
        configuration.delivery.submittedAfterMilliseconds = 300
        try await withSimulator(configuration) { simulator, base in
            let client = makeClient(base, "sandbox", "sandbox")
            let request = SendRequest(
                message: "Hi", recipients: .numbers(["31612345678"]), sender: "Shop", deliveryReport: true)
            let before = try await client.send(request).messageIDs
            simulator.reset()
            simulator.setDelivery(DeliveryBehaviour(automatic: false))
            let after = try await client.send(request).messageIDs
            #expect(after == before)  // ids restart after a reset
            try await Task.sleep(for: .milliseconds(600))
            #expect(simulator.message(after[0])?.status == DeliveryStatus.none)
        }
    }

    @Test func reportsShowDeliveryProgress() async throws {
        try await withSimulator { simulator, base in
            let client = makeClient(base, "sandbox", "sandbox")
            let ids = try await client.send(
                SendRequest(
                    message: "Hi", recipients: .numbers(["31612345678", "447911123456"]), sender: "Shop",
                    deliveryReport: true, reference: "r1")
            ).messageIDs
            _ = try await client.send(
                SendRequest(message: "Hidden", recipients: .numbers(["31612345678"]), sender: "Shop", logging: false))
            #expect(try await eventually { simulator.messages().allSatisfy { $0.status == .delivered } })

            let report = try await client.deliveryStatus(smsID: ids[0])
            #expect(report.status == .delivered)
            let updated = try #require(report.updatedAt)
            #expect(abs(updated.date().timeIntervalSinceNow) < 120)
            #expect(
                try await client.deliveryStatus(smsID: ids[0], includeDate: false) == DeliveryReport(status: .delivered)
            )
            #expect(try await client.deliveryStatus(smsID: "999999") == DeliveryReport(status: .none))
            // Another account's message is not visible to alice.
            #expect(try await makeClient(base).deliveryStatus(smsID: ids[0]).status == .none)

            let table = try await client.report(count: 10)
            #expect(table.map(\.smsID) == ids.reversed())
            #expect(table.allSatisfy { $0.status == .delivered && $0.updatedAt != nil && $0.reference == "r1" })
            #expect(try await client.report(count: 1).map(\.smsID) == [ids[1]])
        }
    }

    @Test func unknownActionIsAnHTTPErrorThatPausesTheConnection() async throws {
        try await withSimulator { _, base in
            let error = await gatewayError {
                try await makeClient(base).perform(
                    path: GatewayCall.gatewayPath,
                    parameters: GatewayCredentials(username: "alice", password: "geheim").parameters + [
                        GatewayParameter("action", "dance")
                    ])
            }
            #expect(error == .httpStatus(400))
            #expect(error?.disposition == .pauseConnection)
        }
    }
}
