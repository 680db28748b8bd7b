import HTTPTypes
import Hummingbird
import OpenAPIRuntime
import PostgresLibpq
import ResellerApp
import Testing

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

    @Test func loggedDatabaseErrorsLeaveOutTheRowPostgreSQLQuotes() {
        let failure = PostgresError(
            kind: .server, message: "new row for relation \"message_batch\" violates check constraint",
            sqlState: "23514",
            detail: "Failing row contains (…, Uw pincode is 4821, …).", constraint: "message_batch_reference_check")
        let logged = ProblemMiddleware<BasicRequestContext>.loggable(
            ServerError(
                operationID: "sendMessages",
                request: HTTPRequest(method: .post, scheme: "http", authority: "localhost", path: "/"),
                requestBody: nil, requestMetadata: .init(), operationInput: "", causeDescription: "Unknown",
                underlyingError: failure))
        #expect(logged.contains("23514") && logged.contains("message_batch_reference_check"))
        #expect(!logged.contains("4821"))
    }
}
