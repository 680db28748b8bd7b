import HTTPTypes
import Hummingbird
import OpenAPIRuntime
import Testing

@testable import Reseller

@Suite struct ErrorLoggingTests {
    struct StorageFailure: Error, CustomStringConvertible {
        var description: String { "disk full" }
    }

    @Test func loggedServerErrorsCarryNeitherTheKeyNorTheBody() {
        var request = HTTPRequest(method: .post, scheme: "http", authority: "localhost", path: "/sub-accounts")
        request.headerFields[.authorization] = "Bearer sk_live_SECRETSECRETSECRET"
        let error = ServerError(
            operationID: "createSubAccount", request: request, requestBody: HTTPBody(#"{"password":"hunter2-secret"}"#),
            requestMetadata: .init(), operationInput: #"password: "hunter2-secret""#,
            causeDescription: "Unknown", underlyingError: StorageFailure())
        let logged = ProblemMiddleware<BasicRequestContext>.loggable(error)
        #expect(logged == "createSubAccount: Unknown: disk full")
        #expect(!logged.contains("SECRET"))
        #expect(!logged.contains("hunter2"))
        // What the old log line contained, so the test shows what it guards against.
        #expect(String(reflecting: error).contains("sk_live_SECRET") || String(reflecting: error).contains("hunter2"))
    }
}
