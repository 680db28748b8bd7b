import SMSCore

/// The CSV form of a price version: a header `prefix,price,status`, then one entry per line.
///
/// Reading is lenient where it cannot change a price and strict where it could: a UTF-8 byte order mark, `\r\n`
/// line ends, blank lines, spaces around fields and RFC 4180 quotes (`"0.0725"`) are accepted; the columns may come
/// in any order and `status` may be left out (every entry is then sellable); an unknown or repeated column, a line
/// with the wrong number of fields or an unterminated quote is an error. Line numbers count every physical line,
/// the header being line 1, so they match what an editor shows.
enum PriceListCSV {
    static let header = "prefix,price,status"
    /// The largest file accepted.
    static let maximumBytes = 8 << 20

    /// Reads `bytes` into `collector`; problems with the file itself are reported as errors too.
    static func read(_ bytes: [UInt8], into collector: inout PriceEntryCollector) {
        guard var text = String(validating: bytes, as: UTF8.self) else {
            collector.fail("file", "must be UTF-8 text")
            return
        }
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        var columns: [String: Int]?
        var lineNumber = 0
        // "\r\n" is one Character in Swift: split on both.
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            let fields: [String]
            switch split(line) {
            case .success(let parsed): fields = parsed
            case .failure(let problem):
                collector.fail(columns == nil ? "line \(lineNumber): header" : "line \(lineNumber)", problem.message)
                if columns == nil { return }
                continue
            }
            guard let known = columns else {
                columns = readHeader(fields, line: lineNumber, into: &collector)
                if columns == nil { return }
                continue
            }
            guard fields.count == known.count else {
                collector.fail("line \(lineNumber)", "has \(fields.count) fields; the header has \(known.count)")
                continue
            }
            collector.add(
                prefix: fields[known["prefix"]!], price: fields[known["price"]!], status: known["status"].map { fields[$0] },
                source: .csv(line: lineNumber))
        }
        if columns == nil { collector.fail("line 1: header", "the file is empty; the first line must be \(header)") }
    }

    /// Column positions by name, or nil (with the error recorded) when the header is wrong.
    private static func readHeader(_ fields: [String], line: Int, into collector: inout PriceEntryCollector) -> [String: Int]? {
        var columns: [String: Int] = [:]
        var problems: [String] = []
        for (index, field) in fields.enumerated() {
            let name = field.lowercased()
            if !["prefix", "price", "status"].contains(name) {
                problems.append("unknown column \"\(field)\"")
            } else if columns[name] != nil {
                problems.append("column \(name) appears twice")
            } else {
                columns[name] = index
            }
        }
        for required in ["prefix", "price"] where columns[required] == nil { problems.append("column \(required) is missing") }
        guard problems.isEmpty else {
            collector.fail("line \(line): header", problems.joined(separator: "; ") + " (expected \(header))")
            return nil
        }
        return columns
    }

    private struct LineProblem: Error { var message: String }

    /// Splits one line into trimmed fields, honouring RFC 4180 quotes.
    private static func split(_ line: Substring) -> Result<[String], LineProblem> {
        var fields: [String] = []
        var current = ""
        var quoted = false
        var wasQuoted = false
        var iterator = line.makeIterator()
        while let character = iterator.next() {
            if quoted {
                if character == "\"" {
                    // Either the closing quote or the first half of an escaped "".
                    var lookahead = iterator
                    if lookahead.next() == "\"" {
                        current.append("\"")
                        iterator = lookahead
                    } else {
                        quoted = false
                    }
                } else {
                    current.append(character)
                }
            } else if character == "," {
                fields.append(wasQuoted ? current : current.trimmingASCIISpaces())
                current = ""
                wasQuoted = false
            } else if character == "\"", current.trimmingASCIISpaces().isEmpty, !wasQuoted {
                current = ""
                quoted = true
                wasQuoted = true
            } else if wasQuoted {
                if character != " " && character != "\t" { return .failure(LineProblem(message: "has text after a closing quote")) }
            } else {
                current.append(character)
            }
        }
        if quoted { return .failure(LineProblem(message: "has an unterminated quote")) }
        fields.append(wasQuoted ? current : current.trimmingASCIISpaces())
        return .success(fields)
    }

    /// One line of the export (with its line end): `4479,0.0550,sellable`; the price is empty when there is none.
    static func line(prefix: String, price: Money?, status: PriceStatus) -> String {
        "\(prefix),\(price?.description ?? ""),\(status.rawValue)\n"
    }
}

extension String {
    fileprivate func trimmingASCIISpaces() -> String {
        let start = firstIndex { $0 != " " && $0 != "\t" } ?? endIndex
        let end = lastIndex { $0 != " " && $0 != "\t" }.map(index(after:)) ?? start
        return String(self[start..<end])
    }
}
