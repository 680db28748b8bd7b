import AsyncHTTPClient
import Foundation
import Gateway1601
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// Moves sent messages through SUBMITTED → BUFFERED → final, releases due outbox messages, and sends the delivery
/// callbacks, with the configured callback faults. Runs as a service next to the HTTP server.
final class DeliveryWorker: Service, Sendable {
    let engine: SimulatorEngine
    let logger: Logger
    /// Sent messages with the engine epoch they were accepted in.
    private let jobs: AsyncStream<(SimulatedMessage, Int)>
    private let submit: AsyncStream<(SimulatedMessage, Int)>.Continuation

    init(engine: SimulatorEngine, logger: Logger) {
        self.engine = engine
        self.logger = logger
        (jobs, submit) = AsyncStream.makeStream(of: (SimulatedMessage, Int).self)
    }

    /// Starts the delivery progress of messages just sent in engine epoch `epoch`.
    func enqueue(_ messages: [SimulatedMessage], epoch: Int) {
        for message in messages { submit.yield((message, epoch)) }
    }

    /// Works until graceful shutdown or cancellation, then drops pending deliveries and returns.
    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await withThrowingDiscardingTaskGroup { group in
                    group.addTask { try await self.releaseOutbox() }
                    for await (message, epoch) in self.jobs {
                        group.addTask { try await self.progress(message, epoch: epoch) }
                    }
                }
            }
        } catch is CancellationError {
            return
        }
    }

    private func releaseOutbox() async throws {
        let interval = Duration.milliseconds(max(10, engine.initial.outboxCheckMilliseconds))
        while true {
            try await Task.sleep(for: interval)
            let (due, epoch) = engine.releaseDueMessages(now: Date())
            enqueue(due, epoch: epoch)
        }
    }

    /// One message's automatic delivery; every random choice is drawn up front.
    private func progress(_ message: SimulatedMessage, epoch: Int) async throws {
        let (delivery, faults) = engine.read { ($0.delivery, $0.faults) }
        guard delivery.automatic else { return }
        let outcome = engine.drawOutcome()
        let outOfOrder = engine.random.chance(faults.callbackOutOfOrderRate)
        let steps: [(DeliveryStatus, Int)] = [
            (.submitted, delivery.submittedAfterMilliseconds),
            (.buffered, delivery.bufferedAfterMilliseconds),
            (outcome, delivery.finalAfterMilliseconds),
        ]
        var held: [StatusChange] = []
        for (status, delay) in steps {
            try await Task.sleep(for: .milliseconds(max(0, delay)))
            guard let change = engine.changeStatus(of: message.id, to: status, at: Date(), force: false, epoch: epoch)
            else { return }
            if outOfOrder, !status.isFinal {
                held.append(change)
                continue
            }
            await callback(change, injectFaults: true)
        }
        for change in held { await callback(change, injectFaults: true) }
    }

    /// Sends the callback of `change` (if its account has a URL); with `injectFaults`, it may be lost or duplicated.
    /// Returns what was attempted.
    @discardableResult
    func callback(_ change: StatusChange, injectFaults: Bool) async -> [SentCallback] {
        guard let base = change.callbackURL, let updated = change.message.statusUpdatedAt else { return [] }
        let faults = engine.read(\.faults)
        if injectFaults, engine.random.chance(faults.callbackLossRate) {
            logger.debug("callback suppressed", metadata: ["smsid": "\(change.message.id)"])
            return []
        }
        let copies = injectFaults && engine.random.chance(faults.callbackDuplicateRate) ? 2 : 1
        let notification = DeliveryNotification(
            smsID: change.message.id, timestamp: GatewayDateTime(updated, in: engine.timeZone),
            status: change.message.status, reference: change.message.reference
        )
        let url = base + (base.contains("?") ? "&" : "?") + FormEncoding.encode(notification.parameters)
        var attempts: [SentCallback] = []
        for copy in 0..<copies {
            var record = SentCallback(
                messageID: change.message.id, url: url, status: change.message.status, duplicate: copy > 0,
                httpStatus: nil, error: nil, sentAt: Date()
            )
            do {
                let response = try await HTTPClient.shared.execute(
                    HTTPClientRequest(url: url),
                    timeout: .milliseconds(Int64(engine.initial.callbackTimeoutMilliseconds)),
                    logger: logger
                )
                _ = try? await response.body.collect(upTo: 64 << 10)
                record.httpStatus = Int(response.status.code)
            } catch {
                record.error = "\(error)"
                logger.debug("callback failed", metadata: ["url": "\(url)", "error": "\(error)"])
            }
            let finished = record
            engine.update { state in
                state.callbacks.append(finished)
                if state.callbacks.count > SimulatorEngine.logLimit { state.callbacks.removeFirst() }
            }
            attempts.append(record)
        }
        return attempts
    }
}
