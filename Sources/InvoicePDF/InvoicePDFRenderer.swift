import Invoicing

/// Renders an `InvoiceDocument` as a PDF with libharu: A4 portrait, text in an embedded TrueType font, amounts
/// printed exactly as the document writes them (docs/invoices.md, "PDF rendering").
///
/// Each call makes and frees its own libharu document and shares nothing with other calls, so concurrent requests
/// may render at the same time. The same document and fonts give the same bytes.
package enum InvoicePDFRenderer {
    /// The TrueType fonts the text is set in, embedded in the PDF. Both must have a Unicode `cmap`.
    package struct Fonts: Sendable, Hashable {
        package var regular: String
        package var bold: String

        package init(regular: String, bold: String) {
            self.regular = regular
            self.bold = bold
        }

        /// DejaVu Sans from Debian's `fonts-dejavu-core`.
        package static let dejaVuSans = Fonts(
            regular: "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            bold: "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
        )
    }

    /// The PDF of `document`, as bytes.
    ///
    /// Characters the fonts have no glyph for (CJK, emoji), and right-to-left scripts (Arabic, Hebrew), which
    /// libharu can neither shape nor reorder, print as `?`; invisible format characters are left out.
    /// - Throws: `InvoicePDFError`: a font file that is missing or unreadable, or any error libharu reports.
    package static func render(_ document: InvoiceDocument, fonts: Fonts = .dejaVuSans) throws -> [UInt8] {
        let pdf = try HaruDocument(fonts: fonts)
        var layout = InvoiceLayout(document: document, pdf: pdf)
        try layout.draw()
        return try pdf.bytes()
    }
}

/// Why a document could not be rendered.
package enum InvoicePDFError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A font file does not exist or cannot be read.
    case fontNotFound(path: String)
    /// libharu could not allocate its document.
    case outOfMemory
    /// libharu reported an error (codes in `hpdf_error.h`): `code` is its error number, `detail` its detail number.
    case libharu(code: UInt, detail: UInt, step: String)

    package var description: String {
        switch self {
        case .fontNotFound(let path):
            return "invoice PDF: the font file \(path) does not exist or cannot be read (install fonts-dejavu-core)"
        case .outOfMemory:
            return "invoice PDF: libharu could not allocate a document"
        case .libharu(let code, let detail, let step):
            return "invoice PDF: libharu error 0x\(String(code, radix: 16, uppercase: true)) (detail \(detail)) "
                + "while \(step)"
        }
    }
}
