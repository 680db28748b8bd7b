import Foundation

/// The CSV reader with the price list's and the contacts' columns. No more records than lines; line numbers rise
/// and stay within the file; every record has the required columns and only known ones; a file of the records
/// written back (quoted, `""` escaped) reads as the same records.
enum CSVFuzz {
    /// `"` doubled, scalar by scalar (`replacingOccurrences` compares Characters and misses a `"` carrying a combining
    /// mark).
    static func escaped(_ field: String) -> String {
        String(String.UnicodeScalarView(field.unicodeScalars.flatMap { $0 == "\"" ? ["\"", "\""] : [$0] }))
    }

    /// `PriceListCSV.reader` and `ContactCSV.reader` (FuzzCorpusTests checks that they are the same).
    static let readers = [
        CSVReader(columns: ["prefix", "price", "status"], required: ["prefix", "price"]),
        CSVReader(columns: ["number", "name", "reference", "groups"], required: ["number"]),
    ]

    static func run(_ bytes: [UInt8], _ check: inout PropertyCheck) {
        let lineCount = bytes.count(where: { $0 == UInt8(ascii: "\n") }) + 1
        for reader in readers {
            let (columns, items) = reader.read(bytes)
            var records: [(line: Int, fields: [String: String])] = []
            for item in items {
                if case .record(let line, let fields) = item { records.append((line, fields)) }
            }
            check.expect(records.count < lineCount, "\(records.count) records in \(lineCount) lines")
            check.expect(
                zip(records, records.dropFirst()).allSatisfy { $0.line < $1.line }, "line numbers do not rise")
            check.expect(records.allSatisfy { (2...lineCount).contains($0.line) }, "a line number outside the file")
            check.expect(columns.isSubset(of: reader.columns), "unknown columns \(columns)")
            if !records.isEmpty {
                check.expect(Set(reader.required).isSubset(of: columns), "a required column is missing")
            }
            for record in records {
                check.expect(Set(record.fields.keys) == columns, "record columns \(record.fields.keys) ≠ \(columns)")
            }
            // Written back, quoted: the same records (fields with a line break cannot be written on one line).
            let order = columns.sorted()
            let writable = records.filter { record in
                record.fields.values.allSatisfy { !$0.contains(where: { $0.isNewline }) }
            }
            guard !order.isEmpty, !writable.isEmpty else { continue }
            var file = order.joined(separator: ",") + "\n"
            for record in writable {
                file +=
                    order.map { "\"" + escaped(record.fields[$0]!) + "\"" }
                    .joined(separator: ",") + "\n"
            }
            let reread = reader.read(Array(file.utf8)).items.compactMap { item -> [String: String]? in
                if case .record(_, let fields) = item { return fields }
                return nil
            }
            check.expect(reread == writable.map(\.fields), "records written back read differently")
        }
    }
}
