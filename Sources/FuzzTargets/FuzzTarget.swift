import Foundation

/// The inputs the fuzzer exercises, each a function from bytes to the properties it violated (none is a pass).
///
/// The parsers are compiled into this module from their own source files (symlinks in `Parsers/`), so that the
/// sanitized build needs nothing but SMSCore; the code fuzzed is the code shipped.
///
/// The same functions run under libFuzzer (`scripts/fuzz.sh`, executable `sms-fuzz` built with `-DFUZZING`), in the
/// replayer (`sms-fuzz <target> <files>`) and in the test that replays `Tests/FuzzCorpus` on every `swift test`. A
/// crash (a trap, an out-of-range index) is a finding as much as a violated property.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// Form encoding: `FormEncoding.decode`, `decodeStrictly`, `percentEncode` (requests, callbacks, the 1601 endpoint).
    case form
    /// The CSV reader with the price list's and the contacts' columns.
    case csv
    /// Phone-number normalisation and calling-code lookup.
    case phone
    /// Segmentation of message text into SMS parts.
    case segment
    /// The 1601 answer parsers: `OK …`, credits, delivery status, report table, `ERROR <code>`.
    case answer
    /// Delivery callbacks (query parsing) and the gateway's date formats.
    case delivery
    /// Sender-name validation.
    case sender

    /// The columns and required columns of the CSV readers fuzzed: the price list's, then the contacts'.
    public static var csvColumns: [(columns: [String], required: [String])] {
        CSVFuzz.readers.map { ($0.columns, $0.required) }
    }

    /// Runs one input; the result names every property it violated.
    public func run(_ bytes: [UInt8]) -> [String] {
        var check = PropertyCheck()
        switch self {
        case .form: FormFuzz.run(bytes, &check)
        case .csv: CSVFuzz.run(bytes, &check)
        case .phone: PhoneFuzz.run(bytes, &check)
        case .segment: SegmentFuzz.run(bytes, &check)
        case .answer: AnswerFuzz.run(bytes, &check)
        case .delivery: DeliveryFuzz.run(bytes, &check)
        case .sender: SenderFuzz.run(bytes, &check)
        }
        return check.failures
    }
}

/// The properties an input violated.
struct PropertyCheck {
    private(set) var failures: [String] = []

    mutating func expect(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { failures.append(message()) }
    }
}

/// The committed inputs: seeds and regression inputs, one file each, under `Tests/FuzzCorpus/<target>/`.
public enum FuzzCorpus {
    /// The regular files at `url` (itself, or the files of the directory, sorted), hidden files left out.
    public static func files(at url: URL) -> [URL] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else { return [] }
        guard isDirectory.boolValue else { return [url] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { url.appendingPathComponent($0) }
    }
}

extension String {
    /// The bytes as text, invalid UTF-8 replaced (what a lenient reader of bytes sees).
    init(fuzzBytes bytes: [UInt8]) { self = String(decoding: bytes, as: UTF8.self) }

    /// ASCII letters upper-cased, everything else as it is.
    var asciiUppercased: String {
        String(
            String.UnicodeScalarView(
                unicodeScalars.map { ("a"..."z").contains($0) ? Unicode.Scalar($0.value - 32)! : $0 }))
    }
}
