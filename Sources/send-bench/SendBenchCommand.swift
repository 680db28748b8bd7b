import ArgumentParser
import Foundation
import Logging

/// Prints send rates over HTTP and the bulk send time; see scripts/bench-send.sh.
@main
struct SendBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send-bench",
        abstract: "Sends over HTTP (hot and spread), one bulk send, and the dispatcher's drain rate.")

    @Option(help: "libpq URL of an empty scratch database (it is migrated and filled).")
    var databaseURL: String

    @Option(help: "Concurrent HTTP clients.")
    var clients = 32

    @Option(help: "Seconds per measured phase.")
    var seconds = 10

    @Option(help: "Recipients of the bulk send.")
    var bulkRecipients = 10_000

    @Option(help: "Database connections of the application.")
    var poolSize = 40

    func run() async throws {
        var logger = Logger(label: "send-bench")
        logger.logLevel = .warning
        var options = SendBenchmark.Options(databaseURL: databaseURL)
        options.clients = clients
        options.seconds = seconds
        options.bulkRecipients = bulkRecipients
        options.databasePoolMaximum = poolSize
        try await SendBenchmark.run(options, logger: logger)
    }
}
