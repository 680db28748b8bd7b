import ArgumentParser
import Foundation
import Invoicing
import ResellerCore

/// `sms-reseller invoice-run`: the monthly run of one issuer from the command line (a cron job on the first of the
/// month, or a finance person's terminal). See docs/invoices.md, "The monthly run".
struct InvoiceRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invoice-run",
        abstract: "Issue an issuer's invoices for a month: usage of postpaid customers, purchases of prepaid ones.",
        discussion: """
            The same run as `POST /invoice-runs`. Idempotent: running it again issues nothing new. Prints one line per \
            document (number, customer, total) and per customer or purchase left out (with the reason). Exits 1 when \
            the issuer has no profile or the month has not begun.
            """)

    @OptionGroup var common: CommonOptions

    @Option(help: "`platform`, or the id of a reseller invoicing its sub-accounts.")
    var issuer: String = "platform"

    @Option(help: "The month in the issuer's time zone, YYYY-MM.")
    var month: String

    @Option(help: "`preview` (writes nothing), `draft` or `issue`.")
    var mode: String = "issue"

    func validate() throws {
        guard issuer == "platform" || UUID(uuidString: issuer) != nil else {
            throw ValidationError("--issuer must be `platform` or a reseller id")
        }
        guard month.wholeMatch(of: /[0-9]{4}-(0[1-9]|1[0-2])/) != nil else {
            throw ValidationError("--month must be YYYY-MM")
        }
        guard InvoiceRun.Mode(rawValue: mode) != nil else {
            throw ValidationError("--mode must be preview, draft or issue")
        }
    }

    func run() async throws {
        let logger = try common.bootstrapLogging()
        let parts = month.split(separator: "-").compactMap { Int($0) }
        let issuerID = issuer == "platform" ? nil : UUID(uuidString: issuer)
        let mode = InvoiceRun.Mode(rawValue: mode)!
        let outcome: InvoiceRun.Outcome
        do {
            outcome = try await common.withMigratedDatabase(
                applicationName: "sms-reseller invoice-run", logger: logger
            ) { pool, _, _ in
                try await InvoiceRun.run(
                    issuer: issuerID, year: parts[0], month: parts[1], mode: mode, by: .cli, pool: pool)
            }
        } catch let error as DomainError {
            FileHandle.standardError.write(Data("invoice-run: \(error.detail ?? error.code)\n".utf8))
            throw ExitCode(1)
        }
        print("period \(outcome.periodStart) to \(outcome.periodEnd), mode \(mode.rawValue)")
        for document in outcome.documents {
            print(
                "\(document.number ?? "(\(document.status.rawValue))")\t\(document.customer.legalName)\t\(document.total) \(document.currency)"
            )
        }
        for skip in outcome.skipped {
            print("skipped\t\(skip.customerName)\t\(skip.reason)\t\(skip.detail)")
        }
        print("documents=\(outcome.documents.count) skipped=\(outcome.skipped.count)")
    }
}
