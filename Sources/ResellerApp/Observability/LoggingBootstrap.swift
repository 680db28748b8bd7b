import Foundation
import Logging
import Messaging

/// Installs the process-wide log handler once, in the chosen format, writing to standard error.
package enum LoggingBootstrap {
    package static func bootstrap(level: Logger.Level, format: LogFormat) {
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler
            switch format {
            case .text: handler = StreamLogHandler.standardError(label: label)
            case .json: handler = JSONLogHandler(label: label)
            }
            handler.logLevel = level
            return handler
        }
    }
}

/// Writes one JSON object per line: `time`, `level`, `label`, `message`, `source`, and the metadata as fields.
package struct JSONLogHandler: LogHandler {
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level = .info
    package let label: String
    package let write: @Sendable (Data) -> Void

    /// Writes each line to `write` (standard error unless told otherwise).
    package init(label: String, write: @escaping @Sendable (Data) -> Void = JSONLogHandler.writeToStandardError) {
        self.label = label
        self.write = write
    }

    private static let lock = NSLock()

    package static let writeToStandardError: @Sendable (Data) -> Void = { line in
        lock.lock()
        defer { lock.unlock() }
        FileHandle.standardError.write(line)
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var merged = self.metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        var object: [String: Any] = [
            "time": Date.now.ISO8601Format(.iso8601WithTimeZone(includingFractionalSeconds: true)),
            "level": event.level.rawValue,
            "label": label,
            "message": event.message.description,
            "source": event.source,
        ]
        for (key, value) in merged where object[key] == nil {
            object[key] = Self.jsonValue(value)
        }
        guard
            var line = try? JSONSerialization.data(
                withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        else {
            return
        }
        line.append(UInt8(ascii: "\n"))
        write(line)
    }

    package static func jsonValue(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        case .array(let array): array.map(jsonValue)
        case .dictionary(let dictionary): dictionary.mapValues(jsonValue)
        }
    }
}
