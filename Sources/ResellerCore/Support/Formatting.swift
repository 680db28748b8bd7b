import Foundation

extension UUID {
    /// The lower-case form the API and the logs use.
    package var apiString: String { uuidString.lowercased() }
}

extension Duration {
    /// The duration in seconds, as SQL's `make_interval(secs => …)` takes it.
    package var inSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
