import ArgumentParser
import Foundation
import Gateway1601Simulator
import Logging
import ServiceLifecycle
import UnixSignals

/// `gateway1601-sim`: the 1601SMS gateway simulator as a standalone server.
@main
struct GatewaySimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway1601-sim",
        abstract: "A stand-in 1601SMS gateway with accounts, delivery callbacks and fault injection.",
        discussion: """
            Serves /module/gateway.php and /module/gatewayrapport.php like the real gateway, and a JSON control API \
            under /_sim (see Sources/Gateway1601Simulator/README.md). Without --config it starts with the sandbox \
            configuration: account sandbox/sandbox with 1,000,000 credits and common countries enabled.
            """
    )

    @Option(help: "Address to bind (default 127.0.0.1).") var host: String?
    @Option(help: "Port to bind; 0 picks a free one and logs it (default 8099).") var port: Int?
    @Option(help: "Seed of every random choice: faults, outcomes (default 1).") var seed: UInt64?
    @Option(help: "JSON file with a SimulatorConfiguration; keys left out keep the sandbox defaults.")
    var config: String?
    @Option(help: "Callback URL for the delivery reports of every account.") var callbackURL: String?
    @Option(help: "Added latency in milliseconds (lower bound when --latency-max-ms is given).") var latencyMs: Int?
    @Option(help: "Upper bound of a uniformly distributed latency in milliseconds.") var latencyMaxMs: Int?
    @Option(help: "Share (0…1) of calls answered ERROR 120.") var error120Rate: Double?
    @Option(help: "Share (0…1) of calls answered ERROR 150.") var error150Rate: Double?
    @Option(help: "Share (0…1) of calls that hang, then close without an answer.") var hangRate: Double?
    @Option(help: "How long a hanging call hangs, in milliseconds (default 30000).") var hangMs: Int?
    @Option(help: "Share (0…1) of calls whose connection is closed without an answer.") var dropRate: Double?
    @Option(help: "Share (0…1) of calls carried out whose connection is then closed without the answer.")
    var answerLossRate: Double?
    @Flag(help: "Start in maintenance: every call answers ERROR 150 until switched off via /_sim/faults.")
    var maintenance = false
    @Option(help: "Share (0…1) of delivery callbacks never sent.") var callbackLossRate: Double?
    @Option(help: "Share (0…1) of delivery callbacks sent twice.") var callbackDuplicateRate: Double?
    @Option(help: "Share (0…1) of messages whose intermediate callbacks arrive after the final one.")
    var callbackOutOfOrderRate: Double?
    @Option(help: "Relative weights of DELIVERED,NOT DELIVERED,REJECTED, e.g. 90,7,3.") var outcomes: String?
    @Option(help: "Milliseconds from sending to SUBMITTED, to BUFFERED, to the final status, e.g. 200,500,1000.")
    var deliveryDelaysMs: String?
    @Option(help: "Log level (trace, debug, info, notice, warning, error, critical).") var logLevel = "info"

    func run() async throws {
        var configuration = try baseConfiguration()
        func set<Value>(_ path: WritableKeyPath<SimulatorConfiguration, Value>, _ value: Value?) {
            if let value { configuration[keyPath: path] = value }
        }
        set(\.host, host)
        set(\.port, port)
        set(\.seed, seed)
        if let callbackURL {
            for index in configuration.accounts.indices { configuration.accounts[index].callbackURL = callbackURL }
        }
        set(\.faults.latencyMinimumMilliseconds, latencyMs)
        set(\.faults.latencyMaximumMilliseconds, latencyMaxMs ?? latencyMs)
        set(\.faults.gatewayErrorRate, error120Rate)
        set(\.faults.maintenanceErrorRate, error150Rate)
        set(\.faults.hangRate, hangRate)
        set(\.faults.hangMilliseconds, hangMs)
        set(\.faults.dropRate, dropRate)
        set(\.faults.answerLossRate, answerLossRate)
        if maintenance { configuration.faults.maintenance = true }
        set(\.faults.callbackLossRate, callbackLossRate)
        set(\.faults.callbackDuplicateRate, callbackDuplicateRate)
        set(\.faults.callbackOutOfOrderRate, callbackOutOfOrderRate)
        if let outcomes {
            let weights = try numbers(outcomes, count: 3, option: "--outcomes").map(Double.init)
            configuration.delivery.deliveredWeight = weights[0]
            configuration.delivery.notDeliveredWeight = weights[1]
            configuration.delivery.rejectedWeight = weights[2]
        }
        if let deliveryDelaysMs {
            let delays = try numbers(deliveryDelaysMs, count: 3, option: "--delivery-delays-ms")
            configuration.delivery.submittedAfterMilliseconds = delays[0]
            configuration.delivery.bufferedAfterMilliseconds = delays[1]
            configuration.delivery.finalAfterMilliseconds = delays[2]
        }

        var logger = Logger(label: "gateway1601-sim")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let simulator = GatewaySimulator(configuration: configuration, logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: [simulator], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
    }

    /// The sandbox, with the keys of `--config` laid over it.
    private func baseConfiguration() throws -> SimulatorConfiguration {
        guard let config else { return .sandbox }
        do {
            return try SimulatorConfiguration.sandbox.merging(json: Data(contentsOf: URL(fileURLWithPath: config)))
        } catch {
            throw ValidationError("cannot read --config \(config): \(error)")
        }
    }

    private func numbers(_ text: String, count: Int, option: String) throws -> [Int] {
        let values = text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard values.count == count else { throw ValidationError("\(option) takes \(count) comma-separated integers") }
        return values
    }
}
