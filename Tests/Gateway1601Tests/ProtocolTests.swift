import Foundation
import Gateway1601
import Testing

@Suite struct FormEncodingTests {
    @Test func reservedCharactersAreEncodedExactlyOnce() {
        let encoded = FormEncoding.encode([GatewayParameter("bericht", "a&b+c%d=e f")])
        #expect(encoded == "bericht=a%26b%2Bc%25d%3De%20f")
    }

    /// Found by fuzzing (docs/testing.md, "Input fuzzing"; input in Tests/FuzzCorpus/form/): a combining mark right
    /// after `=` or `&` joined it into one Character, so decoding did not split there (`naar=⃝…` was a name without
    /// a value, and a callback's `referentie` was lost).
    @Test func aCombiningMarkAfterASeparatorDoesNotHideIt() throws {
        #expect(
            FormEncoding.decode("naar=\u{20DD}12345678&\u{301}b=2")
                == [GatewayParameter("naar", "\u{20DD}12345678"), GatewayParameter("\u{301}b", "2")])
        let notification = try DeliveryNotification(
            query: "smsid=1&datum=20261126092623&status=DELIVERED&referentie=\u{301}x")
        #expect(notification.reference == "\u{301}x")
    }

    @Test func utf8IsPercentEncoded() {
        #expect(FormEncoding.percentEncode("é ĳ 😀") == "%C3%A9%20%C4%B3%20%F0%9F%98%80")
    }

    @Test(arguments: ["a&b+c%d=e f", "Zoë café ĳs", "😀👍🏽 multi", "", "%%41", "+ + +"])
    func decodingReversesEncoding(text: String) {
        let parameters = [GatewayParameter("x", text), GatewayParameter("y=", "&")]
        #expect(FormEncoding.decode(FormEncoding.encode(parameters)) == parameters)
    }

    @Test func decodingAcceptsPlusForSpaceAndKeepsBrokenEscapes() {
        #expect(
            FormEncoding.decode("a=b+c&d=%zz%4&e") == [
                GatewayParameter("a", "b c"), GatewayParameter("d", "%zz%4"), GatewayParameter("e", ""),
            ])
    }
}

/// Found with the fuzz targets' properties (docs/testing.md, "Input fuzzing"; inputs in Tests/FuzzCorpus/answer/ and
/// delivery/): statuses were upper-cased with Unicode rules, so lookalikes with a dotless ı, a long ſ or the ﬀ
/// ligature were read as DELIVERED, SUBMITTED or BUFFERED.
@Suite struct DeliveryStatusSpellingTests {
    @Test(arguments: ["DEL\u{131}VERED", "BU\u{FB00}ERED", "\u{17F}UBMITTED", "not_deliv\u{131}red"])
    func nonASCIILookalikesAreNotStatuses(text: String) {
        #expect(DeliveryStatus(text: text) == nil)
        #expect(throws: GatewayAnswerError.malformed(text)) { try GatewayAnswer.parseDeliveryReport(text) }
        #expect(throws: GatewayAnswerError.malformed(text + " 26/11/2026 09:26:23")) {
            try GatewayAnswer.parseDeliveryReport(text + " 26/11/2026 09:26:23")
        }
        #expect(throws: DeliveryNotification.ParseError.unknownStatus(text)) {
            try DeliveryNotification(
                query: "smsid=1&datum=20261126092623&status=" + FormEncoding.percentEncode(text))
        }
    }

    @Test func asciiCaseUnderscoresAndSpacesStillRead() throws {
        #expect(DeliveryStatus(text: "not_Delivered") == .notDelivered)
        #expect(DeliveryStatus(text: " buffered ") == .buffered)
        #expect(try GatewayAnswer.parseDeliveryReport("not delivered 26/11/2026 09:26:23").status == .notDelivered)
        #expect(try GatewayAnswer.parseDeliveryReport("NONE").status == DeliveryStatus.none)
    }
}

@Suite struct RequestBuildingTests {
    let credentials = GatewayCredentials(username: "user", password: "secret")

    @Test func sendCarriesEveryOption() throws {
        let request = SendRequest(
            message: "Hi", recipients: .numbers(["31612345678", "32478123456"]), sender: "Shop", logging: false,
            deliveryReport: true, long: true,
            schedule: GatewayDateTime(year: 2030, month: 1, day: 2, hour: 3, minute: 4),
            requestOutboxID: true, emailConfirmation: false, reference: "ref-1", test: true
        )
        let encoded = FormEncoding.encode(try GatewayCall.send(request).parameters(credentials: credentials))
        #expect(
            encoded == "klantuser=user&klantpwd=secret&bericht=Hi&naar=31612345678%2C32478123456&afzender=Shop"
                + "&logging=nee&delivery=ja&type=long&datum=203001020304&outboxid=ja&emailen=nee&referentie=ref-1&test=ja"
        )
    }

    @Test func groupSendUsesNaarGroep() throws {
        let parameters = try GatewayCall.send(SendRequest(message: "Hi", recipients: .group("Team A"), sender: "Shop"))
            .parameters(credentials: credentials)
        #expect(parameters.value(of: "naar") == "groep")
        #expect(parameters.value(of: "groep") == "Team A")
    }

    @Test func referenceIsLimitedTo75Characters() throws {
        let ok = SendRequest(
            message: "m", recipients: .numbers(["31612345678"]), sender: "s",
            reference: String(repeating: "r", count: 75))
        #expect(try GatewayCall.send(ok).parameters(credentials: credentials).value(of: "referentie")?.count == 75)
        var tooLong = ok
        tooLong.reference = String(repeating: "r", count: 76)
        #expect(throws: GatewayRequestError.referenceTooLong(76)) {
            try GatewayCall.send(tooLong).parameters(credentials: credentials)
        }
    }

    @Test func otherCalls() throws {
        func query(_ call: GatewayCall) throws -> String {
            call.path + "?" + FormEncoding.encode(try call.parameters(credentials: credentials))
        }
        let prefix = "klantuser=user&klantpwd=secret"
        #expect(try query(.credits) == "/module/gateway.php?\(prefix)&action=credits")
        #expect(try query(.report(count: 100)) == "/module/gateway.php?\(prefix)&action=rapport&aantal=100")
        #expect(
            try query(.removeOutboxMessage(.number("31612345678")))
                == "/module/gateway.php?\(prefix)&action=verwijderbericht&naar=31612345678")
        #expect(
            try query(.removeOutboxMessage(.id("77"))) == "/module/gateway.php?\(prefix)&action=verwijderbericht&id=77")
        #expect(try query(.emptyOutbox) == "/module/gateway.php?\(prefix)&action=verwijderoutbox")
        #expect(
            try query(.deliveryStatus(smsID: "1234567", includeDate: true))
                == "/module/gatewayrapport.php?\(prefix)&smsid=1234567&datum=ja")
    }

    @Test func sha1PasswordIsLowercaseHex() {
        let hashed = GatewayCredentials(username: "u", password: "secret", passwordEncoding: .sha1Hex)
        #expect(hashed.passwordParameter == "e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4")
        #expect(GatewayCredentials.sha1Hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
    }
}

@Suite struct AnswerParsingTests {
    @Test func okAnswers() throws {
        #expect(try GatewayAnswer.parseOK("OK") == [])
        #expect(try GatewayAnswer.parseOK(" OK 1234567\r\n") == ["1234567"])
        #expect(try GatewayAnswer.parseOK("OK 1,2, 3") == ["1", "2", "3"])
    }

    @Test(arguments: [
        "", "KO", "OKAY", "OK 12 34", "OK 1,,2", "OK <html>", "ERROR", "ERROR 999", "ERROR abc", "ERROR 104 x",
    ])
    func malformedAnswersAreNeverOK(body: String) {
        #expect(throws: GatewayAnswerError.malformed(body)) { try GatewayAnswer.parseOK(body) }
    }

    @Test func errorsAreTyped() {
        for code in GatewayErrorCode.allCases {
            #expect(throws: GatewayAnswerError.gateway(code)) {
                try GatewayAnswer.parseOK("ERROR \(code.rawValue)\r\n")
            }
            #expect(throws: GatewayAnswerError.gateway(code)) {
                try GatewayAnswer.parseCredits(GatewayAnswer.error(code))
            }
        }
    }

    @Test func credits() throws {
        #expect(try GatewayAnswer.parseCredits("476\n") == 476)
        #expect(try GatewayAnswer.parseCredits("12.5") == Decimal(string: "12.5"))
        #expect(try GatewayAnswer.parseCredits("12,5") == Decimal(string: "12.5"))
        #expect(try GatewayAnswer.parseCredits("-3") == -3)
        for bad in ["", "abc", "1.2.3", "12.", "OK", "1e5"] {
            #expect(throws: GatewayAnswerError.malformed(bad)) { try GatewayAnswer.parseCredits(bad) }
        }
        #expect(GatewayAnswer.credits(Decimal(string: "999997.50")!) == "999997.5")
    }

    @Test func deliveryReports() throws {
        #expect(
            try GatewayAnswer.parseDeliveryReport("DELIVERED 01/02/2012 10:23:10")
                == DeliveryReport(
                    status: .delivered,
                    updatedAt: GatewayDateTime(year: 2012, month: 2, day: 1, hour: 10, minute: 23, second: 10)))
        #expect(try GatewayAnswer.parseDeliveryReport("NOT DELIVERED\r\n").status == .notDelivered)
        for status in DeliveryStatus.allCases {
            #expect(try GatewayAnswer.parseDeliveryReport(status.rawValue).status == status)
        }
        for bad in ["NOT", "DELIVERED yesterday", "DELIVERED 31/02/2012 10:23:10", "DELIVEREDX", "PENDING"] {
            #expect(throws: GatewayAnswerError.malformed(bad)) { try GatewayAnswer.parseDeliveryReport(bad) }
        }
    }

    @Test func reportTableRoundTrips() throws {
        let entries = [
            ReportEntry(
                smsID: "2", recipient: "31612345678", status: .notDelivered,
                updatedAt: GatewayDateTime(year: 2024, month: 12, day: 31, hour: 23, minute: 59, second: 1),
                reference: "a;b"),
            ReportEntry(smsID: "1", recipient: "32478123456", status: .submitted, updatedAt: nil, reference: ""),
        ]
        let table = GatewayAnswer.reportTable(entries)
        #expect(
            table
                == "smsid;naar;status;datum;referentie\n2;31612345678;NOT DELIVERED;31/12/2024 23:59:01;a;b\n1;32478123456;SUBMITTED;;"
        )
        #expect(try GatewayAnswer.parseReportTable(table + "\r\n") == entries)
        #expect(try GatewayAnswer.parseReportTable(GatewayAnswer.reportHeader) == [])
        for bad in ["", "1;2;DELIVERED;;", GatewayAnswer.reportHeader + "\n1;2;LOST;;"] {
            #expect(throws: GatewayAnswerError.malformed(bad)) { try GatewayAnswer.parseReportTable(bad) }
        }
    }
}

@Suite struct DeliveryNotificationTests {
    @Test func parsesTheDocumentedParameters() throws {
        let notification = try DeliveryNotification(
            query: "smsid=1234567&datum=20240131235901&status=NOT%20DELIVERED&referentie=order+%2342")
        #expect(notification.smsID == "1234567")
        #expect(
            notification.timestamp == GatewayDateTime(year: 2024, month: 1, day: 31, hour: 23, minute: 59, second: 1))
        #expect(notification.status == .notDelivered)
        #expect(notification.reference == "order #42")
        #expect(try DeliveryNotification(parameters: notification.parameters) == notification)
        #expect(try DeliveryNotification(query: "smsid=1&datum=20240131235901&status=delivered").reference == nil)
    }

    @Test func malformedCallbacksAreNamed() {
        #expect(throws: DeliveryNotification.ParseError.missingParameter("smsid")) {
            try DeliveryNotification(query: "datum=20240131235901&status=DELIVERED")
        }
        #expect(throws: DeliveryNotification.ParseError.invalidSMSID("1 2")) {
            try DeliveryNotification(query: "smsid=1%202&datum=20240131235901&status=DELIVERED")
        }
        #expect(throws: DeliveryNotification.ParseError.invalidDate("202401312359")) {
            try DeliveryNotification(query: "smsid=1&datum=202401312359&status=DELIVERED")
        }
        #expect(throws: DeliveryNotification.ParseError.invalidDate("20241301000000")) {
            try DeliveryNotification(query: "smsid=1&datum=20241301000000&status=DELIVERED")
        }
        #expect(throws: DeliveryNotification.ParseError.unknownStatus("GONE")) {
            try DeliveryNotification(query: "smsid=1&datum=20240131235901&status=GONE")
        }
        #expect(throws: DeliveryNotification.ParseError.missingParameter("status")) {
            try DeliveryNotification(query: "smsid=1&datum=20240131235901&status=")
        }
    }
}

@Suite struct GatewayDateTimeTests {
    @Test func validatesCalendarFields() {
        #expect(GatewayDateTime(year: 2024, month: 2, day: 29, hour: 0, minute: 0) != nil)
        #expect(GatewayDateTime(year: 2023, month: 2, day: 29, hour: 0, minute: 0) == nil)
        #expect(GatewayDateTime(year: 2024, month: 4, day: 31, hour: 0, minute: 0) == nil)
        #expect(GatewayDateTime(year: 2024, month: 1, day: 1, hour: 24, minute: 0) == nil)
        #expect(GatewayDateTime(scheduleText: "201510261215")?.reportText == "26/10/2015 12:15:00")
        #expect(GatewayDateTime(scheduleText: "20151026121") == nil)
        #expect(GatewayDateTime(scheduleText: "2015102612155") == nil)
        #expect(GatewayDateTime(reportText: "1/02/2012 10:23:10") == nil)
    }

    @Test func convertsThroughTheGatewayTimeZone() {
        // 12:15 in Amsterdam on 1 July 2015 (CEST, UTC+2) is 10:15 UTC.
        let wallClock = GatewayDateTime(scheduleText: "201507011215")!
        #expect(wallClock.date() == Date(timeIntervalSince1970: 1_435_745_700))
        #expect(GatewayDateTime(wallClock.date()) == wallClock)
    }
}

@Suite struct ErrorDispositionTests {
    @Test func dispatcherClassification() {
        #expect(Gateway1601Error.gateway(.gatewayProblem).disposition == .retry)
        #expect(Gateway1601Error.gateway(.maintenance).isTransient)
        #expect(Gateway1601Error.gateway(.insufficientCredits).disposition == .pauseConnection)
        #expect(Gateway1601Error.gateway(.invalidMobileNumber).disposition == .failMessage)
        #expect(Gateway1601Error.timeout.disposition == .retry)
        #expect(Gateway1601Error.timeout.mayHaveBeenProcessed)
        #expect(Gateway1601Error.connectionFailed("refused").isTransient)
        #expect(!Gateway1601Error.connectionFailed("refused").mayHaveBeenProcessed)
        #expect(Gateway1601Error.httpStatus(503).disposition == .retry)
        #expect(Gateway1601Error.httpStatus(404).disposition == .pauseConnection)
        #expect(Gateway1601Error.malformedAnswer("x").disposition == .pauseConnection)
    }
}
