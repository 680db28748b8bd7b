/// The current request's id, readable from handlers and services deeper in the same task (set by the HTTP layer).
package enum RequestScope {
    @TaskLocal package static var requestID: String?
    /// The W3C `traceparent` of the request's span while tracing is on (docs/operations.md, "Tracing"), else nil.
    @TaskLocal package static var traceparent: String?
}
