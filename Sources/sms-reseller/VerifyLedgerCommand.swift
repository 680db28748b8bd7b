import ArgumentParser
import Foundation
import Ledger
import Messaging

/// `sms-reseller verify-ledger`: every invariant of the books checked against the database, one line per check, and
/// a non-zero exit on any violation. See docs/ledger.md, "Checked invariants".
struct VerifyLedger: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-ledger",
        abstract: "Check every invariant of the ledger and of the messages' money against the database.",
        discussion: """
            Prints one line per check: `ok` or `VIOLATED`, its name, the number of offenders and the first of them, and \
            what the rule is; then `invariants=ok` or `invariants=violated`. Exits 1 when any check fails. Reads one \
            consistent snapshot and writes nothing: it refuses a database with migrations of this build not applied \
            (run `sms-reseller migrate` first), and runs on a standby.
            """)

    @OptionGroup var common: CommonOptions

    func run() async throws {
        let logger = try common.bootstrapLogging()
        let results = try await common.withCurrentSchema(
            applicationName: "sms-reseller verify-ledger", logger: logger
        ) { pool in
            try await LedgerVerifier(pool: pool, checks: LedgerVerifier.ledgerChecks + MessageMoneyChecks.checks)
                .verify()
        }
        let width = results.map(\.name.count).max() ?? 0
        for result in results {
            let name = result.name.padding(toLength: width, withPad: " ", startingAt: 0)
            var line = "\(result.holds ? "ok      " : "VIOLATED") \(name) \(result.count)"
            if !result.sample.isEmpty { line += " (\(result.sample.joined(separator: ", ")))" }
            print(line + " — " + result.rule)
        }
        let violated = results.filter { !$0.holds }
        print(
            violated.isEmpty ? "invariants=ok" : "invariants=violated (\(violated.map(\.name).joined(separator: ",")))")
        if !violated.isEmpty { throw ExitCode(1) }
    }
}
