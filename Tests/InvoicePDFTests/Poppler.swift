import Foundation

/// A rendered PDF in a temporary file, read back with poppler-utils' `pdftotext`, `pdfinfo` and `pdffonts`.
///
/// A missing tool fails the test with `PopplerMissing` (never a skip): `scripts/test.sh` installs poppler-utils.
/// With `INVOICE_PDF_SAMPLES` naming a folder, a copy of each PDF is kept there, named after the test, to look at.
final class RenderedPDF {
    /// A word as `pdftotext -bbox` places it, in points from the top left corner of its page.
    struct Word: CustomStringConvertible {
        let text: String
        let xMin: Double
        let yMin: Double
        let xMax: Double
        let yMax: Double

        func overlaps(_ other: Word, tolerance: Double = 0.3) -> Bool {
            xMin < other.xMax - tolerance && other.xMin < xMax - tolerance && yMin < other.yMax - tolerance
                && other.yMin < yMax - tolerance
        }

        var description: String { "\"\(text)\" [\(xMin), \(yMin)]–[\(xMax), \(yMax)]" }
    }

    let path: String

    init(_ bytes: [UInt8], name: String = #function) throws {
        path =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("invoice-pdf-test-\(UUID().uuidString).pdf").path
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw PopplerFailure(message: "cannot write \(path)")
        }
        if let samples = ProcessInfo.processInfo.environment["INVOICE_PDF_SAMPLES"], !samples.isEmpty {
            let file = name.prefix { $0 != "(" }
            _ = FileManager.default.createFile(atPath: "\(samples)/\(file).pdf", contents: Data(bytes))
        }
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// `pdftotext -layout`: the pages' text as laid out, pages separated by form feeds.
    func text() throws -> String {
        try Poppler.run("pdftotext", ["-layout", "-enc", "UTF-8", path, "-"])
    }

    /// The text of each page.
    func pages() throws -> [String] {
        var pages = try text().components(separatedBy: "\u{0C}")
        if pages.last?.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty == true {
            pages.removeLast()
        }
        return pages
    }

    /// `pdfinfo`: `Pages:`, `Page size:`, `Title:`, ….
    func info() throws -> [String: String] {
        var info: [String: String] = [:]
        for line in try Poppler.run("pdfinfo", [path]).split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            info[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return info
    }

    /// `pdffonts`: one line per font, after the two heading lines.
    func fonts() throws -> [String] {
        Array(try Poppler.run("pdffonts", [path]).split(separator: "\n").dropFirst(2).map(String.init))
    }

    /// `pdftotext -bbox`: the words of each page with their boxes, and each page's size.
    func words() throws -> [(width: Double, height: Double, words: [Word])] {
        let xhtml = try Poppler.run("pdftotext", ["-bbox", "-enc", "UTF-8", path, "-"])
        var pages: [(width: Double, height: Double, words: [Word])] = []
        let pagePattern = #/<page width="([0-9.]+)" height="([0-9.]+)">/#
        let wordPattern = #/<word xMin="([0-9.-]+)" yMin="([0-9.-]+)" xMax="([0-9.-]+)" yMax="([0-9.-]+)">(.*)</word>/#
        for line in xhtml.split(separator: "\n") {
            if let page = line.firstMatch(of: pagePattern) {
                pages.append((Double(page.1) ?? 0, Double(page.2) ?? 0, []))
            } else if let word = line.firstMatch(of: wordPattern), !pages.isEmpty {
                pages[pages.count - 1].words.append(
                    Word(
                        text: String(word.5), xMin: Double(word.1) ?? 0, yMin: Double(word.2) ?? 0,
                        xMax: Double(word.3) ?? 0, yMax: Double(word.4) ?? 0))
            }
        }
        return pages
    }
}

struct PopplerMissing: Error, CustomStringConvertible {
    let tool: String

    var description: String {
        "\(tool) is not installed: the PDF tests read the rendered invoices back with poppler-utils "
            + "(apt-get install poppler-utils; scripts/test.sh installs it)"
    }
}

struct PopplerFailure: Error, CustomStringConvertible {
    let message: String

    var description: String { message }
}

enum Poppler {
    static func run(_ tool: String, _ arguments: [String]) throws -> String {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        guard
            let executable = directories.map({ "\($0)/\(tool)" }).first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else { throw PopplerMissing(tool: tool) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        let errors = FileManager.default.temporaryDirectory.appendingPathComponent("poppler-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errors) }
        process.standardOutput = output
        process.standardError = try FileHandle(forWritingTo: errors)
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let message = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
            throw PopplerFailure(
                message:
                    "\(tool) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus): \(message)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
