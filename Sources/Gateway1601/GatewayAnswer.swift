import Foundation
import SMSCore

/// Why an answer body could not be used.
public enum GatewayAnswerError: Error, Sendable, Hashable {
    /// The gateway answered `ERROR <code>` with a documented code.
    case gateway(GatewayErrorCode)
    /// The body is not a documented answer for the call (unknown error codes included); the body is attached.
    case malformed(String)
}

/// The text answers of the gateway: parsing for the client, formatting for the simulator, one definition for both.
///
/// Surrounding whitespace and CR/LF are ignored everywhere.
public enum GatewayAnswer {
    /// The header line of the `action=rapport` table.
    public static let reportHeader = "smsid;naar;status;datum;referentie"

    // MARK: Parsing

    /// Parses `OK`, `OK <id>` or `OK <id>,<id>,…` into the ids (empty for a bare `OK`).
    public static func parseOK(_ body: String) throws(GatewayAnswerError) -> [String] {
        let text = try nonErrorText(body)
        let words = text.split(maxSplits: 1, whereSeparator: \.isWhitespace)
        guard words.first == "OK" else { throw .malformed(body) }
        guard words.count == 2 else { return [] }
        let ids = words[1].split(separator: ",", omittingEmptySubsequences: false).map {
            String($0.trimmingCharacters(in: .whitespaces))
        }
        guard ids.allSatisfy(isIdentifier) else { throw .malformed(body) }
        return ids
    }

    /// Parses the answer of `action=credits`: a number, possibly negative or with decimals (`.` or `,`).
    public static func parseCredits(_ body: String) throws(GatewayAnswerError) -> Decimal {
        let text = try nonErrorText(body)
        let unsigned = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
        let parts = unsigned.split(separator: text.contains(",") ? "," : ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(isASCIIDigit) }),
            let value = Decimal(
                string: text.replacingOccurrences(of: ",", with: "."), locale: Locale(identifier: "en_US_POSIX"))
        else { throw .malformed(body) }
        return value
    }

    /// Parses the answer of `gatewayrapport.php`: a status, optionally followed by `dd/mm/yyyy hh:mm:ss`.
    public static func parseDeliveryReport(_ body: String) throws(GatewayAnswerError) -> DeliveryReport {
        guard let report = deliveryReport(in: Substring(try nonErrorText(body))) else { throw .malformed(body) }
        return report
    }

    /// Parses the `action=rapport` table: the header line, then one `;`-separated row per message.
    public static func parseReportTable(_ body: String) throws(GatewayAnswerError) -> [ReportEntry] {
        let text = try nonErrorText(body)
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        guard lines.first?.lowercased() == reportHeader else { throw .malformed(body) }
        var entries: [ReportEntry] = []
        for line in lines.dropFirst() {
            let fields = line.split(separator: ";", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 5, isIdentifier(fields[0]), let status = DeliveryStatus(text: fields[2]) else {
                throw .malformed(body)
            }
            var updatedAt: GatewayDateTime?
            if !fields[3].isEmpty {
                guard let date = GatewayDateTime(reportText: fields[3]) else { throw .malformed(body) }
                updatedAt = date
            }
            entries.append(
                ReportEntry(
                    smsID: fields[0], recipient: fields[1], status: status, updatedAt: updatedAt, reference: fields[4])
            )
        }
        return entries
    }

    // MARK: Formatting

    /// `OK`, or `OK <id>,<id>…`.
    public static func ok(_ ids: [String] = []) -> String {
        ids.isEmpty ? "OK" : "OK " + ids.joined(separator: ",")
    }

    /// `ERROR <code>`.
    public static func error(_ code: GatewayErrorCode) -> String { "ERROR \(code.rawValue)" }

    /// The credits number: plain decimal notation, `.` as separator, no trailing zeros.
    public static func credits(_ amount: Decimal) -> String {
        NSDecimalNumber(decimal: amount).description(withLocale: Locale(identifier: "en_US_POSIX"))
    }

    /// `STATUS` or `STATUS dd/mm/yyyy hh:mm:ss`.
    public static func deliveryReport(_ report: DeliveryReport) -> String {
        guard let date = report.updatedAt else { return report.status.rawValue }
        return "\(report.status.rawValue) \(date.reportText)"
    }

    /// The `action=rapport` table: header and rows, `\n`-separated; `;` and line breaks in a reference become spaces
    /// except in the last column, where `;` is kept.
    public static func reportTable(_ entries: [ReportEntry]) -> String {
        let rows = entries.map { entry in
            [entry.smsID, entry.recipient, entry.status.rawValue, entry.updatedAt?.reportText ?? "", entry.reference]
                .map { $0.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ") }
                .joined(separator: ";")
        }
        return ([reportHeader] + rows).joined(separator: "\n")
    }

    // MARK: Helpers

    /// The trimmed body, after turning `ERROR <code>` into a thrown error.
    private static func nonErrorText(_ body: String) throws(GatewayAnswerError) -> String {
        let text = body.trimmingCharacters(in: .whitespacesAndNewlines)
        let words = text.split(whereSeparator: \.isWhitespace)
        guard words.first == "ERROR" else { return text }
        guard words.count == 2, words[1].allSatisfy(isASCIIDigit), let number = Int(words[1]),
            let code = GatewayErrorCode(rawValue: number)
        else { throw .malformed(body) }
        throw .gateway(code)
    }

    private static func deliveryReport(in text: Substring) -> DeliveryReport? {
        // Try the longest status first so "NOT DELIVERED" is never read as a malformed "NOT". The status is compared
        // scalar by scalar with only ASCII upper-cased: Unicode upper-casing would read `DELıVERED` or `BUﬀERED`
        // (whose upper case is longer than itself) as a status.
        let scalars = text.unicodeScalars
        for status in DeliveryStatus.allCases.sorted(by: { $0.rawValue.count > $1.rawValue.count }) {
            let expected = status.rawValue.unicodeScalars
            guard scalars.count >= expected.count,
                zip(scalars, expected).allSatisfy({ asciiUppercased($0) == $1 })
            else { continue }
            let rest = Substring(scalars.dropFirst(expected.count))
            if rest.isEmpty { return DeliveryReport(status: status) }
            guard rest.first?.isWhitespace == true,
                let date = GatewayDateTime(reportText: rest.trimmingCharacters(in: .whitespaces))
            else { return nil }
            return DeliveryReport(status: status, updatedAt: date)
        }
        return nil
    }

    private static func asciiUppercased(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        ("a"..."z").contains(scalar) ? Unicode.Scalar(scalar.value - 32)! : scalar
    }

    static func isIdentifier(_ text: some StringProtocol) -> Bool {
        !text.isEmpty && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }

    private static func isASCIIDigit(_ character: Character) -> Bool { character.isASCII && character.isWholeNumber }
}
