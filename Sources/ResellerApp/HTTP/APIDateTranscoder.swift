import Foundation
import OpenAPIRuntime
import ResellerCore

/// The generated API's dates: `APIDates` (RFC 3339 in UTC with microseconds).
package struct APIDateTranscoder: DateTranscoder {
    package func encode(_ date: Date) throws -> String { APIDates.string(from: date) }
    package func decode(_ text: String) throws -> Date { try APIDates.date(from: text) }
}
