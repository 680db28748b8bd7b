import CHaru
import Foundation
import Invoicing

/// Where everything goes on the pages (docs/invoices.md, "PDF rendering"): the first page has the header (issuer, title and
/// references, customer), then the line table runs over as many pages as it needs, repeating its header, then the
/// VAT summary with the totals (kept together), the payment terms and the notes. Every page has a footer with the
/// document's name and "Page i of n"; a draft or a voided document has a banner on every page.
///
/// Text that could run too long is wrapped, and where even that has to end (a party block, a description), cut
/// with `…`; amounts and references are wrapped, never cut.
struct InvoiceLayout {
    private struct Style {
        let font: HaruFont
        let size: Float
        var gray: Float = 0

        var lineHeight: Float { size * 1.3 }
    }

    private enum Align {
        case left, right
    }

    private struct Column {
        let title: String
        let align: Align
        let maxWidth: Float
        let value: (InvoiceDocument.Line) -> String
        var width: Float = 0
    }

    private static let left: Float = 50
    private static let right: Float = HaruDocument.pageWidth - 50
    private static let contentWidth = right - left
    private static let top: Float = HaruDocument.pageHeight - 45
    /// Content stays above this line; the footer is below it.
    private static let bottom: Float = 62
    private static let footerBaseline: Float = 36
    private static let cellPadding: Float = 5
    /// A description longer than this many lines is cut, so that a row always fits on a page.
    private static let maxDescriptionLines = 50
    private static let maxAddressLines = 8

    private let document: InvoiceDocument
    private let pdf: HaruDocument
    private let body: Style
    private let strong: Style
    private let small: Style
    private let label: Style
    private let table: Style
    private let tableHeader: Style
    private var page: HPDF_Page?
    private var y: Float = 0
    private var columns: [Column] = []

    init(document: InvoiceDocument, pdf: HaruDocument) {
        self.document = document
        self.pdf = pdf
        body = Style(font: pdf.regular, size: 9)
        strong = Style(font: pdf.bold, size: 9)
        small = Style(font: pdf.regular, size: 7.5, gray: 0.35)
        label = Style(font: pdf.regular, size: 8, gray: 0.4)
        table = Style(font: pdf.regular, size: 8)
        tableHeader = Style(font: pdf.bold, size: 8)
    }

    private var title: String {
        document.kind == .invoice ? "Invoice" : "Credit note"
    }

    /// `Invoice INV-2026-000123`, `Credit note (draft)`.
    private var name: String {
        switch document.status {
        case .issued: return "\(title) \(document.number ?? "")"
        case .draft: return "\(title) (draft)"
        case .voided: return "\(title) (void)"
        }
    }

    mutating func draw() throws {
        try pdf.setInfo(title: name, creationDate: document.issueDate.flatMap(Self.date))
        try newPage()
        drawHeader()
        drawCorrection()
        try drawLines()
        try drawTotals()
        try drawTermsAndNotes()
        drawFooters()
    }

    // MARK: Header

    private mutating func drawHeader() {
        let columnWidth: Float = 255
        var leftY = y
        leftY = drawParty(document.issuer, x: Self.left, y: leftY, width: columnWidth, nameSize: 11)

        let metaX: Float = Self.right - 240
        var rightY = y
        let titleStyle = Style(font: pdf.bold, size: 20)
        text(title, x: Self.right - width(title, titleStyle), y: rightY - 18, titleStyle)
        rightY -= 34
        var rows: [(String, String)] = [
            ("Number", document.number ?? (document.status == .voided ? "none (void)" : "not assigned (draft)")),
            ("Issue date", document.issueDate ?? "–"),
            ("Due date", document.dueDate ?? "–"),
            ("Period", "\(document.periodStart) to \(document.periodEnd)"),
            ("Currency", document.currency),
        ]
        if let corrects = document.corrects {
            rows.append(("Corrects", "\(corrects.number) of \(corrects.issueDate)"))
        }
        let labelWidth: Float = 62
        for (key, value) in rows {
            let valueLines = lines(value, strong, width: Self.right - metaX - labelWidth, maxLines: 3)
            text(key, x: metaX, y: rightY - body.size, label)
            for line in valueLines {
                text(line, x: Self.right - width(line, strong), y: rightY - body.size, strong)
                rightY -= strong.lineHeight
            }
        }

        y = min(leftY, rightY) - 16
        text("Bill to", x: Self.left, y: y - label.size, label)
        y -= label.lineHeight + 2
        y = drawParty(document.customer, x: Self.left, y: y, width: columnWidth, nameSize: 10)
        y -= 14
    }

    /// The party block from `y` down; answers where it ends. At most 3 lines of name, `maxAddressLines` address
    /// lines (one line each, cut with `…`; a last line says how many more were left out), country, VAT and company
    /// numbers.
    private func drawParty(_ party: InvoiceDocument.Party, x: Float, y: Float, width: Float, nameSize: Float)
        -> Float
    {
        var y = y
        let nameStyle = Style(font: pdf.bold, size: nameSize)
        for line in lines(party.legalName, nameStyle, width: width, maxLines: 3) {
            text(line, x: x, y: y - nameSize, nameStyle)
            y -= nameStyle.lineHeight
        }
        y -= 2
        var address = party.address.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        if address.count > Self.maxAddressLines {
            let hidden = address.count - (Self.maxAddressLines - 1)
            address = Array(address.prefix(Self.maxAddressLines - 1)) + ["… (\(hidden) more address lines)"]
        }
        var rest = address.map { ($0, body) }
        rest.append((Self.countryName(party.countryCode), body))
        if let vat = party.vatNumber, !vat.isEmpty {
            rest.append(("VAT no. \(vat)", body))
        }
        if let company = party.companyNumber, !company.isEmpty {
            rest.append(("Company no. \(company)", body))
        }
        for (line, style) in rest {
            text(
                style.font.cut(style.font.printable(line), size: style.size, width: width), x: x, y: y - style.size,
                style)
            y -= style.lineHeight
        }
        return y
    }

    /// A credit note says which invoice it corrects and why, before its lines.
    private mutating func drawCorrection() {
        guard let corrects = document.corrects else { return }
        let sentence =
            "This credit note corrects invoice \(corrects.number) of \(corrects.issueDate). Reason: \(corrects.reason)"
        for line in lines(sentence, body, width: Self.contentWidth, maxLines: 8) {
            text(line, x: Self.left, y: y - body.size, body)
            y -= body.lineHeight
        }
        y -= 12
    }

    // MARK: Lines

    private mutating func drawLines() throws {
        pdf.step("drawing the lines")
        columns = [
            Column(title: "#", align: .right, maxWidth: 30) { String($0.position) },
            Column(title: "Description", align: .left, maxWidth: .infinity) { $0.description },
            Column(title: "Quantity", align: .right, maxWidth: 80) { $0.quantity },
            Column(title: "Unit", align: .left, maxWidth: 60) { $0.unit },
            Column(title: "Unit price", align: .right, maxWidth: 85) { $0.unitPrice },
            Column(title: "Net", align: .right, maxWidth: 85) { $0.net },
            Column(title: "VAT %", align: .right, maxWidth: 50) { $0.vatRate },
        ]
        var fixed: Float = 0
        for index in columns.indices where columns[index].maxWidth.isFinite {
            var natural = width(columns[index].title, tableHeader)
            for line in document.lines {
                natural = max(natural, width(columns[index].value(line), table))
            }
            columns[index].width = min(natural + 2 * Self.cellPadding, columns[index].maxWidth)
            fixed += columns[index].width
        }
        columns[1].width = Self.contentWidth - fixed

        try need(tableHeader.lineHeight * 2 + 2 * Self.cellPadding)
        drawTableHeader()
        for line in document.lines {
            let cells = columns.map { column in
                lines(
                    column.value(line), table, width: column.width - 2 * Self.cellPadding,
                    maxLines: column.maxWidth.isFinite ? 20 : Self.maxDescriptionLines)
            }
            let height = rowHeight(lineCount: cells.map(\.count).max() ?? 1, table)
            if try need(height) {
                drawTableHeader()
            }
            drawRow(cells, style: table)
            y -= height
            rule(y: y, gray: 0.82, width: 0.4)
        }
        if document.lines.isEmpty {
            try need(table.lineHeight + 2 * Self.cellPadding)
            text("No lines.", x: Self.left + Self.cellPadding, y: y - Self.cellPadding - table.size, table)
            y -= rowHeight(lineCount: 1, table)
        }
        y -= 14
    }

    private mutating func drawTableHeader() {
        let height = rowHeight(lineCount: 1, tableHeader)
        fill(x: Self.left, y: y - height, width: Self.contentWidth, height: height, gray: 0.9)
        drawRow(columns.map { [$0.title] }, style: tableHeader)
        y -= height
        rule(y: y, gray: 0.5, width: 0.6)
    }

    private func drawRow(_ cells: [[String]], style: Style) {
        var x = Self.left
        for (column, lines) in zip(columns, cells) {
            var baseline = y - Self.cellPadding - style.size
            for line in lines {
                let lineX =
                    column.align == .left
                    ? x + Self.cellPadding : x + column.width - Self.cellPadding - width(line, style)
                text(line, x: lineX, y: baseline, style)
                baseline -= style.lineHeight
            }
            x += column.width
        }
    }

    private func rowHeight(lineCount: Int, _ style: Style) -> Float {
        2 * Self.cellPadding + Float(lineCount - 1) * style.lineHeight + style.size * 1.25
    }

    // MARK: Totals

    private mutating func drawTotals() throws {
        pdf.step("drawing the totals")
        let x = Self.right - 260
        let rateWidth: Float = 120
        let amountWidth: Float = 70
        var rows: [(rate: [String], base: [String], vat: [String])] = []
        for summary in document.vatSummary {
            let category: String
            switch summary.vatCategory {
            case .standard: category = "VAT"
            case .reverseCharge: category = "reverse charge"
            case .exempt: category = "exempt"
            }
            rows.append(
                (
                    lines("\(summary.vatRate)% \(category)", body, width: rateWidth - 4, maxLines: 3),
                    lines(summary.base, body, width: amountWidth - 4, maxLines: 5),
                    lines(summary.vat, body, width: amountWidth - 4, maxLines: 5)
                ))
        }
        let totalStyle = Style(font: pdf.bold, size: 11)
        let totals: [(String, String, Style)] = [
            ("Net total", document.netTotal, body),
            ("VAT total", document.vatTotal, body),
            ("Total \(document.currency)", document.total, totalStyle),
        ]
        let totalLines = totals.map { lines($0.1, $0.2, width: 150, maxLines: 5) }
        var height = body.lineHeight + 6
        for row in rows {
            height += Float(max(row.rate.count, row.base.count, row.vat.count)) * body.lineHeight
        }
        height += 10
        for (index, total) in totals.enumerated() {
            height += Float(totalLines[index].count) * total.2.lineHeight + 2
        }
        try need(height)

        let baseRight = x + rateWidth + amountWidth
        let vatRight = Self.right
        text("VAT rate", x: x, y: y - label.size, label)
        text("Base", x: baseRight - width("Base", label), y: y - label.size, label)
        text("VAT", x: vatRight - width("VAT", label), y: y - label.size, label)
        y -= body.lineHeight + 2
        rule(y: y + 2, gray: 0.7, width: 0.4, from: x)
        y -= 4
        for row in rows {
            var lineY = y
            for line in row.rate {
                text(line, x: x, y: lineY - body.size, body)
                lineY -= body.lineHeight
            }
            for (right, cell) in [(baseRight, row.base), (vatRight, row.vat)] {
                var cellY = y
                for line in cell {
                    text(line, x: right - width(line, body), y: cellY - body.size, body)
                    cellY -= body.lineHeight
                }
            }
            y -= Float(max(row.rate.count, row.base.count, row.vat.count)) * body.lineHeight
        }
        y -= 4
        rule(y: y, gray: 0.5, width: 0.6, from: x)
        y -= 6
        for (index, (name, _, style)) in totals.enumerated() {
            if index == totals.count - 1 {
                y -= 2
            }
            text(name, x: x, y: y - style.size, style)
            for line in totalLines[index] {
                text(line, x: Self.right - width(line, style), y: y - style.size, style)
                y -= style.lineHeight
            }
        }
        y -= 14
    }

    // MARK: Terms and notes

    private mutating func drawTermsAndNotes() throws {
        pdf.step("drawing the notes")
        var paragraphs: [(String, Style)] = []
        if let terms = document.paymentTerms, !terms.isEmpty {
            paragraphs.append(("Payment terms: \(terms)", body))
        }
        // A note with nothing printable in it (empty, spaces, invisible characters) leaves no gap.
        for note in document.notes where !body.font.printable(note).allSatisfy({ $0 == " " }) {
            paragraphs.append((note, body))
        }
        for (paragraph, style) in paragraphs {
            for piece in paragraph.split(separator: "\n", omittingEmptySubsequences: false) {
                for line in lines(String(piece), style, width: Self.contentWidth, maxLines: 40) {
                    try need(style.lineHeight)
                    text(line, x: Self.left, y: y - style.size, style)
                    y -= style.lineHeight
                }
            }
            y -= 5
        }
    }

    // MARK: Pages

    /// Starts a new page when `height` does not fit on this one; answers whether it did.
    @discardableResult
    private mutating func need(_ height: Float) throws -> Bool {
        guard y - height < Self.bottom else { return false }
        try newPage()
        let heading = Style(font: pdf.bold, size: 10)
        text(
            pdf.bold.cut(pdf.bold.printable("\(name), continued"), size: 10, width: Self.contentWidth),
            x: Self.left, y: y - 10, heading)
        y -= heading.lineHeight + 10
        return true
    }

    private mutating func newPage() throws {
        page = try pdf.addPage()
        y = Self.top
        if document.status != .issued {
            let banner =
                document.status == .draft
                ? "DRAFT – not numbered, not a valid \(title.lowercased()) yet"
                : "VOID – this draft was withdrawn and never numbered"
            let style = Style(font: pdf.bold, size: 12)
            if let page {
                HPDF_Page_SetRGBFill(page, 1, 0.92, 0.92)
                HPDF_Page_SetRGBStroke(page, 0.75, 0.1, 0.1)
                HPDF_Page_SetLineWidth(page, 1)
                HPDF_Page_Rectangle(page, Self.left, y - 22, Self.contentWidth, 22)
                HPDF_Page_FillStroke(page)
                let bannerX = Self.left + (Self.contentWidth - width(banner, style)) / 2
                text(banner, x: bannerX, y: y - 15.5, style, color: (0.75, 0.1, 0.1))
            }
            y -= 34
        }
    }

    private func drawFooters() {
        let count = pdf.pages.count
        for (index, footerPage) in pdf.pages.enumerated() {
            let pageNumber = "Page \(index + 1) of \(count)"
            let numberWidth = width(pageNumber, small)
            let left = small.font.cut(
                small.font.printable("\(name) · \(document.issuer.legalName)"), size: small.size,
                width: Self.contentWidth - numberWidth - 20)
            HPDF_Page_SetGrayStroke(footerPage, 0.7)
            HPDF_Page_SetLineWidth(footerPage, 0.4)
            HPDF_Page_MoveTo(footerPage, Self.left, Self.footerBaseline + 12)
            HPDF_Page_LineTo(footerPage, Self.right, Self.footerBaseline + 12)
            HPDF_Page_Stroke(footerPage)
            draw(left, on: footerPage, x: Self.left, y: Self.footerBaseline, small, color: nil)
            draw(pageNumber, on: footerPage, x: Self.right - numberWidth, y: Self.footerBaseline, small, color: nil)
        }
    }

    // MARK: Drawing

    /// `text` made printable and wrapped to `width`.
    private func lines(_ text: String, _ style: Style, width: Float, maxLines: Int) -> [String] {
        style.font.lines(style.font.printable(text), size: style.size, width: width, maxLines: maxLines)
    }

    private func width(_ text: String, _ style: Style) -> Float {
        style.font.width(style.font.printable(text), size: style.size)
    }

    private func text(_ text: String, x: Float, y: Float, _ style: Style, color: (Float, Float, Float)? = nil) {
        guard let page else { return }
        draw(text, on: page, x: x, y: y, style, color: color)
    }

    private func draw(
        _ text: String, on page: HPDF_Page, x: Float, y: Float, _ style: Style, color: (Float, Float, Float)?
    ) {
        if let color {
            HPDF_Page_SetRGBFill(page, color.0, color.1, color.2)
        } else {
            HPDF_Page_SetGrayFill(page, style.gray)
        }
        HPDF_Page_BeginText(page)
        HPDF_Page_SetFontAndSize(page, style.font.handle, style.size)
        HPDF_Page_TextOut(page, x, y, style.font.printable(text))
        HPDF_Page_EndText(page)
    }

    private func rule(y: Float, gray: Float, width: Float, from x: Float = left) {
        guard let page else { return }
        HPDF_Page_SetGrayStroke(page, gray)
        HPDF_Page_SetLineWidth(page, width)
        HPDF_Page_MoveTo(page, x, y)
        HPDF_Page_LineTo(page, Self.right, y)
        HPDF_Page_Stroke(page)
    }

    private func fill(x: Float, y: Float, width: Float, height: Float, gray: Float) {
        guard let page else { return }
        HPDF_Page_SetGrayFill(page, gray)
        HPDF_Page_Rectangle(page, x, y, width, height)
        HPDF_Page_Fill(page)
    }

    // MARK: Values

    /// `2026-12-01` as year, month, day.
    private static func date(_ text: String) -> (year: Int, month: Int, day: Int)? {
        let parts = text.split(separator: "-")
        guard parts.count == 3, let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
            (1...9999).contains(year), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        return (year, month, day)
    }

    /// `Denmark` for `DK`; the code itself when it names no country.
    static func countryName(_ code: String) -> String {
        let upper = code.uppercased()
        guard upper.count == 2, upper.allSatisfy({ $0.isASCII && $0.isLetter }),
            let name = Locale(identifier: "en_US").localizedString(forRegionCode: upper), name != upper
        else { return code }
        return name
    }
}
