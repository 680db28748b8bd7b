import Foundation

extension Validator {
    /// An integer within `range`; nil (and a failure) outside it.
    package mutating func integer(_ value: Int32, field: String, range: ClosedRange<Int>) -> Int? {
        guard range.contains(Int(value)) else {
            fail(field, "must be \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return Int(value)
    }

    /// The base URL of a gateway: `http`/`https`, a host, no credentials, query or fragment, not the `/module/…` script
    /// itself. Returned with a lowercase scheme and without trailing slashes.
    package mutating func upstreamBaseURL(_ value: String, field: String) -> String? {
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let components = URLComponents(string: trimmed), let scheme = components.scheme?.lowercased(),
            ["http", "https"].contains(scheme), let host = components.host, !host.isEmpty,
            let separator = trimmed.range(of: "://")
        else {
            fail(field, "must be an http or https URL such as http://217.19.227.48")
            return nil
        }
        if components.user != nil || components.password != nil
            || trimmed[separator.upperBound...].prefix(while: { $0 != "/" }).contains("@")
        {
            fail(field, "must not contain credentials; give them as username and password")
            return nil
        }
        if components.query != nil || components.fragment != nil {
            fail(field, "must not have a query or a fragment")
            return nil
        }
        if components.path.lowercased().contains("/module/") {
            fail(field, "must be the base URL without /module/gateway.php")
            return nil
        }
        if trimmed.unicodeScalars.count > 2000 || trimmed.contains(where: { $0.isWhitespace })
            || trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        {
            fail(field, "must be at most 2000 characters without spaces or control characters")
            return nil
        }
        var normalized = scheme + trimmed[separator.lowerBound...]
        while normalized.hasSuffix("/") { normalized.removeLast() }
        return normalized
    }
}
