import Foundation

/// A document as CSV (RFC 4180, UTF-8, CRLF): a header, one `line` record per line, one `vat` record per rate and a
/// `total` record. Every record repeats the document's identity, so a folder of these files concatenates into one
/// table. Columns (docs/invoices.md): `record, number, kind, status, issue_date, due_date, period_start, period_end,
/// currency, issuer, customer, customer_vat_number, position, description, quantity, unit, unit_price, vat_rate,
/// vat_category, net, vat, total`.
package enum InvoiceCSV {
    package static let columns = [
        "record", "number", "kind", "status", "issue_date", "due_date", "period_start", "period_end", "currency",
        "issuer", "customer", "customer_vat_number", "position", "description", "quantity", "unit", "unit_price",
        "vat_rate", "vat_category", "net", "vat", "total",
    ]

    package static func render(_ document: InvoiceDocument) -> String {
        let head = [
            document.number ?? "", document.kind.rawValue, document.status.rawValue, document.issueDate ?? "",
            document.dueDate ?? "", document.periodStart, document.periodEnd, document.currency,
            document.issuer.legalName, document.customer.legalName, document.customer.vatNumber ?? "",
        ]
        var records = [columns]
        for line in document.lines {
            records.append(
                ["line"] + head + [
                    String(line.position), line.description, line.quantity, line.unit, line.unitPrice, line.vatRate,
                    line.vatCategory.rawValue, line.net, "", "",
                ])
        }
        for vat in document.vatSummary {
            records.append(
                ["vat"] + head + ["", "", "", "", "", vat.vatRate, vat.vatCategory.rawValue, vat.base, vat.vat, ""])
        }
        records.append(
            ["total"] + head + ["", "", "", "", "", "", "", document.netTotal, document.vatTotal, document.total])
        return records.map { $0.map(field).joined(separator: ",") + "\r\n" }.joined()
    }

    /// Quoted when it holds a comma, a quote, a line break or leading or trailing space; a leading `=`, `+`, `-`,
    /// `@` of text (not of a number) is prefixed with `'` so that spreadsheets do not run it as a formula.
    package static func field(_ value: String) -> String {
        var value = value
        if let first = value.first, "=+-@".contains(first), Double(value) == nil { value = "'" + value }
        let needsQuotes =
            value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
            || value.first == " " || value.last == " "
        return needsQuotes ? "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : value
    }
}
