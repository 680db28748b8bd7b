import Contacts
import Foundation
import FuzzTargets
import Pricing
import ResellerCore
import Testing

/// Every committed fuzz input (the seeds and the inputs of past findings, `Tests/FuzzCorpus/<target>/`) through the
/// same target functions as `scripts/fuzz.sh`, so that a normal test run checks every one of them (see
/// docs/testing.md, "Input fuzzing").
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FuzzCorpus")

    @Test(arguments: FuzzTarget.allCases)
    func committedInputsKeepTheirProperties(target: FuzzTarget) throws {
        let files = FuzzCorpus.files(at: Self.corpus.appendingPathComponent(target.rawValue))
        #expect(!files.isEmpty, "no seed inputs for \(target.rawValue)")
        for file in files {
            let failures = target.run(try [UInt8](Data(contentsOf: file)))
            #expect(failures.isEmpty, "\(target.rawValue)/\(file.lastPathComponent): \(failures)")
        }
    }

    /// The fuzzer reads CSV with the columns the imports use.
    @Test func theCSVTargetUsesTheImportsColumns() {
        let columns = FuzzTarget.csvColumns
        #expect(columns.count == 2)
        #expect(columns.first?.columns == PriceListCSV.reader.columns)
        #expect(columns.first?.required == PriceListCSV.reader.required)
        #expect(columns.last?.columns == ContactCSV.reader.columns)
        #expect(columns.last?.required == ContactCSV.reader.required)
    }
}
