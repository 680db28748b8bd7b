import Foundation

/// An invoice or a credit note as its reader sees it: the issuer and the customer as they were at issue (copied,
/// never referenced), the lines, the VAT per rate and the totals, every amount already rounded to the currency's
/// minor unit and written as a decimal string (`"1234.56"`; `"-12.10"` on a credit note).
///
/// The JSON, CSV and PDF renderings all show this one value, so what a PDF prints is exactly what the API answers.
public struct InvoiceDocument: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        case invoice
        case creditNote = "credit_note"
    }

    public enum Status: String, Sendable, Hashable, Codable {
        /// Written, not numbered, still changeable; may be voided.
        case draft
        /// Numbered and immutable; corrected only by a credit note.
        case issued
        /// A draft that was withdrawn. It never had a number.
        case voided
    }

    /// How VAT applies to a line.
    public enum VATCategory: String, Sendable, Hashable, Codable {
        /// VAT at the customer's standard rate.
        case standard
        /// EU business customer in another member state: no VAT charged, the customer accounts for it.
        case reverseCharge = "reverse_charge"
        /// No VAT (outside the scope, or exempt).
        case exempt
    }

    /// An issuer or a customer, as printed.
    public struct Party: Sendable, Hashable, Codable {
        public var legalName: String
        /// Address lines as entered (street, postcode and city, …), without the country.
        public var address: [String]
        /// ISO 3166-1 alpha-2 (`NL`).
        public var countryCode: String
        public var vatNumber: String?
        public var companyNumber: String?

        public init(
            legalName: String, address: [String], countryCode: String, vatNumber: String? = nil,
            companyNumber: String? = nil
        ) {
            self.legalName = legalName
            self.address = address
            self.countryCode = countryCode
            self.vatNumber = vatNumber
            self.companyNumber = companyNumber
        }
    }

    public struct Line: Sendable, Hashable, Codable {
        /// 1, 2, 3, … in document order.
        public var position: Int
        /// `Netherlands (+31), GSM 7-bit`, `Credits purchased (top-up ref 2026-001)`.
        public var description: String
        /// A decimal string: parts (`"1234"`) or credits (`"1000.0000"`); negative on a credit note.
        public var quantity: String
        /// `part` or `credit`.
        public var unit: String
        /// Price of one unit in the document's currency, unrounded (`"0.00725000"`).
        public var unitPrice: String
        /// `quantity × unitPrice`, rounded half-even to the currency's minor unit (`"8.95"`).
        public var net: String
        /// Percent with two decimals (`"21.00"`; `"0.00"` for reverse charge and exempt).
        public var vatRate: String
        public var vatCategory: VATCategory

        public init(
            position: Int, description: String, quantity: String, unit: String, unitPrice: String, net: String,
            vatRate: String, vatCategory: VATCategory
        ) {
            self.position = position
            self.description = description
            self.quantity = quantity
            self.unit = unit
            self.unitPrice = unitPrice
            self.net = net
            self.vatRate = vatRate
            self.vatCategory = vatCategory
        }
    }

    /// The VAT of all lines with one rate and category: `vat` is `base × rate`, rounded half-even once per rate.
    public struct VATSummary: Sendable, Hashable, Codable {
        public var vatRate: String
        public var vatCategory: VATCategory
        public var base: String
        public var vat: String

        public init(vatRate: String, vatCategory: VATCategory, base: String, vat: String) {
            self.vatRate = vatRate
            self.vatCategory = vatCategory
            self.base = base
            self.vat = vat
        }
    }

    /// The invoice a credit note corrects.
    public struct Correction: Sendable, Hashable, Codable {
        public var invoiceId: UUID
        public var number: String
        public var issueDate: String
        public var reason: String

        public init(invoiceId: UUID, number: String, issueDate: String, reason: String) {
            self.invoiceId = invoiceId
            self.number = number
            self.issueDate = issueDate
            self.reason = reason
        }
    }

    public var id: UUID
    public var kind: Kind
    public var status: Status
    /// `INV-2026-000123`; nil while a draft.
    public var number: String?
    /// `YYYY-MM-DD`; nil while a draft.
    public var issueDate: String?
    /// `YYYY-MM-DD`; nil while a draft.
    public var dueDate: String?
    /// First and last day covered, `YYYY-MM-DD`, both inclusive.
    public var periodStart: String
    public var periodEnd: String
    /// ISO 4217 (`EUR`).
    public var currency: String
    public var issuer: Party
    public var customer: Party
    public var lines: [Line]
    public var vatSummary: [VATSummary]
    public var netTotal: String
    public var vatTotal: String
    /// `netTotal + vatTotal`: what the customer owes (or, on a credit note, is owed).
    public var total: String
    /// `Payment within 30 days`; nil when not set.
    public var paymentTerms: String?
    /// Printed under the totals: the reverse-charge statement, the exemption, the payment reference.
    public var notes: [String]
    /// Set on a credit note.
    public var corrects: Correction?

    public init(
        id: UUID, kind: Kind, status: Status, number: String?, issueDate: String?, dueDate: String?,
        periodStart: String, periodEnd: String, currency: String, issuer: Party, customer: Party, lines: [Line],
        vatSummary: [VATSummary], netTotal: String, vatTotal: String, total: String, paymentTerms: String?,
        notes: [String], corrects: Correction?
    ) {
        self.id = id
        self.kind = kind
        self.status = status
        self.number = number
        self.issueDate = issueDate
        self.dueDate = dueDate
        self.periodStart = periodStart
        self.periodEnd = periodEnd
        self.currency = currency
        self.issuer = issuer
        self.customer = customer
        self.lines = lines
        self.vatSummary = vatSummary
        self.netTotal = netTotal
        self.vatTotal = vatTotal
        self.total = total
        self.paymentTerms = paymentTerms
        self.notes = notes
        self.corrects = corrects
    }
}
