import CHaru
import Foundation

/// One libharu document, made and freed by one `render` call: libharu keeps all its state in the document (fonts,
/// encoders, pages, the error), so documents on different threads share nothing.
///
/// libharu does not stop on an error: it calls the handler given to `HPDF_New` and returns the error number, and
/// later calls go on. The handler keeps the first error in `HaruErrorRecord`; `check()` turns it into a throw at
/// each step, and `bytes()` refuses to return a document that had one.
final class HaruDocument {
    static let pageWidth: Float = 595.276
    static let pageHeight: Float = 841.89

    let regular: HaruFont
    let bold: HaruFont
    private(set) var pages: [HPDF_Page] = []
    private let handle: HPDF_Doc
    private let errors: HaruErrorRecord

    init(fonts: InvoicePDFRenderer.Fonts) throws {
        for path in [fonts.regular, fonts.bold] where !FileManager.default.isReadableFile(atPath: path) {
            throw InvoicePDFError.fontNotFound(path: path)
        }
        let errors = HaruErrorRecord()
        let handler: HPDF_Error_Handler = { code, detail, record in
            guard let record else { return }
            Unmanaged<HaruErrorRecord>.fromOpaque(record).takeUnretainedValue().note(code: code, detail: detail)
        }
        guard let handle = HPDF_New(handler, Unmanaged.passUnretained(errors).toOpaque()) else {
            throw InvoicePDFError.outOfMemory
        }
        let regular: HaruFont
        let bold: HaruFont
        do {
            errors.step = "setting up the document"
            HPDF_SetCompressionMode(handle, HPDF_UINT(HPDF_COMP_ALL))
            HPDF_UseUTFEncodings(handle)
            HPDF_SetCurrentEncoder(handle, "UTF-8")
            try errors.check()
            regular = try HaruFont(document: handle, path: fonts.regular, errors: errors)
            bold = try HaruFont(document: handle, path: fonts.bold, errors: errors)
        } catch {
            HPDF_Free(handle)
            throw error
        }
        self.handle = handle
        self.errors = errors
        self.regular = regular
        self.bold = bold
    }

    deinit {
        HPDF_Free(handle)
    }

    /// Names the step now running, for the error libharu may report during it.
    func step(_ name: String) {
        errors.step = name
    }

    /// Throws the first error libharu has reported.
    func check() throws {
        try errors.check()
    }

    /// Title, creator and, when given, the creation date (midnight UTC of that day). libharu writes no date of its
    /// own and no file identifier (only encrypted documents have one), so the bytes depend on the document alone.
    func setInfo(title: String, creationDate: (year: Int, month: Int, day: Int)?) throws {
        step("writing the document information")
        HPDF_SetInfoAttr(handle, HPDF_INFO_TITLE, title)
        HPDF_SetInfoAttr(handle, HPDF_INFO_CREATOR, "sms-reseller")
        if let date = creationDate {
            var value = HPDF_Date()
            value.year = HPDF_INT(date.year)
            value.month = HPDF_INT(date.month)
            value.day = HPDF_INT(date.day)
            value.ind = CChar(UInt8(ascii: "Z"))
            HPDF_SetInfoDateAttr(handle, HPDF_INFO_CREATION_DATE, value)
        }
        try check()
    }

    /// A new A4 portrait page at the end.
    func addPage() throws -> HPDF_Page {
        step("adding page \(pages.count + 1)")
        guard let page = HPDF_AddPage(handle) else {
            try check()
            throw InvoicePDFError.libharu(code: 0, detail: 0, step: "adding page \(pages.count + 1)")
        }
        HPDF_Page_SetSize(page, HPDF_PAGE_SIZE_A4, HPDF_PAGE_PORTRAIT)
        try check()
        pages.append(page)
        return page
    }

    /// The finished PDF.
    func bytes() throws -> [UInt8] {
        step("drawing the pages")
        try check()
        step("saving the document")
        HPDF_SaveToStream(handle)
        try check()
        let size = Int(HPDF_GetStreamSize(handle))
        HPDF_ResetStream(handle)
        try check()
        var bytes = [UInt8](repeating: 0, count: size)
        var read = HPDF_UINT32(size)
        step("reading the saved document")
        HPDF_ReadFromStream(handle, &bytes, &read)
        try check()
        guard Int(read) == size, size > 0 else {
            throw InvoicePDFError.libharu(code: 0, detail: UInt(read), step: "reading the saved document")
        }
        return bytes
    }
}

/// Where libharu's error handler writes. It is called on the thread that made the failing call, which is the one
/// rendering the document.
final class HaruErrorRecord {
    var step = "creating the document"
    private(set) var first: InvoicePDFError?

    func note(code: HPDF_STATUS, detail: HPDF_STATUS) {
        if first == nil {
            first = .libharu(code: UInt(code), detail: UInt(detail), step: step)
        }
    }

    func check() throws {
        if let first {
            throw first
        }
    }
}

/// A TrueType font embedded with the UTF-8 encoder, what it can print, and how wide text set in it is.
final class HaruFont {
    let handle: HPDF_Font
    private let definition: HPDF_FontDef
    private var glyphs: [UInt32: Bool] = [:]
    private var advances: [Character: Float] = [:]
    /// What ends a text cut short: `…`, or `...` with a font that lacks it.
    private lazy var cutMark: String = hasGlyph("…") ? "…" : "..."

    init(document: HPDF_Doc, path: String, errors: HaruErrorRecord) throws {
        errors.step = "loading the font \(path)"
        guard let name = HPDF_LoadTTFontFromFile(document, path, HPDF_BOOL(HPDF_TRUE)),
            let handle = HPDF_GetFont(document, name, "UTF-8"),
            let definition = HPDF_Doc_FindFontDef(document, name)
        else {
            try errors.check()
            throw InvoicePDFError.libharu(code: 0, detail: 0, step: errors.step)
        }
        try errors.check()
        self.handle = handle
        self.definition = definition
    }

    /// `text` as this font can print it on one line: canonical composition first (so `u` + combining diaeresis is
    /// `ü`); every kind of line break, tab and space becomes a space; control and invisible format characters are
    /// dropped; a character the font has no glyph for, one outside the Basic Multilingual Plane (libharu's glyph
    /// lookup is 16-bit) and one of a right-to-left script (libharu neither shapes nor reorders) becomes `?`.
    func printable(_ text: String) -> String {
        var result = String.UnicodeScalarView()
        for scalar in text.precomposedStringWithCanonicalMapping.unicodeScalars {
            let properties = scalar.properties
            if properties.isWhitespace {
                result.append(" ")
            } else if properties.generalCategory == .control || properties.isDefaultIgnorableCodePoint {
                continue
            } else {
                result.append(hasGlyph(scalar) ? scalar : "?")
            }
        }
        return String(result)
    }

    private func hasGlyph(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        guard value <= 0xFFFF, !Self.isRightToLeft(value) else { return false }
        if let known = glyphs[value] {
            return known
        }
        let known = HPDF_TTFontDef_GetGlyphid(definition, HPDF_UINT16(value)) != 0
        glyphs[value] = known
        return known
    }

    /// Hebrew, Arabic, Syriac, Thaana, N'Ko, Samaritan, Mandaic and their presentation forms.
    private static func isRightToLeft(_ value: UInt32) -> Bool {
        (0x0590...0x08FF).contains(value) || (0xFB1D...0xFDFF).contains(value) || (0xFE70...0xFEFE).contains(value)
    }

    /// The width of printable `text` at `size` points, from `HPDF_Font_TextWidth` (libharu applies no kerning, so
    /// a text is as wide as its characters together).
    func width(_ text: String, size: Float) -> Float {
        var units: Float = 0
        for character in text {
            units += advance(character)
        }
        return units * size / 1000
    }

    private func advance(_ character: Character) -> Float {
        if let known = advances[character] {
            return known
        }
        let bytes = Array(String(character).utf8)
        let measured = Float(HPDF_Font_TextWidth(handle, bytes, HPDF_UINT(bytes.count)).width)
        advances[character] = measured
        return measured
    }

    /// Printable `text` broken into lines no wider than `width` at `size`: at spaces, and inside a word longer than
    /// a line. Past `maxLines` the text is cut, and the last line kept ends in `…`.
    func lines(_ text: String, size: Float, width: Float, maxLines: Int) -> [String] {
        var lines: [String] = []
        var current = ""
        var currentWidth: Float = 0
        let space = self.width(" ", size: size)
        // A column sized to its widest value must hold that value after the padding is added and taken off again.
        let width = width + 0.01
        for part in text.split(separator: " ") {
            var word = String(part)
            let wordWidth = self.width(word, size: size)
            if current.isEmpty ? wordWidth <= width : currentWidth + space + wordWidth <= width {
                if !current.isEmpty {
                    current += " "
                    currentWidth += space
                }
                current += word
                currentWidth += wordWidth
                continue
            }
            if !current.isEmpty {
                lines.append(current)
            }
            while self.width(word, size: size) > width {
                var prefix = ""
                var prefixWidth: Float = 0
                for character in word {
                    let characterWidth = advance(character) * size / 1000
                    if prefixWidth + characterWidth > width && !prefix.isEmpty {
                        break
                    }
                    prefix.append(character)
                    prefixWidth += characterWidth
                }
                lines.append(prefix)
                word = String(word.dropFirst(prefix.count))
            }
            current = word
            currentWidth = self.width(word, size: size)
        }
        if !current.isEmpty || lines.isEmpty {
            lines.append(current)
        }
        if lines.count > maxLines {
            lines = Array(lines.prefix(max(maxLines, 1)))
            lines[lines.count - 1] = cut(lines[lines.count - 1], size: size, width: width, always: true)
        }
        return lines
    }

    /// Printable `text` on one line no wider than `width`; when it is cut (or `always`), it ends in `…`.
    func cut(_ text: String, size: Float, width: Float, always: Bool = false) -> String {
        if !always && self.width(text, size: size) <= width {
            return text
        }
        var kept = text
        while !kept.isEmpty && self.width(kept + cutMark, size: size) > width {
            kept.removeLast()
        }
        while kept.last == " " {
            kept.removeLast()
        }
        return kept + cutMark
    }
}
