import Foundation
import Gateway1601
import HTTPTypes
import Hummingbird
import Ledger
import Logging
import Messaging
import NIOCore
import PostgresLibpq
import ResellerCore
import SMSCore

/// A plain-text answer of the 1601-compatible endpoint. Thrown to end a request early.
package struct GatewayReply: Error, Sendable {
    package var text: String
    package var status: HTTPResponse.Status = .ok
    package var headers: HTTPFields = [:]

    package init(_ text: String, status: HTTPResponse.Status = .ok) {
        self.text = text
        self.status = status
    }

    /// `ERROR <code>`, with HTTP 200 as the upstream answers it.
    package static func error(_ code: GatewayErrorCode) -> GatewayReply { GatewayReply(GatewayAnswer.error(code)) }

    package var response: Response {
        var fields = headers
        fields[.contentType] = "text/plain; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// How the 1601-compatible endpoint runs; the application's configuration sets it.
package struct GatewayEndpointSettings: Sendable {
    /// Proxies whose `X-Forwarded-For` names the client (for the per-address password limits); none by default.
    package var trustedProxies: [IPRange] = []
    /// The largest form body read (10 000 numbers fit many times).
    package var maximumBodyBytes: Int = 1 << 20
    package var throttle: LoginThrottleSettings = LoginThrottleSettings()

    package init(
        trustedProxies: [IPRange] = [], maximumBodyBytes: Int = 1 << 20,
        throttle: LoginThrottleSettings = LoginThrottleSettings()
    ) {
        self.trustedProxies = trustedProxies
        self.maximumBodyBytes = maximumBodyBytes
        self.throttle = throttle
    }

    /// `TRUSTED_PROXIES` as ranges; a text that is not a CIDR range is a ``ConfigurationError``.
    package static func ranges(_ texts: [String]) throws -> [IPRange] {
        try texts.map { text in
            guard let range = IPRange(text) else {
                throw ConfigurationError("TRUSTED_PROXIES: \(text) is not a CIDR range such as 10.0.0.0/8")
            }
            return range
        }
    }
}

/// `/module/gateway.php` and `/module/gatewayrapport.php`: the upstream's own HTTP API (`Sources/Gateway1601/PROTOCOL.md`,
/// `docs/gateway-1601.md`), offered to sub-accounts with their `klantuser`/`klantpwd`, so that a script written
/// for the upstream works by changing only the host. Everything behind it is the REST API's machinery: the same send
/// planner and checks, prices, ledger reservations, dispatcher, cancellation and reports.
///
/// Served by these routes rather than by generated handlers: the answers are the upstream's text, in its order of
/// checks, and the raw bytes of every parameter must be seen to refuse a broken encoding (`openapi.yaml` documents the
/// operations; the generator is told to skip them).
package struct GatewayEndpoint: Sendable {
    package let pool: PostgresPool
    package let sending: Sending
    package let authenticator: GatewayAuthenticator
    package let settings: GatewayEndpointSettings
    package let metrics: ServiceMetrics
    package let logger: Logger

    package init(
        pool: PostgresPool, sending: Sending, passwordIterations: Int, settings: GatewayEndpointSettings,
        hashing: PasswordHashing = PasswordHashing(), metrics: ServiceMetrics,
        logger: Logger
    ) {
        self.pool = pool
        self.metrics = metrics
        self.sending = sending
        self.authenticator = GatewayAuthenticator(
            pool: pool, throttle: LoginThrottle(settings: settings.throttle), hashing: hashing,
            decoyIterations: passwordIterations)
        self.settings = settings
        self.logger = logger
    }

    package func register<Context: RemoteAddressRequestContext>(on router: Router<Context>) {
        for path in [GatewayCall.gatewayPath, GatewayCall.reportPath] {
            router.get(RouterPath(path)) { request, context in await self.handle(request, context: context) }
            router.post(RouterPath(path)) { request, context in await self.handle(request, context: context) }
        }
    }

    package func handle(_ request: Request, context: some RemoteAddressRequestContext) async -> Response {
        let started = ContinuousClock.now
        let response = await answer(request, context: context)
        // One operation name per path, like the generated operations' (`/metrics`).
        metrics.recordRequest(
            operation: request.uri.path == GatewayCall.reportPath ? "gateway1601Report" : "gateway1601",
            status: Int(response.status.code),
            duration: ContinuousClock.now - started)
        return response
    }

    private func answer(_ request: Request, context: some RemoteAddressRequestContext) async -> Response {
        do {
            let form = try await GatewayForm.read(request, maximumBodyBytes: settings.maximumBodyBytes)
            let address = Self.clientAddress(
                peer: context.remoteAddress, forwardedFor: request.headers[values: .xForwardedFor],
                trustedProxies: settings.trustedProxies)
            let reply =
                request.uri.path == GatewayCall.reportPath
                ? try await deliveryStatus(form, address: address)
                : try await gateway(form, address: address)
            return reply.response
        } catch let reply as GatewayReply {
            return reply.response
        } catch {
            // The database or something else of ours failed: the upstream's "problem with our gateway", which its
            // clients retry. Nothing was accepted (an accepted send answers only after its commit).
            context.logger.error(
                "1601-compatible request failed", metadata: ["error": "\(loggableDescription(of: error))"])
            return GatewayReply.error(.gatewayProblem).response
        }
    }

    /// `gateway.php`: credentials, then the action (a send when there is none).
    private func gateway(_ form: GatewayForm, address: String) async throws -> GatewayReply {
        let account = try await authenticate(form, address: address)
        switch form["action"] {
        case .absent:
            return try await send(form, account: account)
        case .malformed:
            throw GatewayReply("unknown action", status: .badRequest)
        case .text(let action):
            switch action.lowercased() {
            case "": return try await send(form, account: account)
            case "credits": return try await credits(account)
            case "rapport": return try await reportTable(form, account: account)
            case "verwijderbericht": return try await removeFromOutbox(form, account: account)
            case "verwijderoutbox": return try await cancel(.allScheduled, account: account)
            case let other: throw GatewayReply("unknown action \(other)", status: .badRequest)
            }
        }
    }

    /// 100, 101, then the password (plain or SHA-1 hex), then the account's status (104, 115, 116).
    package func authenticate(_ form: GatewayForm, address: String) async throws -> SubAccountRecord {
        if form.isEmpty("klantuser") { throw GatewayReply.error(.usernameEmpty) }
        if form.isEmpty("klantpwd") { throw GatewayReply.error(.passwordEmpty) }
        guard let username = form.text("klantuser"), let password = form.text("klantpwd") else {
            throw GatewayReply.error(.invalidCredentials)
        }
        switch try await authenticator.authenticate(username: username, password: password, address: address) {
        case .authenticated(let account):
            return account
        case .refused(let code):
            throw GatewayReply.error(code)
        case .throttled(let wait):
            // The answer a wrong password gets, so that scripts stop as they would; HTTP says why and for how long.
            var reply = GatewayReply(GatewayAnswer.error(.invalidCredentials), status: .tooManyRequests)
            reply.headers[.retryAfter] = String(
                max(1, wait.components.seconds + (wait.components.attoseconds > 0 ? 1 : 0)))
            // Counted as http_requests_total{operation="gateway1601",status="429"}; a log line per refusal would let an
            // attack flood the log.
            logger.debug("1601-compatible login refused: too many wrong passwords", metadata: ["address": "\(address)"])
            throw reply
        case .busy:
            // Too many slow password checks in progress: the upstream's "problem with our gateway", which its clients
            // retry; nothing was checked or counted. HTTP says to retry in a moment.
            var reply = GatewayReply(GatewayAnswer.error(.gatewayProblem), status: .serviceUnavailable)
            reply.headers[.retryAfter] = "1"
            throw reply
        }
    }

    /// `action=credits`: the sub-account's available balance, exact, in plain decimal notation without trailing zeros
    /// (`476`, `12.5`, `0.0725`; negative only for a wallet with a credit limit that has gone below zero).
    private func credits(_ account: SubAccountRecord) async throws -> GatewayReply {
        let balance = WalletBalance(try await LedgerRepository(pool: pool).wallet(subAccountID: account.id))
        return GatewayReply(
            GatewayAnswer.credits(Decimal(balance.available.minorUnits) / Decimal(Money.unitsPerCredit)))
    }

    /// The most rows `action=rapport` lists, whatever `aantal` asks for.
    package static let maximumReportRows = 10_000

    /// `action=rapport&aantal=N`: 123 without N, 124 when N is not a positive whole number.
    private func reportTable(_ form: GatewayForm, account: SubAccountRecord) async throws -> GatewayReply {
        if form.isEmpty("aantal") { throw GatewayReply.error(.reportCountMissing) }
        guard let text = form.text("aantal"), text.allSatisfy({ $0.isASCII && $0.isWholeNumber }),
            text.contains(where: { $0 != "0" })
        else { throw GatewayReply.error(.reportCountInvalid) }
        // A number too large for an integer is not a valid number to the upstream either.
        guard let count = Int(text).map({ min($0, Self.maximumReportRows) }) else {
            throw GatewayReply.error(.reportCountInvalid)
        }
        let messages = try await GatewayMessageRepository(pool: pool).recent(subAccountID: account.id, limit: count)
        return GatewayReply(
            GatewayAnswer.reportTable(
                messages.map { message in
                    let report = message.deliveryReport(withDate: true)
                    return ReportEntry(
                        smsID: String(message.gatewayID), recipient: message.recipient, status: report.status,
                        updatedAt: report.updatedAt,
                        reference: message.reference ?? "")
                }))
    }

    /// `action=verwijderbericht`: the scheduled messages to `naar`, or those of the outbox entry `id`; 122 when none.
    private func removeFromOutbox(_ form: GatewayForm, account: SubAccountRecord) async throws -> GatewayReply {
        if !form.isEmpty("naar") {
            guard let number = form.text("naar") else { throw GatewayReply.error(.outboxMessageNotFound) }
            let digits = (try? PhoneNumber(parsing: number))?.digits ?? number
            return try await cancel(.scheduledTo(recipient: digits), account: account)
        }
        if !form.isEmpty("id") {
            guard let text = form.text("id"), text.allSatisfy({ $0.isASCII && $0.isWholeNumber }), let id = Int64(text)
            else {
                throw GatewayReply.error(.outboxMessageNotFound)
            }
            return try await cancel(.scheduledInOutbox(id), account: account)
        }
        throw GatewayReply.error(.outboxMessageNotFound)
    }

    /// Cancels like the REST API (out of the outbox, reservations voided, audited): `OK`, or 122 when nothing was.
    private func cancel(_ selection: CancelSelection, account: SubAccountRecord) async throws -> GatewayReply {
        let result = try await pool.withTransaction { connection in
            try await MessageRepository.cancel(
                subAccountID: account.id, resellerID: account.resellerID, selection: selection, by: Self.actor(account),
                on: connection)
        }
        return result.cancelled.isEmpty ? .error(.outboxMessageNotFound) : GatewayReply(GatewayAnswer.ok())
    }

    /// `gatewayrapport.php?smsid=…[&datum=ja]`. Unlike the upstream's example URL, credentials are required: message
    /// numbers are sequential, and another tenant's delivery states are not ours to tell.
    private func deliveryStatus(_ form: GatewayForm, address: String) async throws -> GatewayReply {
        let account = try await authenticate(form, address: address)
        if form.isEmpty("smsid") { throw GatewayReply.error(.reportCountMissing) }
        guard let text = form.text("smsid"), text.allSatisfy({ $0.isASCII && $0.isWholeNumber }) else {
            throw GatewayReply.error(.reportCountInvalid)
        }
        // All digits but too large for a number: no message has it.
        var message: GatewayMessageState?
        if let number = Int64(text) {
            message = try await GatewayMessageRepository(pool: pool).find(subAccountID: account.id, gatewayID: number)
        }
        let report = message?.deliveryReport(withDate: form.isYes("datum")) ?? DeliveryReport(status: .none)
        return GatewayReply(GatewayAnswer.deliveryReport(report))
    }

    package static func actor(_ account: SubAccountRecord) -> AuditActor {
        AuditActor(
            actor: "gateway1601:\(account.username)", role: .subAccount, requestID: RequestScope.requestID)
    }

    /// The client's address: the TCP peer, or, when the peer is a trusted proxy, the last address of
    /// `X-Forwarded-For` that is not one.
    package static func clientAddress(peer: SocketAddress?, forwardedFor: [String], trustedProxies: [IPRange]) -> String
    {
        let peerAddress = peer?.ipAddress ?? "unknown"
        guard !trustedProxies.isEmpty, isTrusted(peerAddress, trustedProxies) else { return peerAddress }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        return hops.last { !isTrusted($0, trustedProxies) } ?? peerAddress
    }

    private static func isTrusted(_ address: String, _ ranges: [IPRange]) -> Bool {
        guard let parsed = IPAddress.parseV6(address) ?? IPRange(address)?.address else { return false }
        return ranges.contains { parsed.isIn($0) }
    }
}

extension GatewayMessageState {
    /// The upstream's word for where the message is (the same mapping as the old-style delivery notifications):
    /// not yet handed upstream (or removed) is `NONE`; handed upstream is `SUBMITTED`, or `BUFFERED` after such a
    /// report; `expired` is `NOT DELIVERED` and `failed` (refused upstream for good) `REJECTED`. The date is that of the
    /// status, given for BUFFERED and the final ones only, as the upstream does.
    package func deliveryReport(withDate: Bool) -> DeliveryReport {
        var date = statusAt
        let status: DeliveryStatus
        switch self.status {
        case .scheduled, .queued, .cancelled:
            status = .none
        case .submitted:
            if lastReport == "report:buffered", let at = lastReportAt {
                status = .buffered
                date = at
            } else {
                status = .submitted
            }
        case .delivered: status = .delivered
        case .notDelivered, .expired: status = .notDelivered
        case .rejected, .failed: status = .rejected
        }
        let updatedAt = withDate && status.carriesDate ? GatewayDateTime(date) : nil
        return DeliveryReport(status: status, updatedAt: updatedAt)
    }
}

extension HTTPField.Name {
    package static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
}
