/// The current request's id, readable from handlers and services deeper in the same task (set by the HTTP layer).
package enum RequestScope {
    @TaskLocal package static var requestID: String?
}
