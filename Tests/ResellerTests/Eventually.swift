import Testing

struct TimedOut: Error, CustomStringConvertible {
    var description: String
}

/// Polls `condition` until it holds; records an issue and ends the test after `timeout` (generous: the machine may be
/// loaded).
func eventually(
    _ what: String, timeout: Duration = .seconds(30), sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("timed out waiting until \(what)", sourceLocation: sourceLocation)
            throw TimedOut(description: what)
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}
