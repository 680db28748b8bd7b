import ResellerCore
import SMSCore

/// The CSV form of a price version: a header `prefix,price,status`, then one entry per line.
///
/// Read with `CSVReader` (BOM, `\r\n`, blank lines, spaces around fields and quotes are fine; columns in any order);
/// `status` may be left out (every entry is then sellable).
package enum PriceListCSV {
    package static let header = "prefix,price,status"
    /// The largest file accepted.
    package static let maximumBytes = 8 << 20

    package static let reader = CSVReader(columns: ["prefix", "price", "status"], required: ["prefix", "price"])

    /// Reads `bytes` into `collector`; problems with the file itself are reported as errors too.
    package static func read(_ bytes: [UInt8], into collector: inout PriceEntryCollector) {
        for item in reader.read(bytes).items {
            switch item {
            case .problem(let field, let message):
                collector.fail(field, message)
            case .record(let line, let fields):
                collector.add(
                    prefix: fields["prefix"]!, price: fields["price"]!, status: fields["status"],
                    source: .csv(line: line))
            }
        }
    }

    /// One line of the export (with its line end): `4479,0.0550,sellable`; the price is empty when there is none.
    package static func line(prefix: String, price: Money?, status: PriceStatus) -> String {
        "\(prefix),\(price?.description ?? ""),\(status.rawValue)\n"
    }
}
