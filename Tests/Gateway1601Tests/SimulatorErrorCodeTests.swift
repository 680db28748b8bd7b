import Foundation
import Gateway1601
import Gateway1601Simulator
import Testing

/// Every error code the simulator can produce, over HTTP, parsed by the client into the right type.
@Suite struct SimulatorErrorCodeTests {
    static let number = "31612345678"

    static func send(
        _ message: String = "Hello", to numbers: [String] = [number], sender: String = "Shop", long: Bool = false
    ) -> SendRequest {
        SendRequest(message: message, recipients: .numbers(numbers), sender: sender, long: long)
    }

    @Test func accountLevelErrors() async throws {
        try await withSimulator { _, base in
            let cases: [(String, String, GatewayErrorCode)] = [
                ("", "geheim", .usernameEmpty), ("alice", "", .passwordEmpty), ("alice", "wrong", .invalidCredentials),
                ("nobody", "geheim", .invalidCredentials), ("payer", "p", .accountBlockedForPayment),
                ("blocked", "b", .accountBlocked),
            ]
            for (username, password, code) in cases {
                let client = makeClient(base, username, password)
                let sendError = await gatewayError { try await client.send(Self.send()) }
                #expect(sendError == .gateway(code), "\(username)/\(password)")
                #expect(sendError?.disposition == .pauseConnection)
                #expect(await gatewayError { try await client.credits() } == .gateway(code))
            }
        }
    }

    @Test func messageLevelErrors() async throws {
        let past = GatewayDateTime(year: 2000, month: 1, day: 1, hour: 12, minute: 0)
        let cases: [(SendRequest, GatewayErrorCode)] = [
            (Self.send(""), .messageEmpty),
            (Self.send(to: []), .recipientEmpty),
            (Self.send(to: [" , "]), .recipientEmpty),
            (Self.send(String(repeating: "a", count: 161)), .messageTooLongForSinglePart),
            (Self.send(String(repeating: "Ж", count: 71)), .messageTooLongForSinglePart),
            (Self.send(to: ["0612345678"]), .invalidMobileNumber),
            (Self.send(to: [Self.number, "31abc"]), .invalidMobileNumber),
            (Self.send(to: ["5511987654321"]), .countryNotOffered),
            (Self.send(to: ["8501234567"]), .countryNotPermitted),
            (Self.send(to: ["2801234567"]), .invalidCountryCode),
            (Self.send(sender: ""), .senderEmpty),
            (Self.send(sender: "0612345678"), .senderNumberWithoutPlus),
            (Self.send(sender: "+3161234567890123"), .senderNumberWithoutPlus),
            (Self.send(sender: "TwelveChars1"), .senderTooLong),
            (Self.send(sender: "Café"), .senderHasSpecialCharacters),
            (Self.send(sender: "bank "), .senderNotAllowed),
            (Self.send(String(repeating: "a", count: 460), long: true), .messageTooLong),
            (
                Self.send(String(repeating: "a", count: 161), to: ["79161234567"], long: true),
                .longMessagesNotOfferedForCountry
            ),
            (
                SendRequest(message: "m", recipients: .numbers([Self.number]), sender: "Shop", schedule: past),
                .scheduleDateInvalid
            ),
            (SendRequest(message: "m", recipients: .group("nope"), sender: "Shop"), .groupNotFound),
            (SendRequest(message: "m", recipients: .group("leeg"), sender: "Shop"), .groupEmpty),
            // 3 parts × 4 recipients × 1 credit = 12 > 10.
            (
                Self.send(String(repeating: "a", count: 400), to: Array(repeating: Self.number, count: 4), long: true),
                .insufficientCredits
            ),
        ]
        try await withSimulator { simulator, base in
            let client = makeClient(base)
            for (request, code) in cases {
                let error = await gatewayError { try await client.send(request) }
                #expect(
                    error == .gateway(code), "\(code.rawValue): \(request.message.prefix(20)) \(request.recipients)")
                #expect(error?.disposition == (code == .insufficientCredits ? .pauseConnection : .failMessage))
            }
            #expect(simulator.messages().isEmpty)
            #expect(simulator.account("alice")?.credits == 10)
            // The boundaries just inside the limits pass.
            #expect(await gatewayError { try await client.send(Self.send(String(repeating: "a", count: 160))) } == nil)
            #expect(await gatewayError { try await client.send(Self.send(sender: "+316123456789012")) } == nil)
            #expect(await gatewayError { try await client.send(Self.send(sender: "ElevenChars")) } == nil)
        }
    }

    @Test func malformedScheduleIs121() async throws {
        try await withSimulator { _, base in
            let answer = try await makeClient(base).perform(
                path: GatewayCall.gatewayPath,
                parameters: GatewayCredentials(username: "alice", password: "geheim").parameters + [
                    GatewayParameter("bericht", "m"), GatewayParameter("naar", Self.number),
                    GatewayParameter("afzender", "Shop"), GatewayParameter("datum", "202613011200"),
                ]
            )
            #expect(throws: GatewayAnswerError.gateway(.scheduleDateInvalid)) { try GatewayAnswer.parseOK(answer) }
        }
    }

    @Test func outboxAndReportErrors() async throws {
        try await withSimulator { _, base in
            let client = makeClient(base)
            #expect(
                await gatewayError { try await client.removeOutboxMessage(.id("999")) }
                    == .gateway(.outboxMessageNotFound))
            #expect(
                await gatewayError { try await client.removeOutboxMessage(.number(Self.number)) }
                    == .gateway(.outboxMessageNotFound))
            #expect(await gatewayError { try await client.emptyOutbox() } == .gateway(.outboxMessageNotFound))
            #expect(await gatewayError { try await client.report(count: 0) } == .gateway(.reportCountInvalid))
            let credentials = GatewayCredentials(username: "alice", password: "geheim").parameters
            let missing = try await client.perform(
                path: GatewayCall.gatewayPath, parameters: credentials + [GatewayParameter("action", "rapport")])
            #expect(throws: GatewayAnswerError.gateway(.reportCountMissing)) {
                try GatewayAnswer.parseReportTable(missing)
            }
            let invalid = try await client.perform(
                path: GatewayCall.gatewayPath,
                parameters: credentials + [GatewayParameter("action", "rapport"), GatewayParameter("aantal", "ten")])
            #expect(throws: GatewayAnswerError.gateway(.reportCountInvalid)) {
                try GatewayAnswer.parseReportTable(invalid)
            }
            let noSMSID = try await client.perform(path: GatewayCall.reportPath, parameters: [])
            #expect(throws: GatewayAnswerError.gateway(.reportCountMissing)) {
                try GatewayAnswer.parseDeliveryReport(noSMSID)
            }
            #expect(
                await gatewayError { try await client.deliveryStatus(smsID: "abc") } == .gateway(.reportCountInvalid))
        }
    }

    @Test func injectedGatewayErrorsAreTransient() async throws {
        try await withSimulator { simulator, base in
            let client = makeClient(base)
            simulator.setFaults(FaultConfiguration(gatewayErrorRate: 1))
            let problem = await gatewayError { try await client.send(Self.send()) }
            #expect(problem == .gateway(.gatewayProblem))
            #expect(problem?.isTransient == true)
            simulator.setFaults(FaultConfiguration(maintenanceErrorRate: 1))
            #expect(await gatewayError { try await client.credits() } == .gateway(.maintenance))
            simulator.setFaults(FaultConfiguration(maintenance: true))
            #expect(await gatewayError { try await client.send(Self.send()) } == .gateway(.maintenance))
            let now = Date()
            simulator.setFaults(
                FaultConfiguration(maintenanceWindows: [MaintenanceWindow(start: now - 60, end: now + 60)]))
            #expect(await gatewayError { try await client.deliveryStatus(smsID: "1") } == .gateway(.maintenance))
            simulator.setFaults(
                FaultConfiguration(maintenanceWindows: [MaintenanceWindow(start: now - 60, end: now - 1)]))
            let credits = try await client.credits()
            #expect(credits == 10)
            #expect(simulator.messages().isEmpty)
        }
    }
}
