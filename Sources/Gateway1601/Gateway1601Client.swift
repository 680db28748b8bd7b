import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Tracing

/// Settings of one upstream connection.
public struct Gateway1601Configuration: Sendable {
    /// How requests carry their parameters.
    public enum Method: String, Sendable, Hashable, Codable {
        /// Parameters in the query string.
        case get
        /// Parameters in an `application/x-www-form-urlencoded` body.
        case post
    }

    /// Scheme, host and optional port, without the `/module/…` path, e.g. `http://217.19.227.48`.
    public var baseURL: String
    public var credentials: GatewayCredentials
    public var method: Method
    /// The most one call may take, connecting included.
    public var requestTimeout: Duration
    /// The largest answer body accepted; larger is a malformed answer.
    public var maximumAnswerBytes: Int

    public init(
        baseURL: String,
        credentials: GatewayCredentials,
        method: Method = .post,
        requestTimeout: Duration = .seconds(15),
        maximumAnswerBytes: Int = 4 << 20
    ) {
        self.baseURL = baseURL
        self.credentials = credentials
        self.method = method
        self.requestTimeout = requestTimeout
        self.maximumAnswerBytes = maximumAnswerBytes
    }
}

/// What a send returns.
public struct SendResult: Sendable, Hashable {
    /// The message ids of `OK <id>,<id>…`, in recipient order; empty for a bare `OK`.
    public var messageIDs: [String]
    /// The outbox id of a scheduled send made with `outboxid=ja`.
    public var outboxID: String?

    public init(messageIDs: [String], outboxID: String? = nil) {
        self.messageIDs = messageIDs
        self.outboxID = outboxID
    }
}

/// A client of the 1601SMS gateway on async-http-client.
///
/// Every call throws ``Gateway1601Error``, whose ``Gateway1601Error/disposition`` tells a dispatcher whether to
/// retry, fail the message or pause the connection. The `HTTPClient` (and so its connection pool) is shared:
/// pass one in, or the process-wide `HTTPClient.shared` is used; the caller owns its lifetime.
public struct Gateway1601Client: Sendable {
    public let configuration: Gateway1601Configuration
    let httpClient: HTTPClient
    let logger: Logger
    /// When set, each call is a client span `1601 <action>` and its request carries the W3C `traceparent`.
    public let tracer: (any Tracer)?

    public init(
        configuration: Gateway1601Configuration, httpClient: HTTPClient = .shared, logger: Logger,
        tracer: (any Tracer)? = nil
    ) {
        self.configuration = configuration
        self.httpClient = httpClient
        self.logger = logger
        self.tracer = tracer
    }

    /// Sends a message (`gateway.php`).
    ///
    /// A bare `OK` gives no ids; `delivery=ja` gives one id per recipient; a scheduled send with `outboxid=ja` gives
    /// the outbox id in ``SendResult/outboxID``.
    ///
    /// An answer that does not fit the request (no outbox id, or with `delivery=ja` no id or not one per number) is
    /// ``Gateway1601Error/malformedAnswer(_:)``, never success. A `test=ja` send is answered by a bare `OK`.
    public func send(_ request: SendRequest) async throws(Gateway1601Error) -> SendResult {
        let ids = try await call(.send(request), GatewayAnswer.parseOK)
        if request.test { return SendResult(messageIDs: ids) }
        if request.schedule != nil, request.requestOutboxID {
            guard ids.count == 1 else { throw .malformedAnswer(GatewayAnswer.ok(ids)) }
            return SendResult(messageIDs: [], outboxID: ids[0])
        }
        if request.deliveryReport {
            let expected: Int? =
                switch request.recipients {
                case .numbers(let numbers):
                    numbers.joined(separator: ",").split(separator: ",").filter { !$0.allSatisfy(\.isWhitespace) }.count
                case .group: nil
                }
            guard !ids.isEmpty, expected == nil || ids.count == expected else {
                throw .malformedAnswer(GatewayAnswer.ok(ids))
            }
        }
        return SendResult(messageIDs: ids)
    }

    /// The delivery status of one message (`gatewayrapport.php`), with its date when `includeDate`.
    public func deliveryStatus(smsID: String, includeDate: Bool = true) async throws(Gateway1601Error) -> DeliveryReport
    {
        try await call(.deliveryStatus(smsID: smsID, includeDate: includeDate), GatewayAnswer.parseDeliveryReport)
    }

    /// The account's remaining credits (`action=credits`).
    public func credits() async throws(Gateway1601Error) -> Decimal {
        try await call(.credits, GatewayAnswer.parseCredits)
    }

    /// The last `count` messages with their statuses (`action=rapport&aantal=`), newest first.
    public func report(count: Int) async throws(Gateway1601Error) -> [ReportEntry] {
        try await call(.report(count: count), GatewayAnswer.parseReportTable)
    }

    /// Removes scheduled messages from the outbox (`action=verwijderbericht`); `ERROR 122` when none matched.
    public func removeOutboxMessage(_ selector: OutboxSelector) async throws(Gateway1601Error) {
        _ = try await call(.removeOutboxMessage(selector), GatewayAnswer.parseOK)
    }

    /// Empties the outbox (`action=verwijderoutbox`); `ERROR 122` when it was empty.
    public func emptyOutbox() async throws(Gateway1601Error) {
        _ = try await call(.emptyOutbox, GatewayAnswer.parseOK)
    }

    /// Performs `call` and parses the answer with `parse`.
    func call<Answer>(
        _ call: GatewayCall,
        _ parse: (String) throws(GatewayAnswerError) -> Answer
    ) async throws(Gateway1601Error) -> Answer {
        let parameters: [GatewayParameter]
        do {
            parameters = try call.parameters(credentials: configuration.credentials)
        } catch {
            throw .invalidRequest("\(error)")
        }
        let body = try await perform(path: call.path, parameters: parameters)
        do {
            return try parse(body)
        } catch {
            switch error {
            case .gateway(let code): throw .gateway(code)
            case .malformed(let text): throw .malformedAnswer(text)
            }
        }
    }

    /// Sends raw `parameters` to `path` and returns the answer body of a 2xx answer.
    ///
    /// The typed calls above are built on this; it is public for diagnostics and for exercising answers the typed
    /// calls cannot ask for (a report without `aantal`, say).
    public func perform(path: String, parameters: [GatewayParameter]) async throws(Gateway1601Error) -> String {
        let encoded = FormEncoding.encode(parameters)
        let base =
            configuration.baseURL.hasSuffix("/") ? String(configuration.baseURL.dropLast()) : configuration.baseURL
        var request: HTTPClientRequest
        switch configuration.method {
        case .get:
            request = HTTPClientRequest(url: base + path + (encoded.isEmpty ? "" : "?" + encoded))
            request.method = .GET
        case .post:
            request = HTTPClientRequest(url: base + path)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded; charset=utf-8")
            request.body = .bytes(ByteBuffer(string: encoded))
        }
        request.headers.add(name: "Accept", value: "text/plain")
        let action = parameters.value(of: "action") ?? (path == GatewayCall.gatewayPath ? "send" : "status")
        logger.debug("gateway request", metadata: ["path": "\(path)", "action": "\(action)"])
        guard let tracer else { return try await execute(request) }
        // No URL nor body in the span: they hold the password and the message.
        let result: Result<String, Gateway1601Error> = await tracer.withAnySpan("1601 \(action)", ofKind: .client) {
            span in
            span.attributes["gateway1601.action"] = action
            span.attributes["server.address"] = URL(string: configuration.baseURL)?.host
            var traced = request
            tracer.inject(span.context, into: &traced.headers, using: HeadersInjector())
            do throws(Gateway1601Error) {
                return .success(try await execute(traced))
            } catch {
                span.attributes["gateway1601.error"] = error.description
                span.setStatus(SpanStatus(code: .error))
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Makes the HTTP request of ``perform(path:parameters:)`` and returns the body of a 2xx answer.
    private func execute(_ request: HTTPClientRequest) async throws(Gateway1601Error) -> String {
        let deadline = ContinuousClock.now + configuration.requestTimeout
        do {
            let response = try await httpClient.execute(
                request, timeout: Self.timeAmount(configuration.requestTimeout), logger: logger)
            // The status decides before the body is read: an oversized error page is still an HTTP error.
            guard (200...299).contains(response.status.code) else {
                logger.debug("gateway HTTP status", metadata: ["status": "\(response.status.code)"])
                throw Gateway1601Error.httpStatus(Int(response.status.code))
            }
            // async-http-client's timeout ends with the response head; the body must arrive within it too.
            let buffer = try await Self.collect(response.body, upTo: configuration.maximumAnswerBytes, before: deadline)
            return String(buffer: buffer)
        } catch {
            let classified = Self.classify(error)
            logger.debug("gateway call failed", metadata: ["error": "\(classified)"])
            throw classified
        }
    }

    /// Maps transport errors to ``Gateway1601Error``.
    static func classify(_ error: any Error) -> Gateway1601Error {
        if let error = error as? Gateway1601Error { return error }
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout:
                return .timeout
            case .connectTimeout, .getConnectionFromPoolTimeout, .tlsHandshakeTimeout:
                return .connectionFailed("\(error)")
            case .remoteConnectionClosed, .uncleanShutdown, .cancelled:
                return .connectionLost("\(error)")
            case .invalidURL, .emptyHost, .emptyScheme:
                return .invalidConfiguration("\(error)")
            case _ where error.shortDescription == HTTPClientError.unsupportedScheme("").shortDescription:
                return .invalidConfiguration("\(error)")
            default:
                return .connectionLost("\(error)")
            }
        }
        if error is NIOTooManyBytesError { return .malformedAnswer("answer body larger than the configured maximum") }
        if let error = error as? IOError {
            // ECONNRESET and EPIPE happen after the request may have been written; anything else at connect time.
            return error.errnoCode == ECONNRESET || error.errnoCode == EPIPE
                ? .connectionLost("\(error)") : .connectionFailed("\(error)")
        }
        if error is ChannelError { return .connectionLost("\(error)") }
        // NIOPosix's NIOConnectionError (refused, unreachable) and resolver errors: the request never went out.
        return .connectionFailed("\(error)")
    }

    /// The whole body, or ``Gateway1601Error/timeout`` when it has not arrived by `deadline`.
    static func collect(
        _ body: HTTPClientResponse.Body, upTo maximumBytes: Int, before deadline: ContinuousClock.Instant
    ) async throws -> ByteBuffer {
        try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
            group.addTask { try await body.collect(upTo: maximumBytes) }
            group.addTask {
                try await Task.sleep(until: deadline)
                return nil
            }
            defer { group.cancelAll() }
            guard let buffer = try await group.next() ?? nil else { throw Gateway1601Error.timeout }
            return buffer
        }
    }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
