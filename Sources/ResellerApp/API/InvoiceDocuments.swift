import InvoicePDF
import Invoicing
import NIOPosix

/// The renderings of a document that the invoicing endpoints serve beside JSON.
enum InvoiceDocuments {
    /// PDFs are drawn on threads of their own: a render blocks (it reads the fonts and draws every page), so it never
    /// runs on the cooperative executor, and two at a time bound what a burst of downloads costs.
    private static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        return pool
    }()

    /// The document as a PDF (docs/invoices.md, "PDF rendering"). A missing font or a libharu failure is the
    /// installation's fault, not the caller's: it is logged with the request id and answered 500.
    static func pdf(_ document: InvoiceDocument) async throws -> [UInt8] {
        try await pool.runIfActive { try InvoicePDFRenderer.render(document) }
    }
}
