import Tracing

/// Reads a stored `traceparent` (a dictionary of trace headers) back into a context.
struct TraceparentExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
}
