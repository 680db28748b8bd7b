import NIOHTTP1
import Tracing

/// Writes trace headers (`traceparent`, `tracestate`) into an outgoing request's headers.
struct HeadersInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout HTTPHeaders) {
        carrier.replaceOrAdd(name: key, value: value)
    }
}
