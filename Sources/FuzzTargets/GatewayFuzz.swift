import Foundation
import SMSCore

/// Form encoding. Lenient decoding: what the encoder makes decodes to the same parameters, and decoding what was
/// decoded and encoded again changes nothing. Strict decoding (the 1601-compatible endpoint's): a side it accepts
/// holds no U+FFFD or U+0000, survives encoding and strict decoding unchanged, and on valid UTF-8 input agrees with
/// the lenient decoder on where the pairs and their `=` are.
enum FormFuzz {
    static func run(_ bytes: [UInt8], _ check: inout PropertyCheck) {
        let text = String(fuzzBytes: bytes)
        let decoded = FormEncoding.decode(text)
        check.expect(FormEncoding.decode(FormEncoding.encode(decoded)) == decoded, "decode(encode(decoded)) differs")
        check.expect(
            decoded.count <= bytes.count(where: { $0 == UInt8(ascii: "&") }) + 1, "more pairs than `&`-separated pieces"
        )
        // The input split once at its first 0xFF (never in UTF-8) as a name and a value of its own.
        let halves = bytes.split(separator: 0xFF, maxSplits: 1, omittingEmptySubsequences: false)
        let parameter = GatewayParameter(
            String(fuzzBytes: Array(halves[0])), halves.count > 1 ? String(fuzzBytes: Array(halves[1])) : "")
        let encoded = FormEncoding.encode([parameter])
        check.expect(encoded.utf8.allSatisfy { $0 < 0x80 && $0 != UInt8(ascii: "&") }, "encoding is not plain ASCII")
        check.expect(FormEncoding.decode(encoded) == [parameter], "decode(encode(p)) != p")

        let strict = FormEncoding.decodeStrictly(bytes)
        for pair in strict {
            for side in [pair.name, pair.value].compactMap({ $0 }) {
                check.expect(
                    !side.unicodeScalars.contains { $0 == "\u{FFFD}" || $0 == "\u{0}" }, "strict side holds U+FFFD/NUL")
                check.expect(
                    FormEncoding.strictPercentDecode(Array(FormEncoding.percentEncode(side).utf8)) == side,
                    "strict side does not survive encoding")
            }
        }
        if String(validating: bytes, as: UTF8.self) != nil {
            check.expect(decoded.count == strict.count, "lenient \(decoded.count) pairs, strict \(strict.count)")
            for (lenient, strictPair) in zip(decoded, strict) {
                if let name = strictPair.name { check.expect(lenient.name == name, "names differ") }
                if let value = strictPair.value { check.expect(lenient.value == value, "values differ") }
            }
        }
    }
}

/// The 1601 answers. Whatever a parser accepts is a documented answer: formatting the result and parsing that gives
/// the same result, and the accepted body is, up to surrounding whitespace, ASCII case and runs of spaces, the
/// formatted answer (so `DELıVERED` or `OK 1;2` is never success). `ERROR <code>` is thrown only for a listed code.
enum AnswerFuzz {
    static func run(_ bytes: [UInt8], _ check: inout PropertyCheck) {
        let body = String(fuzzBytes: bytes)
        let trimmed = body.trimmingCharacters(in: .whitespacesAndNewlines)
        do throws(GatewayAnswerError) {
            let ids = try GatewayAnswer.parseOK(body)
            check.expect((try? GatewayAnswer.parseOK(GatewayAnswer.ok(ids))) == ids, "OK ids do not round-trip")
            check.expect(
                ids.allSatisfy { !$0.isEmpty && $0.utf8.allSatisfy(isIDByte) }, "OK accepted an id that is not an id")
            check.expect(trimmed.hasPrefix("OK"), "OK accepted \(body.debugDescription)")
        } catch {
            expectDocumentedError(error, trimmed, &check)
        }
        do throws(GatewayAnswerError) {
            let credits = try GatewayAnswer.parseCredits(body)
            let formatted = GatewayAnswer.credits(credits)
            check.expect(
                (try? GatewayAnswer.parseCredits(formatted)) == credits,
                "credits \(trimmed.debugDescription) → \(formatted) do not round-trip")
            check.expect(
                trimmed.utf8.allSatisfy {
                    isDigitByte($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "-")
                },
                "credits accepted \(body.debugDescription)")
        } catch {
            expectDocumentedError(error, trimmed, &check)
        }
        do throws(GatewayAnswerError) {
            let report = try GatewayAnswer.parseDeliveryReport(body)
            let formatted = GatewayAnswer.deliveryReport(report)
            check.expect(
                (try? GatewayAnswer.parseDeliveryReport(formatted)) == report, "delivery report does not round-trip")
            check.expect(
                normalised(trimmed) == formatted, "delivery report accepted \(body.debugDescription) as \(formatted)")
        } catch {
            expectDocumentedError(error, trimmed, &check)
        }
        do throws(GatewayAnswerError) {
            let entries = try GatewayAnswer.parseReportTable(body)
            let formatted = GatewayAnswer.reportTable(entries)
            check.expect(
                (try? GatewayAnswer.parseReportTable(formatted)) == entries, "report table does not round-trip")
            for entry in entries {
                check.expect(entry.smsID.utf8.allSatisfy(isIDByte), "report table accepted smsid \(entry.smsID)")
            }
            let lines = trimmed.split(whereSeparator: \.isNewline).map {
                $0.trimmingCharacters(in: .whitespaces)
            }.filter { !$0.isEmpty }
            for (line, entry) in zip(lines.dropFirst(), entries) {
                let status = line.split(separator: ";", omittingEmptySubsequences: false)[2]
                check.expect(
                    normalised(status.replacingOccurrences(of: "_", with: " ")) == entry.status.rawValue,
                    "report table accepted status \(status.debugDescription) as \(entry.status.rawValue)")
            }
        } catch {
            expectDocumentedError(error, trimmed, &check)
        }
    }

    /// `ERROR <code>` is thrown only for that text; any whitespace may separate the words, as the document's
    /// "surrounding whitespace and CR/LF are ignored" does not say otherwise (`ERROR\n122` is an error, not success).
    private static func expectDocumentedError(
        _ error: GatewayAnswerError, _ trimmed: String, _ check: inout PropertyCheck
    ) {
        guard case .gateway(let code) = error else { return }
        check.expect(
            trimmed.split(whereSeparator: \.isWhitespace).joined(separator: " ") == GatewayAnswer.error(code),
            "\(trimmed.debugDescription) read as ERROR \(code.rawValue)")
    }

    /// ASCII upper case, runs of spaces and tabs as one space.
    static func normalised(_ text: some StringProtocol) -> String {
        text.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ").asciiUppercased
    }

    static func isDigitByte(_ byte: UInt8) -> Bool { (48...57).contains(byte) }

    static func isIDByte(_ byte: UInt8) -> Bool {
        isDigitByte(byte) || (65...90).contains(byte) || (97...122).contains(byte) || byte == UInt8(ascii: "-")
            || byte == UInt8(ascii: "_")
    }
}

/// Delivery callbacks and the gateway's dates. An accepted callback has an id of letters, digits, `-` and `_`, a
/// documented status written as such (ASCII case, `_` or spaces between words), and survives being written as a
/// query and read again; each date format re-formats to the same date.
enum DeliveryFuzz {
    static func run(_ bytes: [UInt8], _ check: inout PropertyCheck) {
        let text = String(fuzzBytes: bytes)
        if let notification = try? DeliveryNotification(query: text) {
            check.expect(
                notification.smsID.utf8.allSatisfy(AnswerFuzz.isIDByte), "callback smsid \(notification.smsID)")
            check.expect(
                (try? DeliveryNotification(query: FormEncoding.encode(notification.parameters))) == notification,
                "callback does not round-trip")
            if let statusText = FormEncoding.decode(text).value(of: "status") {
                let words = statusText.split(whereSeparator: { $0 == " " || $0 == "_" || $0 == "\t" || $0.isNewline })
                check.expect(
                    words.joined(separator: " ").asciiUppercased == notification.status.rawValue,
                    "callback status \(statusText.debugDescription) read as \(notification.status.rawValue)")
            }
        }
        if let date = GatewayDateTime(callbackText: text) {
            check.expect(date.callbackText == text, "callback date \(text.debugDescription) → \(date.callbackText)")
        }
        if let date = GatewayDateTime(scheduleText: text) {
            check.expect(date.scheduleText == text, "schedule date \(text.debugDescription) → \(date.scheduleText)")
        }
        if let date = GatewayDateTime(reportText: text) {
            check.expect(date.reportText == text, "report date \(text.debugDescription) → \(date.reportText)")
        }
        if let status = DeliveryStatus(text: text) {
            check.expect(
                AnswerFuzz.normalised(text.replacingOccurrences(of: "_", with: " ")) == status.rawValue,
                "status \(text.debugDescription) read as \(status.rawValue)")
        }
    }
}
