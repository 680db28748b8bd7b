import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ResellerApp
import Synchronization
import Testing

/// An OTLP/HTTP receiver for the length of a test: keeps the spans POSTed to `/v1/traces` as JSON.
final class OTLPReceiver: Sendable {
    struct ReceivedSpan: Sendable, Equatable {
        var traceID: String
        var spanID: String
        var parentSpanID: String
        var name: String
        var attributes: [String: String]
    }

    private let spans = Mutex<[ReceivedSpan]>([])
    var received: [ReceivedSpan] { spans.withLock { $0 } }

    /// OTLP/JSON carries ids as hex; protobuf's JSON mapping as base64. Either way, hex.
    static func hex(_ id: String?) -> String {
        guard let id, !id.isEmpty else { return "" }
        if id.count == 32 || id.count == 16, id.allSatisfy(\.isHexDigit) { return id.lowercased() }
        guard let data = Data(base64Encoded: id) else { return id }
        return data.map { String(format: "%02x", $0) }.joined()
    }

    func keep(_ body: Data) throws {
        let document = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
        var found: [ReceivedSpan] = []
        for resource in document["resourceSpans"] as? [[String: Any]] ?? [] {
            for scope in resource["scopeSpans"] as? [[String: Any]] ?? [] {
                for span in scope["spans"] as? [[String: Any]] ?? [] {
                    var attributes: [String: String] = [:]
                    for attribute in span["attributes"] as? [[String: Any]] ?? [] {
                        guard let key = attribute["key"] as? String, let value = attribute["value"] as? [String: Any]
                        else { continue }
                        attributes[key] = value.values.first.map { "\($0)" }
                    }
                    found.append(
                        ReceivedSpan(
                            traceID: Self.hex(span["traceId"] as? String), spanID: Self.hex(span["spanId"] as? String),
                            parentSpanID: Self.hex(span["parentSpanId"] as? String),
                            name: span["name"] as? String ?? "",
                            attributes: attributes))
                }
            }
        }
        spans.withLock { $0.append(contentsOf: found) }
    }

    /// Runs the receiver for the duration of `body`, which gets its base URL.
    func run(_ body: @Sendable (String) async throws -> Void) async throws {
        let router = Router()
        router.post("/v1/traces") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 16 << 20)
            try self.keep(Data(buffer.readableBytesView))
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: "{}")))
        }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: Logger(label: "test.otlp"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService(gracefulShutdownSignals: []) }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            try await body("http://127.0.0.1:\(port)")
            group.cancelAll()
        }
    }
}

/// Tracing (docs/operations.md, "Tracing"): spans exported over OTLP/HTTP to a receiver in the test, linked from the
/// caller's `traceparent` through the send's request and its statements to the dispatcher's upstream call.
@Suite(.serialized, .timeLimit(.minutes(3))) struct TracingTests {
    @Test func aSendsRequestAndItsUpstreamCallAreOneTraceContinuingTheCallers() async throws {
        let receiver = OTLPReceiver()
        try await receiver.run { endpoint in
            try await TenancyHarness.run(configure: {
                DeliveryReportTests.dispatching(&$0)
                $0.tracing.endpoint = endpoint
                $0.tracing.json = true
                $0.tracing.exportDelay = .milliseconds(50)
            }) { api in
                let tenant = try await api.sendingTenant("Traced").tenant
                let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
                let callerSpan = "00f067aa0ba902b7"
                var headers = HTTPFields()
                headers[HTTPField.Name("traceparent")!] = "00-\(traceID)-\(callerSpan)-01"
                headers[HTTPField.Name("Idempotency-Key")!] = UUID().uuidString
                let reply = try await api.call(
                    .post, "/sub-accounts/\(tenant.subAccountID)/messages", key: tenant.subAccountKey,
                    body: ["sender": "Jansen", "text": "Hi", "recipients": ["31612345671"]], headers: headers)
                try #require(reply.status == .created, "\(reply.json)")

                // The request's span continues the caller's trace; the dispatcher's span is its child, the upstream
                // call the dispatcher's; the request's statements are its children too.
                var chain:
                    (
                        request: OTLPReceiver.ReceivedSpan, dispatch: OTLPReceiver.ReceivedSpan,
                        upstream: OTLPReceiver.ReceivedSpan
                    )?
                try await eventually("the trace reaches the receiver") {
                    let spans = receiver.received.filter { $0.traceID == traceID }
                    guard
                        let request = spans.first(where: { $0.parentSpanID == callerSpan }),
                        let dispatch = spans.first(where: {
                            $0.parentSpanID == request.spanID && $0.name == "dispatch message"
                        }),
                        let upstream = spans.first(where: {
                            $0.parentSpanID == dispatch.spanID && $0.name == "1601 send"
                        })
                    else { return false }
                    chain = (request, dispatch, upstream)
                    return true
                }
                let (request, _, upstream) = try #require(chain)
                // Named after the route, not the path with its ids.
                #expect(
                    request.name.hasPrefix("POST /sub-accounts/") && request.name.hasSuffix("/messages")
                        && !request.name.contains(tenant.subAccountID), "\(request)")
                #expect(request.attributes["http.response.status_code"] == "201", "\(request.attributes)")
                #expect(upstream.attributes["gateway1601.action"] == "send", "\(upstream.attributes)")
                let statements = receiver.received.filter {
                    $0.traceID == traceID && $0.parentSpanID == request.spanID
                        && $0.attributes["db.system"] == "postgresql"
                }
                #expect(!statements.isEmpty)
                // No parameter values: the SQL text only (the recipient is a bind parameter).
                #expect(statements.allSatisfy { !($0.attributes["db.statement"] ?? "").contains("31612345671") })
                #expect(statements.contains { $0.name == "INSERT" || $0.name == "WITH" || $0.name == "SELECT" })
            }
        }
    }
}
