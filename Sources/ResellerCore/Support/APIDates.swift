import Foundation

/// Timestamps in the API: RFC 3339 in UTC with microseconds (what PostgreSQL keeps), so that a
/// time read from one answer (a statement line, a transfer) can be sent back as a period boundary
/// exactly. Input may carry any number of fraction digits, or none.
package enum APIDates {
    /// The instant `text` names; throws a `DecodingError` when it is no RFC 3339 date-time.
    package static func date(from text: String) throws -> Date {
        if let date = try? Date(text, strategy: Self.fractional) ?? nil { return date }
        if let date = try? Date(text, strategy: Self.whole) { return date }
        throw DecodingError.dataCorrupted(
            .init(codingPath: [], debugDescription: "Expected an RFC 3339 date-time, got '\(text)'."))
    }

    private static let fractional = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    private static let whole = Date.ISO8601FormatStyle()

    /// `2026-11-26T10:43:10.123456Z`.
    package static func string(from date: Date) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var seconds = micros / 1_000_000
        var fraction = micros % 1_000_000
        if fraction < 0 {
            seconds -= 1
            fraction += 1_000_000
        }
        var time = tm()
        var t = time_t(seconds)
        gmtime_r(&t, &time)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", time.tm_year + 1900, time.tm_mon + 1, time.tm_mday,
            time.tm_hour,
            time.tm_min, time.tm_sec, fraction)
    }

    /// JSON encoding and decoding with these dates, for stored responses.
    package static let encodingStrategy = JSONEncoder.DateEncodingStrategy.custom { date, encoder in
        var container = encoder.singleValueContainer()
        try container.encode(string(from: date))
    }
    package static let decodingStrategy = JSONDecoder.DateDecodingStrategy.custom { decoder in
        let container = try decoder.singleValueContainer()
        return try date(from: try container.decode(String.self))
    }
}
