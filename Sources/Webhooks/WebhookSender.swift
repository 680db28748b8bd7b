import AsyncHTTPClient
import Crypto
import Foundation
import Gateway1601
import Logging
import NIOCore
import NIOHTTP1
import PostgresLibpq
import ResellerCore
import ServiceLifecycle
import Synchronization

/// The signature of a webhook request (docs/webhooks.md, "Verifying a request"): `v1=` and the lowercase hex HMAC-SHA256, keyed with the
/// endpoint's secret (its UTF-8 bytes), of `<Webhook-Id>.<Webhook-Timestamp>.<body>`; one `v1=` per valid secret,
/// comma-separated, while a rotated secret is still valid.
package enum WebhookSignature {
    package static func hex(secret: String, id: String, timestamp: Int, body: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data("\(id).\(timestamp).\(body)".utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return mac.map { String(format: "%02x", $0) }.joined()
    }

    package static func header(secrets: [String], id: String, timestamp: Int, body: String) -> String {
        secrets.map { "v1=" + hex(secret: $0, id: id, timestamp: timestamp, body: body) }.joined(separator: ",")
    }

    /// The receiver's check, as docs/webhooks.md describes it: the timestamp within `tolerance` of `now`, and one of the
    /// header's `v1=` values equal (compared in constant time) to the signature computed with `secret`.
    package static func verify(
        header: String, secret: String, id: String, timestamp: String, body: String, now: Date = Date(),
        tolerance: TimeInterval = 300
    ) -> Bool {
        guard let seconds = Int(timestamp), abs(now.timeIntervalSince1970 - Double(seconds)) <= tolerance else {
            return false
        }
        let expected = Array(hex(secret: secret, id: id, timestamp: seconds, body: body).utf8)
        return header.split(separator: ",").contains { part in
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("v1=") else { return false }
            let given = Array(trimmed.dropFirst(3).utf8)
            guard given.count == expected.count else { return false }
            return zip(given, expected).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
        }
    }
}

/// How the webhook sender runs; the application's configuration says what each means and sets its default.
package struct WebhookSenderSettings: Sendable {
    package var pollInterval: Duration = .seconds(1)
    /// A receiver that has not answered (2xx) within this is a failed attempt.
    package var timeout: Duration = .seconds(10)
    package var batchSize: Int = 50
    /// Requests in flight at once, per instance.
    package var concurrency: Int = 16
    /// Requests in flight at once to one endpoint (or one send's callback URL), all instances together.
    package var perEndpoint: Int = 4
    /// Full jitter, doubling from `base`, at most `cap`: with the defaults a delivery gets roughly 80 attempts in the
    /// three days before it is given up (`webhook_delivery.give_up_at`).
    package var backoff = RetryBackoff(base: .seconds(10), cap: .seconds(3600))
    /// An endpoint whose every attempt has failed for this long is disabled.
    package var disableAfter: Duration = .seconds(3 * 86_400)
    /// Finished deliveries, their attempts and events without deliveries are forgotten after this (so replay reaches
    /// this far back).
    package var retention: Duration = .seconds(30 * 86_400)
    package var worker: String = workerName()

    package init() {}

    /// At least twice the timeout, so that an attempt is recorded before another sender may take the delivery over.
    package var lease: Duration { max(.seconds(60), timeout * 3) }
}

/// Delivers webhook events: the worker side of the webhook outbox (`0009_webhooks.sql`).
///
/// Whenever a request slot is free (at most `concurrency` in flight) and at every poll interval it claims due deliveries
/// fairly between endpoints (``WebhookDeliveryRepository/claim(limit:perEndpoint:lease:worker:)``) and POSTs each with
/// `Webhook-Id`, `Webhook-Timestamp` and `Webhook-Signature` (``WebhookSignature``); a delivery in the `1601` format is
/// instead the upstream's unsigned callback GET (``legacyURL(_:)``). A 2xx whose whole answer (at most ``bodyLimit`` of
/// its body read) came within the timeout is a success; anything else (another status, a redirect — never
/// followed —, a timeout, a connection error, an address the SSRF guard refuses) is a failed attempt, retried with
/// ``RetryBackoff`` until the delivery's give-up time. Delivery is at least once: a sender that dies after the receiver
/// got the request and before it recorded the answer leaves the delivery to be sent again after the lease; receivers
/// deduplicate on `Webhook-Id`.
///
/// The SSRF guard runs at every attempt, on the addresses the host resolves to then (see ``WebhookAddressGuard``). An
/// `http` URL is called on the checked address itself (with the original `Host` header), so DNS cannot change between
/// the check and the connection. An `https` URL with a host name is called by name, for certificate checking; the
/// client resolves it again, so a DNS answer that changes within that instant (rebinding with a zero TTL) is the one
/// gap left.
package final class WebhookSender: Service, Sendable {
    package let repository: WebhookDeliveryRepository
    package let settings: WebhookSenderSettings
    package let logger: Logger
    package let client: HTTPClient
    private let stopping = Atomic<Bool>(false)

    /// `client` should come from ``WebhookHTTPClient`` (no redirects followed); its owner shuts it down.
    package init(pool: PostgresPool, client: HTTPClient, settings: WebhookSenderSettings, logger: Logger) {
        self.repository = WebhookDeliveryRepository(pool: pool)
        self.settings = settings
        var logger = logger
        logger[metadataKey: "worker"] = "\(settings.worker)"
        self.logger = logger
        self.client = client
    }

    /// Keeps up to `concurrency` attempts in flight: it claims as many due deliveries as there are free slots, again
    /// whenever an attempt ends and at every poll interval, so one attempt that takes its whole timeout holds one slot,
    /// never a round.
    package func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Bool.self) { group in
                var inFlight = 0
                var ticking = false
                var claims = 0
                while !self.stopping.load(ordering: .relaxed), !Task.isCancelled {
                    if claims % 600 == 0 { await self.purge() }
                    let free = self.settings.concurrency - inFlight
                    if free > 0 {
                        claims += 1
                        let (claimed, guardrail) = await self.claim(limit: min(self.settings.batchSize, free))
                        for delivery in claimed {
                            inFlight += 1
                            group.addTask {
                                await self.deliver(delivery, guardrail: guardrail)
                                return true
                            }
                        }
                        // Every slot taken by this claim: more may be due as soon as one frees.
                        if !claimed.isEmpty && claimed.count == free { continue }
                    }
                    if !ticking {
                        ticking = true
                        group.addTask {
                            try? await Task.sleep(for: self.settings.pollInterval)
                            return false
                        }
                    }
                    // An attempt ended (a slot is free) or the poll interval passed.
                    switch await group.next() {
                    case true?: inFlight -= 1
                    case false?: ticking = false
                    case nil: break
                    }
                }
                // Stopping: the attempts in flight end (each within the timeout) and are recorded.
                await group.waitForAll()
            }
        } onGracefulShutdown: {
            self.stopping.store(true, ordering: .relaxed)
        }
    }

    /// Forgets what is past the retention, in bounded steps (see ``WebhookDeliveryRepository/purge(olderThan:limit:)``).
    package func purge() async {
        do {
            var total = (deliveries: 0, events: 0)
            while true {
                let step = try await repository.purge(olderThan: settings.retention, limit: 1000)
                total = (total.deliveries + step.deliveries, total.events + step.events)
                if step.deliveries < 1000 && step.events < 1000 { break }
            }
            if total.deliveries + total.events > 0 {
                logger.info(
                    "webhook history purged",
                    metadata: ["deliveries": "\(total.deliveries)", "events": "\(total.events)"])
            }
        } catch let error as PostgresError where error.sqlState == "42P01" {
            logger.debug("webhook sender waits for the schema", metadata: ["error": "\(error)"])
        } catch {
            if Task.isCancelled || error is CancellationError { return }
            logger.warning("webhook purge failed", metadata: ["error": "\(error)"])
        }
    }

    /// One round (for tests and tools): claim up to `batchSize`, attempt each (at most `concurrency` at a time), record.
    /// Whether the batch was full (more may be due).
    @discardableResult
    package func runOnce() async -> Bool {
        let (claimed, guardrail) = await claim(limit: settings.batchSize)
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for delivery in claimed {
                if running >= settings.concurrency {
                    await group.next()
                    running -= 1
                }
                running += 1
                group.addTask { await self.deliver(delivery, guardrail: guardrail) }
            }
        }
        return !claimed.isEmpty && claimed.count == settings.batchSize
    }

    /// Up to `limit` due deliveries, claimed fairly (``WebhookDeliveryRepository/claim(limit:perEndpoint:lease:worker:)``),
    /// with the SSRF guard as the admin's settings are now. None when the claim failed (logged).
    private func claim(limit: Int) async -> ([ClaimedWebhookDelivery], WebhookAddressGuard) {
        do {
            let claimed = try await repository.claim(
                limit: limit, perEndpoint: settings.perEndpoint, lease: settings.lease, worker: settings.worker)
            guard !claimed.isEmpty else { return ([], WebhookAddressGuard()) }
            let guardrail = WebhookAddressGuard(allowed: try await repository.allowedRanges().compactMap(IPRange.init))
            return (claimed, guardrail)
        } catch let error as PostgresError where error.sqlState == "42P01" {
            logger.debug("webhook sender waits for the schema", metadata: ["error": "\(error)"])
        } catch {
            if Task.isCancelled || error is CancellationError { return ([], WebhookAddressGuard()) }
            logger.warning("webhook claim failed", metadata: ["error": "\(error)"])
        }
        return ([], WebhookAddressGuard())
    }

    /// One attempt of a claimed delivery, recorded.
    private func deliver(_ delivery: ClaimedWebhookDelivery, guardrail: WebhookAddressGuard) async {
        let result = await attempt(delivery, guardrail: guardrail)
        do {
            let outcome = try await repository.record(
                result, worker: settings.worker, disableAfter: settings.disableAfter)
            if outcome != .delivered {
                logger.info(
                    "webhook attempt failed",
                    metadata: [
                        "delivery": "\(delivery.deliveryID)", "attempt": "\(delivery.attempt)",
                        "outcome": "\(outcome)", "error": "\(result.error ?? "")",
                    ])
            }
        } catch {
            logger.warning(
                "webhook attempt not recorded", metadata: ["delivery": "\(delivery.deliveryID)", "error": "\(error)"])
        }
    }

    /// The old-style request's URL: the registered one with the upstream's callback parameters appended exactly as the
    /// upstream (and our simulator) appends them, after `&` when the URL already has a query. Nil when the event is
    /// not a delivery notification.
    package static func legacyURL(_ delivery: ClaimedWebhookDelivery) -> String? {
        guard let gatewayID = delivery.gatewayID, let word = delivery.gatewayStatus,
            let status = DeliveryStatus(rawValue: word),
            let statusAt = delivery.statusAt
        else { return nil }
        let notification = DeliveryNotification(
            smsID: String(gatewayID), timestamp: GatewayDateTime(statusAt, in: GatewayDateTime.gatewayTimeZone),
            status: status,
            reference: delivery.reference)
        return delivery.url + (delivery.url.contains("?") ? "&" : "?") + FormEncoding.encode(notification.parameters)
    }

    /// One request of `delivery` (a signed POST, or the old-style GET), checked by `guardrail` first.
    package func attempt(_ delivery: ClaimedWebhookDelivery, guardrail: WebhookAddressGuard) async
        -> WebhookAttemptResult
    {
        let started = ContinuousClock.now
        let attemptedAt = Date()
        var result = WebhookAttemptResult(
            deliveryID: delivery.deliveryID, attempt: delivery.attempt, attemptedAt: attemptedAt, statusCode: nil,
            latencyMilliseconds: 0,
            error: nil, retryDelay: settings.backoff.delay(afterAttempt: delivery.attempt))
        do {
            var requestURL = delivery.url
            if delivery.format == .legacy1601 {
                guard let url = Self.legacyURL(delivery) else {
                    result.error = "the event is not a delivery notification"
                    return result
                }
                requestURL = url
            }
            let (target, addresses) = try await guardrail.check(url: requestURL)
            var url: String
            var hostHeader: String?
            let defaultPort = target.scheme == "https" ? 443 : 80
            // The Host header names the host as registered.
            let authority = target.literal?.isV4 == false ? "[\(target.host)]" : target.host
            let portSuffix = target.port == defaultPort ? "" : ":\(target.port)"
            if target.scheme == "http" || target.literal != nil {
                // Connect to the address that was checked, not to whatever the name resolves to a moment later.
                url = "\(target.scheme)://\(addresses[0].urlHost)\(portSuffix)\(target.pathAndQuery)"
                hostHeader = "\(authority)\(portSuffix)"
            } else {
                url = "\(target.scheme)://\(target.host)\(portSuffix)\(target.pathAndQuery)"
            }
            let timestamp = Int(attemptedAt.timeIntervalSince1970)
            let id = delivery.eventID.uuidString.lowercased()
            var request = HTTPClientRequest(url: url)
            if let hostHeader { request.headers.replaceOrAdd(name: "Host", value: hostHeader) }
            request.headers.add(name: "User-Agent", value: "sms-reseller-webhooks/1")
            request.headers.add(name: "Webhook-Id", value: id)
            switch delivery.format {
            case .legacy1601:
                // The upstream's callbacks are unsigned GETs; Webhook-Id is kept for deduplication.
                request.method = .GET
            case .signed:
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.headers.add(name: "Webhook-Timestamp", value: "\(timestamp)")
                request.headers.add(
                    name: "Webhook-Signature",
                    value: WebhookSignature.header(
                        secrets: [delivery.secret] + (delivery.previousSecret.map { [$0] } ?? []), id: id,
                        timestamp: timestamp, body: delivery.body))
                request.body = .bytes(ByteBuffer(string: delivery.body))
            }
            // One deadline for the whole exchange, the answer's body included: the client's own deadline ends with the
            // response head, and a receiver that sends its head and then nothing must not hold the attempt.
            let deadline = NIODeadline.now() + .nanoseconds(Int64(settings.timeout.inSeconds * 1e9))
            guard
                let status = try await Self.exchange(
                    request, client: client, deadline: deadline, within: settings.timeout)
            else { throw HTTPClientError.deadlineExceeded }
            result.statusCode = status
            if !(200..<300).contains(status) {
                result.error =
                    (300..<400).contains(status)
                    ? "answered \(status) (redirects are not followed)"
                    : "answered \(status)"
            }
        } catch let refusal as WebhookAddressRefusal {
            result.error = "refused: \(refusal.reason)"
        } catch let error as HTTPClientError
            where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout
        {
            result.error = "no answer within \(settings.timeout)"
        } catch {
            result.error = "\(error)"
        }
        result.latencyMilliseconds = Int((ContinuousClock.now - started).inSeconds * 1000)
        return result
    }

    /// The most of an answer's body that is read (and dropped); past it the connection is closed instead of reused.
    package static let bodyLimit = 64 * 1024

    /// `request`'s status code once its whole answer (at most ``bodyLimit`` of its body) is in; nil when that took
    /// longer than `timeout`. The exchange runs as a child task that is cancelled at the deadline, which makes the client
    /// close the connection.
    static func exchange(
        _ request: HTTPClientRequest, client: HTTPClient, deadline: NIODeadline, within timeout: Duration
    )
        async throws -> Int?
    {
        try await withThrowingTaskGroup(of: Int?.self) { group in
            group.addTask {
                let response = try await client.execute(request, deadline: deadline)
                var read = 0
                for try await chunk in response.body {
                    read += chunk.readableBytes
                    if read > bodyLimit { break }
                }
                return Int(response.status.code)
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }
}

/// The webhook sender's own HTTP client (never the upstream's: other timeouts, and redirects must never be followed),
/// closed when the application stops.
package struct WebhookHTTPClient: Service {
    package let client: HTTPClient

    /// `timeout` is the sender's: no read on a connection waits longer.
    package init(timeout: Duration = WebhookSenderSettings().timeout) {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(
            connect: .seconds(5), read: .nanoseconds(Int64(timeout.inSeconds * 1e9)))
        configuration.connectionPool = .init(idleTimeout: .seconds(30))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    package func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}
