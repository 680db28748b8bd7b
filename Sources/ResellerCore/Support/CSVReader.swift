/// Reads the CSV files the API imports (price list versions, contacts): a header naming the columns, then one
/// record per line.
///
/// Lenient where it cannot change a value, strict where it could: a UTF-8 byte order mark, `\r\n` line ends, blank
/// lines, spaces around fields and RFC 4180 quotes (`"0.0725"`, `"a ""b"""`) are accepted; columns may come in any
/// order and header names are case-insensitive; an unknown or repeated column, a missing required one, a line with
/// the wrong number of fields, text after a closing quote or an unterminated quote is a problem. A quoted field
/// cannot span lines. Line numbers count every physical line, the header being line 1, so they match what an editor
/// shows.
package struct CSVReader {
    /// The columns a file may have (lowercase).
    package var columns: [String]
    /// The columns it must have.
    package var required: [String]

    package init(columns: [String], required: [String]) {
        self.columns = columns
        self.required = required
    }

    /// One thing found in the file, in line order.
    package enum Item: Equatable {
        /// A record: its line number and its fields by (lowercase) column name; optional columns that the header
        /// left out are absent.
        case record(line: Int, fields: [String: String])
        /// A problem named `file`, `line <n>: header` or `line <n>`.
        case problem(field: String, message: String)
    }

    /// The expected header, for messages.
    package var header: String { columns.joined(separator: ",") }

    /// Everything in `bytes`, in line order. A problem with the file or its header stops reading.
    package func read(_ bytes: [UInt8]) -> (columns: Set<String>, items: [Item]) {
        guard var text = String(validating: bytes, as: UTF8.self) else {
            return ([], [.problem(field: "file", message: "must be UTF-8 text")])
        }
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        var items: [Item] = []
        var known: [String: Int]?
        var lineNumber = 0
        // "\r\n" is one Character in Swift: split on both.
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            let fields: [String]
            switch Self.split(line) {
            case .success(let parsed): fields = parsed
            case .failure(let problem):
                items.append(
                    .problem(
                        field: known == nil ? "line \(lineNumber): header" : "line \(lineNumber)",
                        message: problem.message))
                if known == nil { return ([], items) }
                continue
            }
            guard let known else {
                switch readHeader(fields) {
                case .success(let columns): known = columns
                case .failure(let problem):
                    items.append(.problem(field: "line \(lineNumber): header", message: problem.message))
                    return ([], items)
                }
                continue
            }
            guard fields.count == known.count else {
                items.append(
                    .problem(
                        field: "line \(lineNumber)",
                        message: "has \(fields.count) fields; the header has \(known.count)"))
                continue
            }
            items.append(.record(line: lineNumber, fields: known.mapValues { fields[$0] }))
        }
        guard let known else {
            return (
                [], [.problem(field: "line 1: header", message: "the file is empty; the first line must be \(header)")]
            )
        }
        return (Set(known.keys), items)
    }

    /// Column positions by name.
    private func readHeader(_ fields: [String]) -> Result<[String: Int], LineProblem> {
        var positions: [String: Int] = [:]
        var problems: [String] = []
        for (index, field) in fields.enumerated() {
            let name = field.lowercased()
            if !columns.contains(name) {
                problems.append("unknown column \"\(field)\"")
            } else if positions[name] != nil {
                problems.append("column \(name) appears twice")
            } else {
                positions[name] = index
            }
        }
        for column in required where positions[column] == nil { problems.append("column \(column) is missing") }
        guard problems.isEmpty else {
            return .failure(LineProblem(message: problems.joined(separator: "; ") + " (expected \(header))"))
        }
        return .success(positions)
    }

    private struct LineProblem: Error { var message: String }

    /// Splits one line into trimmed fields, honouring RFC 4180 quotes.
    ///
    /// It reads Unicode scalars, not Characters: a combining mark right after a `,` or a `"` would make it part of a
    /// Character that equals neither, hiding a separator or a quote.
    private static func split(_ line: Substring) -> Result<[String], LineProblem> {
        var fields: [String] = []
        var current = String.UnicodeScalarView()
        var quoted = false
        var wasQuoted = false
        var iterator = line.unicodeScalars.makeIterator()
        func isSpace(_ scalar: Unicode.Scalar) -> Bool { scalar == " " || scalar == "\t" }
        while let scalar = iterator.next() {
            if quoted {
                if scalar == "\"" {
                    // Either the closing quote or the first half of an escaped "".
                    var lookahead = iterator
                    if lookahead.next() == "\"" {
                        current.append("\"")
                        iterator = lookahead
                    } else {
                        quoted = false
                    }
                } else {
                    current.append(scalar)
                }
            } else if scalar == "," {
                fields.append(wasQuoted ? String(current) : String(current).trimmingASCIISpaces())
                current = String.UnicodeScalarView()
                wasQuoted = false
            } else if scalar == "\"", current.allSatisfy(isSpace), !wasQuoted {
                current = String.UnicodeScalarView()
                quoted = true
                wasQuoted = true
            } else if wasQuoted {
                if !isSpace(scalar) {
                    return .failure(LineProblem(message: "has text after a closing quote"))
                }
            } else {
                current.append(scalar)
            }
        }
        if quoted { return .failure(LineProblem(message: "has an unterminated quote")) }
        fields.append(wasQuoted ? String(current) : String(current).trimmingASCIISpaces())
        return .success(fields)
    }
}

extension String {
    fileprivate func trimmingASCIISpaces() -> String {
        let start = firstIndex { $0 != " " && $0 != "\t" } ?? endIndex
        let end = lastIndex { $0 != " " && $0 != "\t" }.map(index(after:)) ?? start
        return String(self[start..<end])
    }
}
