import Foundation
import Logging
import ResellerApp
import Synchronization
import Testing

@Suite struct LoggingTests {
    final class Lines: Sendable {
        let storage = Mutex<[Data]>([])
        func append(_ line: Data) { storage.withLock { $0.append(line) } }
        var all: [Data] { storage.withLock { $0 } }
    }

    @Test func jsonLogLinesCarryLevelMessageAndMetadata() throws {
        let lines = Lines()
        var logger = Logger(label: "test.json") { label in JSONLogHandler(label: label, write: lines.append) }
        logger.logLevel = .info
        logger[metadataKey: "request_id"] = "abc123"
        logger.debug("not written below the level")
        logger.warning("pool \"exhausted\"\nsecond line", metadata: ["waiting": "3", "nested": ["a": "b"]])
        let written = lines.all
        try #require(written.count == 1)
        #expect(written[0].last == UInt8(ascii: "\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: written[0]) as? [String: Any])
        #expect(object["level"] as? String == "warning")
        #expect(object["label"] as? String == "test.json")
        #expect(object["message"] as? String == "pool \"exhausted\"\nsecond line")
        #expect(object["request_id"] as? String == "abc123")
        #expect(object["waiting"] as? String == "3")
        #expect((object["nested"] as? [String: Any])?["a"] as? String == "b")
        let time = try #require(object["time"] as? String)
        #expect(try Date(time, strategy: .iso8601) <= Date())
    }
}
