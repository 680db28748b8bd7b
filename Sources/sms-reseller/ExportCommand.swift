import ArgumentParser
import Finance
import Foundation
import Logging
import PostgresLibpq
import ResellerCore

/// `sms-reseller export <dataset>`: the exports of `GET /exports/{dataset}` on the command line, straight from the
/// database, for operators and their bookkeepers. See docs/finance.md.
struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stream a finance export (CSV or JSON Lines) from the database to a file or standard output.",
        discussion: """
            Datasets: \(ExportDataset.allCases.map(\.rawValue).joined(separator: ", ")). Columns are documented in \
            docs/finance.md. While standard error is a terminal, a progress line shows rows, bytes and the rate.
            """)

    @OptionGroup var common: CommonOptions

    @Argument(help: "What to export.")
    var dataset: String

    @Option(help: "Start of the period (inclusive): an RFC 3339 time, or a date (midnight in --time-zone).")
    var from: String

    @Option(help: "End of the period (exclusive): an RFC 3339 time, or a date (midnight in --time-zone).")
    var to: String

    @Option(help: "IANA time zone: days are cut and times written in it (default UTC).")
    var timeZone = "UTC"

    @Option(help: "csv or jsonl (default csv).")
    var format = "csv"

    @Flag(help: "Compress with gzip.")
    var gzip = false

    @Option(
        help:
            "Write here (a file, or an existing folder for the default file name); default standard output. A file is written under a temporary name and renamed when complete."
    )
    var output: String?

    @Option(help: "Whose view: admin (default), reseller or sub-account (then --reseller / --sub-account name it).")
    var role = "admin"

    @Option(help: "Only this reseller (its tenant).")
    var reseller: String?

    @Option(help: "Only this sub-account.")
    var subAccount: String?

    @Option(help: "The account of a statement export.")
    var account: String?

    @Option(help: "Usage rows: comma-separated day|month, reseller, sub_account, country, status_class.")
    var groupBy = "day,sub_account,country"

    @Option(help: "Usage rows: posted (default) or accepted.")
    var view = "posted"

    func run() async throws {
        let logger = try common.bootstrapLogging()
        guard let dataset = ExportDataset(rawValue: dataset) else {
            throw ValidationError(
                "Unknown dataset '\(dataset)'; use one of \(ExportDataset.allCases.map(\.rawValue).joined(separator: ", "))."
            )
        }
        guard let format = ExportFormat(rawValue: format) else { throw ValidationError("--format is csv or jsonl.") }
        guard let view = UsageView(rawValue: view) else { throw ValidationError("--view is posted or accepted.") }
        var groups: [UsageDimension] = []
        for name in groupBy.split(separator: ",") {
            guard let dimension = UsageDimension(rawValue: String(name)) else {
                throw ValidationError("Unknown --group-by dimension '\(name)'.")
            }
            groups.append(dimension)
        }
        func id(_ text: String?, _ flag: String) throws -> UUID? {
            guard let text else { return nil }
            guard let id = UUID(uuidString: text) else { throw ValidationError("\(flag) must be a UUID.") }
            return id
        }
        let resellerID = try id(reseller, "--reseller")
        let subAccountID = try id(subAccount, "--sub-account")
        let accountID = try id(account, "--account")
        let scope: FinanceScope
        switch role {
        case "admin": scope = FinanceScope(role: .admin, resellerID: resellerID, subAccountID: subAccountID)
        case "reseller":
            guard resellerID != nil else { throw ValidationError("--role reseller needs --reseller.") }
            scope = FinanceScope(role: .reseller, resellerID: resellerID, subAccountID: subAccountID)
        case "sub-account":
            guard resellerID != nil, subAccountID != nil else {
                throw ValidationError("--role sub-account needs --reseller and --sub-account.")
            }
            scope = FinanceScope(role: .subAccount, resellerID: resellerID, subAccountID: subAccountID)
        default: throw ValidationError("--role is admin, reseller or sub-account.")
        }

        try await common.withCurrentSchema(applicationName: "sms-reseller export", logger: logger) { pool in
            guard try await TimeZoneNames(pool: pool).contains(timeZone) else {
                throw ExportRefused("--time-zone: '\(timeZone)' is not an IANA time zone name.")
            }
            let from = try await Self.instant(self.from, zone: timeZone, flag: "--from", pool: pool)
            let to = try await Self.instant(self.to, zone: timeZone, flag: "--to", pool: pool)
            guard from < to else { throw ExportRefused("--to must be after --from.") }
            let request = ExportRequest(
                dataset: dataset, format: format, scope: scope, from: from, to: to, timeZone: timeZone, gzip: gzip,
                accountID: accountID, groupBy: groups, view: view)
            let exporter = Exporter(pool: pool)
            do {
                try await exporter.prepare(request)
            } catch let refusal as DomainError {
                throw ExportRefused(refusal.detail ?? refusal.code)
            }
            let sink = try OutputSink(output: output, fileName: request.fileName)
            let bar = ProgressLine(label: dataset.rawValue)
            do {
                let summary = try await exporter.run(request, progress: { bar.update($0) }) { try sink.write($0) }
                try sink.commit()
                bar.finish(summary, destination: sink.destination)
            } catch {
                sink.discard()
                bar.abandon()
                throw error
            }
        }
    }

    /// An RFC 3339 time, or a `YYYY-MM-DD` date taken as midnight in `zone` (PostgreSQL's zone rules).
    static func instant(_ text: String, zone: String, flag: String, pool: PostgresPool) async throws -> Date {
        if let date = try? APIDates.date(from: text) { return date }
        guard text.wholeMatch(of: /[0-9]{4}-[0-9]{2}-[0-9]{2}/) != nil,
            let date = try? await pool.query("SELECT (\(text)::date::timestamp AT TIME ZONE \(zone))").first(
                as: Date.self)
        else { throw ValidationError("\(flag) must be an RFC 3339 time or a date (YYYY-MM-DD).") }
        return date
    }
}

/// A refusal found before anything is written: printed as `Error: …`, exit status 1.
private struct ExportRefused: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Where export bytes go: standard output, or a file written as `<name>.partial` and renamed once complete.
private final class OutputSink {
    let destination: String
    private let handle: FileHandle
    private let partial: String?

    init(output: String?, fileName: String) throws {
        guard var path = output, path != "-" else {
            destination = "standard output"
            handle = .standardOutput
            partial = nil
            return
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            path = (path as NSString).appendingPathComponent(fileName)
        }
        let partial = path + ".partial"
        guard FileManager.default.createFile(atPath: partial, contents: nil) else {
            throw ValidationError("Cannot write \(partial).")
        }
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: partial))
        destination = path
        self.partial = partial
    }

    func write(_ bytes: [UInt8]) throws {
        try handle.write(contentsOf: bytes)
    }

    func commit() throws {
        guard let partial else { return }
        try handle.close()
        if FileManager.default.fileExists(atPath: destination) {
            try FileManager.default.removeItem(atPath: destination)
        }
        try FileManager.default.moveItem(atPath: partial, toPath: destination)
    }

    func discard() {
        guard let partial else { return }
        try? handle.close()
        try? FileManager.default.removeItem(atPath: partial)
    }
}

/// A one-line progress display on standard error, redrawn at most ten times a second, only when standard error is a
/// terminal.
private final class ProgressLine {
    private let label: String
    private let enabled = isatty(STDERR_FILENO) == 1
    private let started = ContinuousClock.now
    private var drawn = ContinuousClock.now - .seconds(1)

    init(label: String) {
        self.label = label
    }

    func update(_ summary: ExportSummary) {
        guard enabled, ContinuousClock.now - drawn >= .milliseconds(100) else { return }
        drawn = ContinuousClock.now
        draw(summary, final: false)
    }

    func finish(_ summary: ExportSummary, destination: String) {
        if enabled { draw(summary, final: true) }
        FileHandle.standardError.write(
            Data("\(label): \(summary.rows) rows, \(summary.bytes) bytes to \(destination)\n".utf8))
    }

    func abandon() {
        if enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private func draw(_ summary: ExportSummary, final: Bool) {
        let seconds = max((ContinuousClock.now - started).inSeconds, 0.001)
        let line = String(
            format: "\r\u{1B}[2K%@  %@ rows  %@  %@ rows/s  %.1f s", label, Self.grouped(summary.rows),
            Self.size(summary.bytes), Self.grouped(Int(Double(summary.rows) / seconds)), seconds)
        FileHandle.standardError.write(Data((line + (final ? "\n" : "")).utf8))
    }

    static func grouped(_ value: Int) -> String {
        let digits = Array(String(value))
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        return out
    }

    static func size(_ bytes: Int) -> String {
        let units = ["B", "KB", "MB", "GB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }
}
