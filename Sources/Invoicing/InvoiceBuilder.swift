import Foundation
import SMSCore

/// A document computed but not written: what the monthly run previews, and what the repository stores.
package struct InvoiceDraft: Sendable, Equatable {
    package enum Source: String, Sendable, Equatable {
        case usage, purchase, correction
    }

    package struct Line: Sendable, Equatable {
        package var position: Int
        package var description: String
        /// Decimal text: parts (`"1234"`) or credits (`"1000.0000"`), negative on a credit note.
        package var quantity: String
        package var unit: String
        package var unitPrice: String
        /// In the currency's minor unit.
        package var net: Int64
        package var vatRateBasisPoints: Int
        package var vatCategory: InvoiceDocument.VATCategory
        /// Ledger credits (minor units) behind the line.
        package var credits: Int64
        package var country: String?
        package var encoding: String?
        package var correctsPosition: Int?
    }

    package struct VAT: Sendable, Equatable {
        package var rateBasisPoints: Int
        package var category: InvoiceDocument.VATCategory
        package var base: Int64
        package var vat: Int64
    }

    package var kind: InvoiceDocument.Kind
    package var source: Source
    package var issuer: IssuerProfile
    package var customerResellerID: UUID
    package var customerSubAccountID: UUID?
    package var customer: InvoiceDocument.Party
    package var periodStart: String
    package var periodEnd: String
    /// Usage: the instants `[coveredFrom, coveredTo)` whose charged transfers of `leg` the document covers.
    package var coveredFrom: Date?
    package var coveredTo: Date?
    package var leg: String?
    package var purchaseTransferID: UUID?
    package var credits: Int64
    package var currencyDigits: Int
    package var lines: [Line]
    package var vat: [VAT]
    package var netTotal: Int64
    package var vatTotal: Int64
    package var notes: [String]
    package var correctsInvoiceID: UUID?
    package var correctionReason: String?

    package var total: Int64 { netTotal + vatTotal }

    package init(
        kind: InvoiceDocument.Kind, source: Source, issuer: IssuerProfile, customerResellerID: UUID,
        customerSubAccountID: UUID?, customer: InvoiceDocument.Party, periodStart: String, periodEnd: String,
        coveredFrom: Date?, coveredTo: Date?, leg: String?, purchaseTransferID: UUID?, credits: Int64,
        currencyDigits: Int, lines: [Line], vat: [VAT], netTotal: Int64, vatTotal: Int64, notes: [String],
        correctsInvoiceID: UUID?, correctionReason: String?
    ) {
        self.kind = kind
        self.source = source
        self.issuer = issuer
        self.customerResellerID = customerResellerID
        self.customerSubAccountID = customerSubAccountID
        self.customer = customer
        self.periodStart = periodStart
        self.periodEnd = periodEnd
        self.coveredFrom = coveredFrom
        self.coveredTo = coveredTo
        self.leg = leg
        self.purchaseTransferID = purchaseTransferID
        self.credits = credits
        self.currencyDigits = currencyDigits
        self.lines = lines
        self.vat = vat
        self.netTotal = netTotal
        self.vatTotal = vatTotal
        self.notes = notes
        self.correctsInvoiceID = correctsInvoiceID
        self.correctionReason = correctionReason
    }
}

/// The arithmetic of documents, kept apart from the database so that it can be read and tested on its own.
/// The rules (docs/invoices.md, "Rounding"):
/// 1. a line's net is `quantity × unit price`, rounded half-even to the currency's minor unit, once;
/// 2. VAT is computed per rate and category on the sum of the nets at that rate, rounded half-even, once;
/// 3. totals are sums of rounded figures, so they always add up on paper.
package enum InvoiceBuilder {
    /// Usage of one country, encoding and unit price in a period.
    package struct UsageGroup: Sendable, Equatable {
        package var country: String
        package var encoding: String
        /// Credits per part (ledger minor units).
        package var unitCredits: Int64
        package var parts: Int64
        /// Credits charged for these parts (ledger minor units); `parts × unitCredits` unless the ledger says
        /// otherwise, and then the ledger wins.
        package var credits: Int64

        package init(country: String, encoding: String, unitCredits: Int64, parts: Int64, credits: Int64) {
            self.country = country
            self.encoding = encoding
            self.unitCredits = unitCredits
            self.parts = parts
            self.credits = credits
        }
    }

    /// The lines of a usage invoice: one per country, encoding and unit price, in that order.
    package static func usageLines(_ groups: [UsageGroup], customer: BillingProfile, digits: Int) -> [InvoiceDraft.Line]
    {
        let sorted = groups.sorted {
            ($0.country, $0.encoding, $0.unitCredits) < ($1.country, $1.encoding, $1.unitCredits)
        }
        return sorted.enumerated().map { index, group in
            let unitPrice = Int128(group.unitCredits) * Int128(customer.creditPrice)
            let countryName =
                CallingCode.lookup(group.country).map { "\($0.name) (+\(group.country))" } ?? "+\(group.country)"
            return InvoiceDraft.Line(
                position: index + 1,
                description: "SMS to \(countryName), \(group.encoding == "ucs2" ? "Unicode (UCS-2)" : "GSM 7-bit")",
                quantity: String(group.parts), unit: "part",
                unitPrice: InvoiceMath.formatExact(
                    unitPrice, scale: Money.fractionDigits + InvoiceMath.creditPriceScale, minimumDigits: digits),
                net: InvoiceMath.money(credits: group.credits, creditPrice: customer.creditPrice, digits: digits),
                vatRateBasisPoints: customer.vatRateBasisPoints, vatCategory: customer.vatRegime,
                credits: group.credits, country: group.country, encoding: group.encoding, correctsPosition: nil)
        }
    }

    /// Why a purchase cannot be invoiced.
    package enum PurchaseRefusal: Error, Equatable {
        case currencyMismatch(paid: String, issuer: String)
        case tooPrecise(amountPaid: String, digits: Int)
    }

    /// The one line of a purchase invoice, and the VAT it carries. With `amountPaid` (1/10 000 of the currency, VAT
    /// included), the document's total is exactly that amount: the net is the amount less its VAT. Without it, the
    /// credits are priced at the customer's credit price.
    package static func purchaseLine(
        credits: Int64, reference: String?, amountPaid: Int64?, paidCurrency: String?, customer: BillingProfile,
        currency: String, digits: Int
    ) throws(PurchaseRefusal) -> (line: InvoiceDraft.Line, vat: Int64?) {
        var net: Int64
        var vat: Int64?
        let unitPrice: String
        if let amountPaid, let paidCurrency {
            guard paidCurrency == currency else {
                throw .currencyMismatch(paid: paidCurrency, issuer: currency)
            }
            let step = Int64(InvoiceMath.power(Money.fractionDigits - digits))
            guard amountPaid % step == 0 else {
                throw .tooPrecise(amountPaid: Money(minorUnits: amountPaid).description, digits: digits)
            }
            let gross = amountPaid / step
            net =
                customer.vatRegime == .standard
                ? InvoiceMath.net(ofGross: gross, rateBasisPoints: customer.vatRateBasisPoints) : gross
            vat = gross - net
            // Per credit, shown to 8 decimals: net / credits is rarely a finite decimal.
            let scaled = InvoiceMath.roundHalfEven(
                Int128(net) * InvoiceMath.power(InvoiceMath.creditPriceScale - digits + Money.fractionDigits),
                Int128(max(credits, 1)))
            unitPrice = InvoiceMath.formatExact(scaled, scale: InvoiceMath.creditPriceScale, minimumDigits: digits)
        } else {
            net = InvoiceMath.money(credits: credits, creditPrice: customer.creditPrice, digits: digits)
            unitPrice = InvoiceMath.formatExact(
                Int128(customer.creditPrice), scale: InvoiceMath.creditPriceScale, minimumDigits: digits)
        }
        let description = reference.map { "SMS credits (payment reference \($0))" } ?? "SMS credits"
        let line = InvoiceDraft.Line(
            position: 1, description: String(description.prefix(500)), quantity: Money(minorUnits: credits).description,
            unit: "credit", unitPrice: unitPrice, net: net, vatRateBasisPoints: customer.vatRateBasisPoints,
            vatCategory: customer.vatRegime, credits: credits, country: nil, encoding: nil, correctsPosition: nil)
        return (line, vat)
    }

    /// VAT per rate and category over `lines`, and the totals. `fixedVAT` replaces the computed VAT when there is a
    /// single rate (a purchase whose amount paid fixes its VAT).
    package static func summarize(_ lines: [InvoiceDraft.Line], fixedVAT: Int64? = nil) -> (
        vat: [InvoiceDraft.VAT], net: Int64, vatTotal: Int64
    ) {
        var bases: [String: (Int, InvoiceDocument.VATCategory, Int64)] = [:]
        for line in lines {
            let key = "\(line.vatCategory.rawValue)/\(line.vatRateBasisPoints)"
            let current = bases[key]?.2 ?? 0
            bases[key] = (line.vatRateBasisPoints, line.vatCategory, current + line.net)
        }
        var summary = bases.values.sorted { ($0.1.rawValue, $0.0) < ($1.1.rawValue, $1.0) }.map {
            rate, category, base in
            InvoiceDraft.VAT(
                rateBasisPoints: rate, category: category, base: base,
                vat: category == .standard ? InvoiceMath.vat(base: base, rateBasisPoints: rate) : 0)
        }
        if let fixedVAT, summary.count == 1 { summary[0].vat = fixedVAT }
        return (summary, lines.reduce(0) { $0 + $1.net }, summary.reduce(0) { $0 + $1.vat })
    }

    /// What the document must say about its VAT regime.
    package static func notes(for customer: BillingProfile) -> [String] {
        switch customer.vatRegime {
        case .standard: []
        case .reverseCharge:
            [
                "Reverse charge: VAT is to be accounted for by the recipient (Article 196, Council Directive 2006/112/EC)."
            ]
        case .exempt: ["No VAT charged: exempt or outside the scope of VAT."]
        }
    }
}
