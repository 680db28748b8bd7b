import Foundation
import Pricing
import ResellerCore
import SMSCore
import Testing

@Suite struct PriceListCSVTests {
    func read(_ text: String) -> PriceEntryCollector {
        var collector = PriceEntryCollector()
        PriceListCSV.read(Array(text.utf8), into: &collector)
        return collector
    }

    func errors(_ collector: PriceEntryCollector) -> [String: String] {
        Dictionary(collector.errors.map { ($0.field, $0.message) }, uniquingKeysWith: { first, _ in first })
    }

    @Test func readsQuotesBOMCRLFBlankLinesAndAnyColumnOrder() throws {
        let collector = read(
            "\u{FEFF}status , Prefix,price\r\n\r\nsellable,31,\"0.0725\"\r\n  forbidden , 7 ,  \r\n\"not_sellable\",\"44\",\"\"\r\n"
        )
        #expect(collector.errors.isEmpty, "\(collector.errors)")
        let entries = try collector.result(emptyField: "file")
        #expect(entries.map(\.prefix) == ["31", "7", "44"])
        #expect(entries[0].price == Money(minorUnits: 725))
        #expect(entries[0].status == .sellable && entries[1].status == .forbidden && entries[2].status == .notSellable)
        #expect(entries[1].price == nil && entries[2].price == nil)
        // Line numbers count every physical line, blank ones included, the header being 1.
        #expect(entries.map(\.source) == [.csv(line: 3), .csv(line: 4), .csv(line: 5)])
    }

    /// Found by fuzzing (docs/testing.md, "Input fuzzing"; input in Tests/FuzzCorpus/csv/): a combining mark right
    /// after a `,` or an opening `"` joined it into one Character, so the separator or the quote went unseen.
    @Test func aCombiningMarkAfterACommaOrAQuoteDoesNotHideIt() {
        let items = PriceListCSV.reader.read(Array("prefix,price,status\n\"\u{301}79\",\"0.05\",\u{301}x\n".utf8)).items
        #expect(items == [.record(line: 2, fields: ["prefix": "\u{301}79", "price": "0.05", "status": "\u{301}x"])])
    }

    @Test func statusColumnIsOptionalAndDefaultsToSellable() throws {
        let entries = try read("prefix,price\n44,0.04\n").result(emptyField: "file")
        #expect(
            entries == [
                PriceEntryInput(prefix: "44", price: Money(minorUnits: 400), status: .sellable, source: .csv(line: 2))
            ])
    }

    @Test func reportsEveryBadLineWithItsNumberAndColumn() {
        let collector = read(
            """
            prefix,price,status
            31,0.0725,sellable
            44,0.07251,sellable
            4,0.0500,sellable
            31,0.0800

            49,-0.01,sellable
            33,,sellable
            34,0.0300,cheap
            31,0.0100,sellable
            36,1000.0001,sellable
            +44,0.01,sellable
            "32,0.01,sellable
            "32" x,0.01,sellable
            39,abc,sellable
            """)
        let errors = errors(collector)
        #expect(errors["line 3: price"] == "must have at most 4 decimal places")
        #expect(errors["line 4: prefix"] == "does not start with an ITU-T calling code")
        #expect(errors["line 5"] == "has 2 fields; the header has 3")
        #expect(errors["line 7: price"] == "must not be negative")
        #expect(errors["line 8: price"] == "is required for a sellable entry")
        #expect(errors["line 9: status"] == "must be sellable, not_sellable or forbidden")
        #expect(errors["line 10: prefix"] == "31 is already priced by line 2")
        #expect(errors["line 11: price"] == "must be at most 1000.0000 credits per part")
        #expect(errors["line 12: prefix"]?.hasPrefix("must be digits only") == true)
        #expect(errors["line 13"] == "has an unterminated quote")
        #expect(errors["line 14"] == "has text after a closing quote")
        #expect(errors["line 15: price"] == "must be a decimal number such as \"12.5000\"")
        #expect(errors.count == 12, "\(errors)")
        #expect(throws: DomainError.self) { try collector.result(emptyField: "file") }
    }

    @Test func aWrongHeaderStopsReadingAtLineOne() {
        for header in ["prefix;price;status", "prefix,cost", "prefix,price,price", "code,price"] {
            let collector = read("\(header)\n31,0.01\n")
            #expect(collector.errors.count == 1, "\(header)")
            #expect(collector.errors.first?.field == "line 1: header", "\(header)")
        }
        #expect(read("").errors.map(\.field) == ["line 1: header"])
        #expect(read("\u{FF}\u{FE}").errors.isEmpty == false)
        let notUTF8 = { () -> PriceEntryCollector in
            var collector = PriceEntryCollector()
            PriceListCSV.read([0x70, 0xFF, 0x0A], into: &collector)
            return collector
        }()
        #expect(notUTF8.errors.map(\.field) == ["file"])
    }

    @Test func aFileWithOnlyAHeaderHasNoEntries() {
        let collector = read("prefix,price,status\n\n")
        #expect(collector.errors.isEmpty)
        #expect(throws: DomainError.validation([.init(field: "file", message: "a version needs at least one entry")])) {
            try collector.result(emptyField: "file")
        }
    }

    @Test func manyErrorsAreSummarised() {
        let lines = (0..<800).map { "x\($0),1,sellable" }.joined(separator: "\n")
        let collector = read("prefix,price,status\n" + lines)
        #expect(collector.errors.count == PriceEntryCollector.maximumReportedErrors)
        do {
            _ = try collector.result(emptyField: "file")
            Issue.record("no error")
        } catch let problem as DomainError {
            #expect(problem.fieldErrors.count == PriceEntryCollector.maximumReportedErrors + 1)
            #expect(problem.fieldErrors.last == .init(field: "file", message: "300 more errors not shown"))
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func prefixesMustStartWithACallingCode() {
        for valid in [
            "1", "1876", "44", "4479", "7", "76", "77", "31612",
            "999999999999999".replacingOccurrences(of: "9", with: "3"),
        ] {
            #expect(PriceRules.prefixError(valid) == nil, "\(valid)")
        }
        for invalid in ["", "4", "28", "88", "0044", "+44", "44 79", "4a", "1234567890123456", "٣١"] {
            #expect(PriceRules.prefixError(invalid) != nil, "\(invalid)")
        }
    }

    @Test func exportLinesAreTheImportFormat() throws {
        #expect(
            PriceListCSV.line(prefix: "4479", price: Money(minorUnits: 550), status: .sellable)
                == "4479,0.0550,sellable\n")
        #expect(PriceListCSV.line(prefix: "7", price: nil, status: .forbidden) == "7,,forbidden\n")
        let entries = try read(
            PriceListCSV.header + "\n" + PriceListCSV.line(prefix: "7", price: nil, status: .forbidden)
        ).result(emptyField: "file")
        #expect(entries.first?.status == .forbidden && entries.first?.price == nil)
    }
}
