import HTTPTypes
import Invoicing

/// The renderings of a document that the invoicing endpoints serve beside JSON.
enum InvoiceDocuments {
    /// The document as a PDF.
    static func pdf(_ document: InvoiceDocument) throws -> [UInt8] {
        throw APIProblem(
            .notAcceptable, code: "not_acceptable", detail: "PDF rendering is not available in this build.")
    }
}
