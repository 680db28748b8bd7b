import Foundation
import Invoicing

/// Documents for the PDF tests, each with every figure distinct so that finding it in the text means something.
enum SampleDocuments {
    static let danishIssuer = InvoiceDocument.Party(
        legalName: "Ærøskøbing Müller & Søn ApS",
        address: ["Vestergade 12", "5970 Ærøskøbing"], countryCode: "DK", vatNumber: "DK12345678",
        companyNumber: "CVR 12345678")

    static let germanCustomer = InvoiceDocument.Party(
        legalName: "Großhändler Jürgen Weiß GmbH",
        address: ["Königstraße 7", "70173 Stuttgart"], countryCode: "DE", vatNumber: "DE811907980")

    static let russianIssuer = InvoiceDocument.Party(
        legalName: "ООО «Северный Ветер»",
        address: ["ул. Ленина, д. 5", "190000 Санкт-Петербург"], countryCode: "RU", vatNumber: "7801234567")

    static let greekCustomer = InvoiceDocument.Party(
        legalName: "Αθηναϊκή Εταιρεία Μηνυμάτων Α.Ε.",
        address: ["Οδός Ερμού 12", "105 63 Αθήνα"], countryCode: "GR", vatNumber: "EL094259216")

    static func line(_ position: Int, _ description: String, quantity: String, unitPrice: String, net: String)
        -> InvoiceDocument.Line
    {
        InvoiceDocument.Line(
            position: position, description: description, quantity: quantity, unit: "part", unitPrice: unitPrice,
            net: net, vatRate: "21.00", vatCategory: .standard)
    }

    static func invoice(
        issuer: InvoiceDocument.Party = danishIssuer, customer: InvoiceDocument.Party = germanCustomer
    ) -> InvoiceDocument {
        InvoiceDocument(
            id: UUID(uuidString: "6F1B3C1E-2D0A-4E59-9E55-0C7B1D7A9A01")!, kind: .invoice, status: .issued,
            number: "INV-2026-000123", issueDate: "2026-12-01", dueDate: "2026-12-31", periodStart: "2026-11-01",
            periodEnd: "2026-11-30", currency: "EUR", issuer: issuer, customer: customer,
            lines: [
                line(1, "Netherlands (+31), GSM 7-bit", quantity: "1234", unitPrice: "0.00725000", net: "8.95"),
                line(2, "Germany (+49), Unicode", quantity: "567", unitPrice: "0.08310000", net: "47.12"),
                InvoiceDocument.Line(
                    position: 3, description: "Credits purchased (top-up ref 2026-001)", quantity: "1000.0000",
                    unit: "credit", unitPrice: "0.06500000", net: "65.00", vatRate: "9.00",
                    vatCategory: .standard),
            ],
            vatSummary: [
                InvoiceDocument.VATSummary(vatRate: "21.00", vatCategory: .standard, base: "56.07", vat: "11.77"),
                InvoiceDocument.VATSummary(vatRate: "9.00", vatCategory: .standard, base: "65.00", vat: "5.85"),
            ],
            netTotal: "121.07", vatTotal: "17.62", total: "138.69", paymentTerms: "Payment within 30 days",
            notes: ["Bank transfer to IBAN DK50 0040 0440 1162 43, reference INV-2026-000123; amounts in €."],
            corrects: nil)
    }

    static func reverseChargeInvoice() -> InvoiceDocument {
        var document = invoice(issuer: russianIssuer, customer: greekCustomer)
        document.number = "INV-2026-000124"
        document.lines = [
            InvoiceDocument.Line(
                position: 1, description: "Ελλάδα (+30), GSM 7-bit — μηνύματα", quantity: "2048",
                unit: "part", unitPrice: "0.01950000", net: "39.94", vatRate: "0.00", vatCategory: .reverseCharge),
            InvoiceDocument.Line(
                position: 2, description: "Россия (+7), Unicode — сообщения", quantity: "311", unit: "part",
                unitPrice: "0.04400000", net: "13.68", vatRate: "0.00", vatCategory: .reverseCharge),
        ]
        document.vatSummary = [
            InvoiceDocument.VATSummary(vatRate: "0.00", vatCategory: .reverseCharge, base: "53.62", vat: "0.00")
        ]
        document.netTotal = "53.62"
        document.vatTotal = "0.00"
        document.total = "53.62"
        document.notes = [
            "Reverse charge: VAT to be accounted for by the recipient (Article 196, Directive 2006/112/EC)."
        ]
        return document
    }

    static func creditNote() -> InvoiceDocument {
        InvoiceDocument(
            id: UUID(uuidString: "6F1B3C1E-2D0A-4E59-9E55-0C7B1D7A9A02")!, kind: .creditNote, status: .issued,
            number: "CN-2026-000007", issueDate: "2026-12-05", dueDate: "2026-12-05", periodStart: "2026-11-01",
            periodEnd: "2026-11-30", currency: "EUR", issuer: danishIssuer, customer: germanCustomer,
            lines: [
                line(1, "Germany (+49), Unicode — undelivered", quantity: "-120", unitPrice: "0.08310000", net: "-9.97")
            ],
            vatSummary: [
                InvoiceDocument.VATSummary(vatRate: "21.00", vatCategory: .standard, base: "-9.97", vat: "-2.09")
            ],
            netTotal: "-9.97", vatTotal: "-2.09", total: "-12.06", paymentTerms: nil,
            notes: ["Refunded to the account used for INV-2026-000123."],
            corrects: InvoiceDocument.Correction(
                invoiceId: UUID(uuidString: "6F1B3C1E-2D0A-4E59-9E55-0C7B1D7A9A01")!, number: "INV-2026-000123",
                issueDate: "2026-12-01", reason: "120 parts were charged twice after an upstream retry"))
    }

    static func draft() -> InvoiceDocument {
        var document = invoice()
        document.status = .draft
        document.number = nil
        document.issueDate = nil
        document.dueDate = nil
        return document
    }

    /// An invoice with `count` lines, each with its own quantity, unit price and net.
    static func long(lines count: Int) -> InvoiceDocument {
        var document = invoice()
        document.lines = (1...count).map { index in
            line(
                index, "Destination \(index) (+\(100 + index)), GSM 7-bit", quantity: "\(1000 + index)",
                unitPrice: "0.0\(10_000 + index)", net: "\(index).\(String(format: "%02d", index % 100))")
        }
        return document
    }
}
