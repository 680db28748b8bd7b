import CHaru
import Foundation
import Invoicing
import Testing

@testable import InvoicePDF

/// Renders documents, reads the PDFs back with poppler-utils and checks that every figure and name is there, that
/// the pages are A4 with the fonts embedded, and that no text leaves its page or overlaps other text.
@Suite struct InvoicePDFRendererTests {
    /// Every figure of `document` and the names (when short enough to sit on one line) in `text`.
    func expectFigures(of document: InvoiceDocument, in text: String, sourceLocation: SourceLocation = #_sourceLocation)
    {
        var expected = [document.periodStart, document.periodEnd, document.currency]
        expected += [document.number, document.issueDate, document.dueDate].compactMap { $0 }
        for line in document.lines {
            expected += [line.quantity, line.unitPrice, line.net, line.vatRate, line.description]
        }
        for summary in document.vatSummary {
            expected += [summary.vatRate, summary.base, summary.vat]
        }
        expected += [document.netTotal, document.vatTotal, document.total]
        for party in [document.issuer, document.customer] {
            expected += [party.legalName] + party.address + [party.vatNumber, party.companyNumber].compactMap { $0 }
        }
        expected += document.notes
        if let terms = document.paymentTerms {
            expected.append(terms)
        }
        if let corrects = document.corrects {
            expected += [corrects.number, corrects.issueDate]
        }
        for value in expected {
            #expect(text.contains(value), "\(value) is missing from the PDF's text", sourceLocation: sourceLocation)
        }
    }

    /// Every word inside the printable area of its page (50 pt margins, the footer below), none over another.
    func expectTextInsideThePagesWithoutOverlap(
        _ pdf: RenderedPDF, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        for (index, page) in try pdf.words().enumerated() {
            #expect(!page.words.isEmpty, "page \(index + 1) has no text", sourceLocation: sourceLocation)
            for word in page.words {
                let inside =
                    word.xMin >= 45 && word.xMax <= page.width - 45 && word.yMin >= 35
                    && word.yMax <= page.height - 25
                #expect(inside, "page \(index + 1): \(word) is outside the margins", sourceLocation: sourceLocation)
            }
            for (position, word) in page.words.enumerated() {
                for other in page.words[(position + 1)...] where word.overlaps(other) {
                    Issue.record("page \(index + 1): \(word) overlaps \(other)", sourceLocation: sourceLocation)
                }
            }
        }
    }

    func expectA4(_ pdf: RenderedPDF, pages: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let info = try pdf.info()
        #expect(info["Page size"] == "595.276 x 841.89 pts (A4)", sourceLocation: sourceLocation)
        #expect(info["Pages"] == String(pages), sourceLocation: sourceLocation)
    }

    @Test func anInvoiceShowsEveryFigureAndNameOnOneA4PageWithEmbeddedFonts() throws {
        let document = SampleDocuments.invoice()
        let pdf = try RenderedPDF(try InvoicePDFRenderer.render(document))
        let text = try pdf.text()
        expectFigures(of: document, in: text)
        for heading in ["Invoice", "Description", "Quantity", "Unit price", "Net", "VAT %", "Net total", "VAT total"] {
            #expect(text.contains(heading), "\(heading) is missing")
        }
        #expect(text.contains("Total EUR"))
        #expect(text.contains("Denmark") && text.contains("Germany"))
        #expect(text.contains("Page 1 of 1"))
        #expect(!text.contains("DRAFT"))
        try expectA4(pdf, pages: 1)
        #expect(try pdf.info()["Title"] == "Invoice INV-2026-000123")
        let fonts = try pdf.fonts()
        #expect(fonts.count == 2, "\(fonts)")
        #expect(fonts.contains { $0.contains("DejaVuSans-Bold") }, "\(fonts)")
        for font in fonts {
            // name, type (CID TrueType), encoding, then emb, sub, uni: embedded, subset, with a ToUnicode map.
            #expect(font.contains("Identity-H       yes yes yes"), "not embedded: \(font)")
        }
        try expectTextInsideThePagesWithoutOverlap(pdf)
    }

    @Test func greekAndCyrillicNamesAndAReverseChargeNotePrint() throws {
        let document = SampleDocuments.reverseChargeInvoice()
        let pdf = try RenderedPDF(try InvoicePDFRenderer.render(document))
        let text = try pdf.text()
        expectFigures(of: document, in: text)
        #expect(text.contains("0.00% reverse charge"))
        #expect(text.contains("Greece") && text.contains("Russia"))
        #expect(!text.contains("?"), "a character printed as ?")
        try expectA4(pdf, pages: 1)
        try expectTextInsideThePagesWithoutOverlap(pdf)
    }

    @Test func aCreditNoteShowsTheInvoiceItCorrectsAndTheReason() throws {
        let document = SampleDocuments.creditNote()
        let pdf = try RenderedPDF(try InvoicePDFRenderer.render(document))
        let text = try pdf.text()
        expectFigures(of: document, in: text)
        #expect(text.contains("Credit note"))
        #expect(text.contains("INV-2026-000123 of 2026-12-01"))
        let words = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(words.contains("Reason: 120 parts were charged twice after an upstream retry"))
        #expect(try pdf.info()["Title"] == "Credit note CN-2026-000007")
        try expectA4(pdf, pages: 1)
        try expectTextInsideThePagesWithoutOverlap(pdf)
    }

    @Test func aDraftIsMarkedOnEveryPageAndHasNoNumber() throws {
        var document = SampleDocuments.long(lines: 40)
        document.status = .draft
        document.number = nil
        document.issueDate = nil
        document.dueDate = nil
        let pdf = try RenderedPDF(try InvoicePDFRenderer.render(document))
        let pages = try pdf.pages()
        #expect(pages.count == 2)
        for page in pages {
            #expect(page.contains("DRAFT – not numbered, not a valid invoice yet"))
            #expect(page.contains("Invoice (draft)"))
        }
        #expect(pages[0].contains("not assigned (draft)"))
        #expect(!pages.joined().contains("INV-2026-000123 "))
        expectFigures(of: document, in: pages.joined())
        try expectTextInsideThePagesWithoutOverlap(pdf)
    }

    @Test func aVoidedDraftSaysSoAndEmptyTextsAreNoError() throws {
        var document = SampleDocuments.draft()
        document.status = .voided
        document.lines[0].description = ""
        document.customer.address = ["", "   "]
        document.customer.vatNumber = ""
        document.paymentTerms = ""
        document.notes = ["", "First paragraph\n\nafter an empty line", "\u{200B}"]
        let pdf = try RenderedPDF(try InvoicePDFRenderer.render(document))
        let text = try pdf.text()
        #expect(text.contains("VOID – this draft was withdrawn and never numbered"))
        #expect(text.contains("none (void)"))
        #expect(text.contains("Invoice (void)"))
        #expect(!text.contains("DRAFT"))
        #expect(text.contains("First paragraph"))
        #expect(text.contains("after an empty line"))
        #expect(!text.contains("Payment terms"))
        // The empty and the invisible note leave no gap: the first paragraph follows the totals as closely as the
        // payment note does on the sample invoice.
        let lines = text.components(separatedBy: "\n")
        let total = try #require(lines.firstIndex { $0.contains("Total EUR") })
        let first = try #require(lines.firstIndex { $0.contains("First paragraph") })
        let sample = try RenderedPDF(try InvoicePDFRenderer.render(SampleDocuments.invoice())).text()
            .components(separatedBy: "\n")
        let sampleTotal = try #require(sample.firstIndex { $0.contains("Total EUR") })
        let sampleNote = try #require(sample.firstIndex { $0.contains("Payment terms") })
        #expect(first - total == sampleNote - sampleTotal)
        try expectA4(pdf, pages: 1)
        try expectTextInsideThePagesWithoutOverlap(pdf)
    }

    @Test func aLongInvoiceRunsOverThreePagesRepeatingTheTableHeader() throws {
        let document = SampleDocuments.long(lines: 70)
        let pdf = try RenderedPDF(try InvoicePDFRenderer.render(document))
        try expectA4(pdf, pages: 3)
        let pages = try pdf.pages()
        #expect(pages.count == 3)
        for (index, page) in pages.enumerated() {
            #expect(page.contains("Page \(index + 1) of 3"))
            #expect(page.contains("Unit price"), "page \(index + 1) has no table header")
        }
        #expect(pages[1].contains("Invoice INV-2026-000123, continued"))
        expectFigures(of: document, in: pages.joined())
        // Each line whole on one page, in order.
        var last = -1
        for line in document.lines {
            let page = pages.firstIndex { $0.contains(line.description) }
            #expect(page != nil && page! >= last, "line \(line.position) is missing or out of order")
            last = page ?? last
        }
        try expectTextInsideThePagesWithoutOverlap(pdf)
    }

    @Test func longTextsWrapOrAreCutVisiblyInsideThePage() throws {
        var document = SampleDocuments.invoice()
        let longName = (1...25).map { "Name\($0)" }.joined(separator: " ") + " Holding"
        document.issuer.legalName = String(longName.prefix(200))
        document.customer.legalName = String(repeating: "W", count: 200)
        document.customer.address = (1...40).map { "Address line \($0) with some more words in it" }
        let description = (1...100).map { "word\($0)" }.joined(separator: " ")
        document.lines[0].description = description
        document.lines[1].description = String(repeating: "x", count: 1000)
        document.notes = [String(repeating: "A very long note. ", count: 60)]
        let pdf = try RenderedPDF(try InvoicePDFRenderer.render(document))
        let text = try pdf.text()
        // The long description wraps and is printed whole; the 40 address lines stop with a count of the rest.
        #expect(text.contains("word1 ") && text.contains("word100"))
        #expect(text.contains("Address line 7 "))
        #expect(!text.contains("Address line 8 "))
        #expect(text.contains("… (33 more address lines)"))
        // The unbroken 200-character name is broken inside the word and cut after three lines with "…".
        #expect(text.contains("W…"))
        #expect(text.contains("Name1 Name2"))
        try expectTextInsideThePagesWithoutOverlap(pdf)
    }

    @Test func charactersTheFontLacksPrintAsQuestionMarks() throws {
        var document = SampleDocuments.invoice()
        document.customer.legalName = "株式会社 Tanaka 😀 شركة"
        document.customer.address = ["東京都 1-2-3", "תל אביב", "Zero\u{200B}width and e\u{301} composed"]
        document.lines[0].description = "Japan (+81) 日本"
        let pdf = try RenderedPDF(try InvoicePDFRenderer.render(document))
        let text = try pdf.text()
        #expect(text.contains("???? Tanaka ? ????"))
        #expect(text.contains("??? 1-2-3"))
        #expect(text.contains("?? ????"))
        #expect(text.contains("Zerowidth and é composed"))
        #expect(text.contains("Japan (+81) ??"))
        var expected = document
        expected.customer = .init(legalName: "Tanaka", address: ["1-2-3", "composed"], countryCode: "JP")
        expected.lines[0].description = "Japan (+81)"
        expectFigures(of: expected, in: text)
        try expectA4(pdf, pages: 1)
        try expectTextInsideThePagesWithoutOverlap(pdf)
    }

    @Test func theSameDocumentRendersTheSameBytes() throws {
        for document in [SampleDocuments.invoice(), SampleDocuments.draft(), SampleDocuments.creditNote()] {
            #expect(try InvoicePDFRenderer.render(document) == InvoicePDFRenderer.render(document))
        }
        #expect(
            try InvoicePDFRenderer.render(SampleDocuments.invoice())
                != InvoicePDFRenderer.render(SampleDocuments.creditNote()))
    }

    @Test func concurrentRendersGiveWhatOneAtATimeGives() async throws {
        let documents = (0..<12).map { index in
            switch index % 4 {
            case 0: return SampleDocuments.invoice()
            case 1: return SampleDocuments.creditNote()
            case 2: return SampleDocuments.reverseChargeInvoice()
            default: return SampleDocuments.long(lines: 30 + index)
            }
        }
        let alone = try documents.map { try InvoicePDFRenderer.render($0) }
        let together = try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
            for (index, document) in documents.enumerated() {
                group.addTask { (index, try InvoicePDFRenderer.render(document)) }
            }
            var results = [[UInt8]](repeating: [], count: documents.count)
            for try await (index, bytes) in group {
                results[index] = bytes
            }
            return results
        }
        #expect(together == alone)
    }

    @Test func aMissingFontIsAClearError() throws {
        var fonts = InvoicePDFRenderer.Fonts.dejaVuSans
        fonts.bold = "/nonexistent/DejaVuSans-Bold.ttf"
        #expect(throws: InvoicePDFError.fontNotFound(path: "/nonexistent/DejaVuSans-Bold.ttf")) {
            try InvoicePDFRenderer.render(SampleDocuments.invoice(), fonts: fonts)
        }
    }

    @Test(arguments: ["garbage", "truncated"])
    func aBrokenFontFileIsAnErrorFromLibharuNotACrash(_ kind: String) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("broken-\(UUID().uuidString).ttf")
        defer { try? FileManager.default.removeItem(at: path) }
        let data =
            kind == "garbage"
            ? Data(repeating: 0x5A, count: 4096)
            : try Data(contentsOf: URL(fileURLWithPath: InvoicePDFRenderer.Fonts.dejaVuSans.regular)).prefix(2000)
        try data.write(to: path)
        let error = #expect(throws: InvoicePDFError.self) {
            try InvoicePDFRenderer.render(
                SampleDocuments.invoice(), fonts: .init(regular: path.path, bold: path.path))
        }
        guard case .libharu(_, _, let step) = error else {
            Issue.record("expected a libharu error, got \(String(describing: error))")
            return
        }
        #expect(step == "loading the font \(path.path)")
    }

    @Test func anErrorLibharuReportsWhileDrawingIsThrownAndNoBytesAreReturned() throws {
        let pdf = try HaruDocument(fonts: .dejaVuSans)
        let page = try pdf.addPage()
        // A font size of 0 is refused by libharu, which reports it to the handler and goes on.
        HPDF_Page_SetFontAndSize(page, pdf.regular.handle, 0)
        #expect(
            throws: InvoicePDFError.libharu(
                code: UInt(HPDF_PAGE_INVALID_FONT_SIZE), detail: 0, step: "adding page 1")
        ) {
            try pdf.bytes()
        }
    }

    @Test func thePopplerToolsAreInstalled() throws {
        // The other tests fail with PopplerMissing too; this one says so by itself.
        for tool in ["pdftotext", "pdfinfo", "pdffonts"] {
            _ = try Poppler.run(tool, ["-v"])
        }
    }
}
