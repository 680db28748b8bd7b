import Foundation
import OTel
import ServiceLifecycle
import Tracing

/// Where and how spans are exported (docs/operations.md, "Tracing"). Off (no exporter, no span made) without an
/// endpoint.
package struct TracingSettings: Sendable {
    /// Base URL of an OTLP/HTTP receiver (`http://collector:4318`); spans go to `<endpoint>/v1/traces`. Nil: off.
    package var endpoint: String?
    /// The `service.name` of the spans.
    package var serviceName = "sms-reseller"
    /// OTLP/HTTP with protobuf bodies, or JSON (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`).
    package var json = false
    /// How long finished spans wait to be exported in a batch.
    package var exportDelay: Duration = .seconds(5)

    package init() {}

    /// The traces URL of `endpoint`, as OTEL_EXPORTER_OTLP_ENDPOINT makes it.
    package var tracesURL: String? {
        endpoint.map { ($0.hasSuffix("/") ? String($0.dropLast()) : $0) + "/v1/traces" }
    }
}

/// The tracer of the settings and the service that exports its spans (run it first, so it stops last and exports what
/// the others finished); nil when tracing is off.
package func makeTracer(_ settings: TracingSettings) throws -> (tracer: any Tracer, service: any Service)? {
    guard let url = settings.tracesURL else { return nil }
    var configuration = OTel.Configuration.default
    configuration.serviceName = settings.serviceName
    configuration.logs.enabled = false
    configuration.metrics.enabled = false
    configuration.traces.enabled = true
    configuration.traces.exporter = .otlp
    configuration.traces.otlpExporter.endpoint = url
    configuration.traces.otlpExporter.protocol = settings.json ? .httpJSON : .httpProtobuf
    configuration.traces.batchSpanProcessor.scheduleDelay = settings.exportDelay
    configuration.propagators = [.traceContext]
    let backend = try OTel.makeTracingBackend(configuration: configuration)
    return (backend.factory, backend.service)
}
