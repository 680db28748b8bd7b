import Foundation
import PostgresLibpq
import ResellerCore
import SMSCore

/// The monthly run of an issuer: a usage invoice for every postpaid customer with charged usage in the month, and a
/// purchase invoice for every purchase of a prepaid customer in the month not invoiced yet. Running it again issues
/// nothing new. See docs/invoices.md, "The monthly run".
package enum InvoiceRun {
    package enum Mode: String, Sendable, CaseIterable {
        /// Computes every document and writes nothing.
        case preview
        /// Writes the documents as drafts (no numbers), to be issued or voided one by one.
        case draft
        /// Writes and issues them.
        case issue
    }

    /// A customer or purchase the run left out, and why.
    package struct Skip: Sendable, Equatable {
        package var customerResellerID: UUID
        package var customerSubAccountID: UUID?
        package var customerName: String
        package var purchaseTransferID: UUID?
        /// `already_invoiced`, `no_usage`, `usage_not_sealed`, `currency_mismatch`, `amount_paid_too_precise`.
        package var reason: String
        package var detail: String
        /// The document that already covers it (`already_invoiced`).
        package var invoiceID: UUID?
    }

    package struct Outcome: Sendable, Equatable {
        package var periodStart: String
        package var periodEnd: String
        /// Written (or, in preview, computed) documents, in the order they were numbered.
        package var documents: [InvoiceDocument]
        package var skipped: [Skip]
    }

    /// Runs the month `year`-`month` (in the issuer's zone) for `issuer` (nil: the platform). 409
    /// `issuer_profile_missing` without an issuer profile, 422 `period_not_started` for a month that has not begun.
    package static func run(
        issuer issuerID: UUID?, year: Int, month: Int, mode: Mode, by actor: AuditActor, pool: PostgresPool
    ) async throws -> Outcome {
        let (issuer, period, customers) = try await pool.withConnection { connection in
            guard let issuer = try await BillingProfiles.issuer(resellerID: issuerID, on: connection) else {
                throw DomainError(
                    .conflict, code: "issuer_profile_missing",
                    detail: "The issuer has no legal profile: PUT /invoicing/issuer-profile first.")
            }
            let period = try await Period.of(year: year, month: month, zone: issuer.timeZone, on: connection)
            return (issuer, period, try await BillingProfiles.customers(ofIssuer: issuerID, on: connection))
        }
        guard period.started else {
            throw DomainError(
                .unprocessable, code: "period_not_started",
                detail: "\(period.start) has not begun in \(issuer.timeZone).")
        }
        let digits = InvoiceMath.minorDigits(of: issuer.currency)
        var drafts: [InvoiceDraft] = []
        var skipped: [Skip] = []

        // Usage of postpaid customers: only once the month is over and sealed, so the document covers a set of
        // transfers that can never change.
        let postpaid = customers.filter { $0.billingMode == .postpaid }
        if !postpaid.isEmpty {
            if !period.sealed {
                for customer in postpaid {
                    skipped.append(
                        skip(
                            customer, reason: "usage_not_sealed",
                            detail:
                                "The month's usage is final only once the month is over and sealed (sealed until \(period.sealedUntil.map { "\($0)" } ?? "nothing yet")); run again later."
                        ))
                }
            } else {
                let usage = try await pool.withConnection { connection in
                    try await usageGroups(issuer: issuerID, period: period, on: connection)
                }
                for customer in postpaid {
                    let key = CustomerKey(resellerID: customer.resellerID, subAccountID: customer.subAccountID)
                    guard let groups = usage[key], !groups.isEmpty else {
                        skipped.append(skip(customer, reason: "no_usage", detail: "No usage was charged in the month."))
                        continue
                    }
                    let lines = InvoiceBuilder.usageLines(groups, customer: customer, digits: digits)
                    let summary = InvoiceBuilder.summarize(lines)
                    drafts.append(
                        InvoiceDraft(
                            kind: .invoice, source: .usage, issuer: issuer, customerResellerID: customer.resellerID,
                            customerSubAccountID: customer.subAccountID, customer: customer.party,
                            periodStart: period.start, periodEnd: period.lastDay, coveredFrom: period.from,
                            coveredTo: period.to, leg: issuerID == nil ? "wholesale" : "retail",
                            purchaseTransferID: nil, credits: groups.reduce(0) { $0 + $1.credits },
                            currencyDigits: digits, lines: lines, vat: summary.vat, netTotal: summary.net,
                            vatTotal: summary.vatTotal, notes: InvoiceBuilder.notes(for: customer),
                            correctsInvoiceID: nil, correctionReason: nil))
                }
            }
        }

        // Purchases of prepaid customers so far in the month.
        let prepaid = Dictionary(
            customers.filter { $0.billingMode == .prepaid }.map {
                (CustomerKey(resellerID: $0.resellerID, subAccountID: $0.subAccountID), $0)
            }, uniquingKeysWith: { first, _ in first })
        if !prepaid.isEmpty {
            let purchases = try await pool.withConnection { connection in
                try await self.purchases(issuer: issuerID, period: period, on: connection)
            }
            for purchase in purchases {
                guard let customer = prepaid[purchase.customer] else { continue }
                do {
                    let (line, fixedVAT) = try InvoiceBuilder.purchaseLine(
                        credits: purchase.credits, reference: purchase.reference, amountPaid: purchase.amountPaid,
                        paidCurrency: purchase.currency, customer: customer, currency: issuer.currency, digits: digits)
                    let summary = InvoiceBuilder.summarize([line], fixedVAT: fixedVAT)
                    var notes = InvoiceBuilder.notes(for: customer)
                    if purchase.amountPaid != nil { notes.append("Paid in full.") }
                    drafts.append(
                        InvoiceDraft(
                            kind: .invoice, source: .purchase, issuer: issuer, customerResellerID: customer.resellerID,
                            customerSubAccountID: customer.subAccountID, customer: customer.party,
                            periodStart: purchase.date, periodEnd: purchase.date, coveredFrom: nil, coveredTo: nil,
                            leg: nil, purchaseTransferID: purchase.transferID, credits: purchase.credits,
                            currencyDigits: digits, lines: [line], vat: summary.vat, netTotal: summary.net,
                            vatTotal: summary.vatTotal, notes: notes, correctsInvoiceID: nil, correctionReason: nil))
                } catch .currencyMismatch(let paid, let wanted) {
                    var entry = skip(
                        customer, reason: "currency_mismatch",
                        detail: "The purchase was paid in \(paid); the issuer invoices in \(wanted).")
                    entry.purchaseTransferID = purchase.transferID
                    skipped.append(entry)
                } catch .tooPrecise(let amount, let wantedDigits) {
                    var entry = skip(
                        customer, reason: "amount_paid_too_precise",
                        detail: "The amount paid \(amount) has more than the currency's \(wantedDigits) decimals.")
                    entry.purchaseTransferID = purchase.transferID
                    skipped.append(entry)
                }
            }
        }

        var documents: [InvoiceDocument] = []
        for draft in drafts {
            if mode == .preview {
                documents.append(preview(draft))
                continue
            }
            do {
                let id = try await pool.withTransaction { connection in
                    let id = try await InvoiceRepository.writeDraft(draft, by: actor, on: connection)
                    if mode == .issue { try await InvoiceRepository.issue(id: id, by: actor, on: connection) }
                    return id
                }
                let written = try await pool.withConnection { connection in
                    try await InvoiceRepository.record(id: id, on: connection)
                }
                if let written { documents.append(written.document) }
            } catch let error as DomainError where error.code == "already_invoiced" {
                let existing = try await pool.withConnection { connection in
                    try await existingDocument(for: draft, on: connection)
                }
                skipped.append(
                    Skip(
                        customerResellerID: draft.customerResellerID, customerSubAccountID: draft.customerSubAccountID,
                        customerName: draft.customer.legalName, purchaseTransferID: draft.purchaseTransferID,
                        reason: "already_invoiced",
                        detail: "Already covered by \(existing?.number ?? "a draft") (not voided).",
                        invoiceID: existing?.id))
            }
        }
        return Outcome(periodStart: period.start, periodEnd: period.lastDay, documents: documents, skipped: skipped)
    }

    // MARK: - Reading the ledger

    struct CustomerKey: Hashable {
        var resellerID: UUID
        var subAccountID: UUID?
    }

    /// The month as dates and instants in the issuer's zone, and whether its usage is final.
    struct Period {
        var start: String
        var lastDay: String
        var from: Date
        var to: Date
        var started: Bool
        var sealed: Bool
        var sealedUntil: Date?
        var zoneName: String

        static func of(year: Int, month: Int, zone: String, on connection: PostgresConnection) async throws -> Period {
            guard (1...12).contains(month), (2000...9999).contains(year) else {
                throw DomainError(
                    .unprocessable, code: "validation_failed", detail: "The month must be YYYY-MM, from 2000-01.")
            }
            guard
                let row = try await connection.query(
                    """
                    SELECT d::text, (d + interval '1 month' - interval '1 day')::date::text,
                           d::timestamp AT TIME ZONE \(zone), (d + interval '1 month')::timestamp AT TIME ZONE \(zone),
                           (SELECT sealed_until FROM usage_rollup_state)
                    FROM (SELECT make_date(\(year)::int, \(month)::int, 1) AS d) AS m
                    """
                ).first(as: (String, String, Date, Date, Date?).self)
            else { throw DomainError.conflict("No period.") }
            let now = Date()
            return Period(
                start: row.0, lastDay: row.1, from: row.2, to: row.3, started: row.2 <= now,
                sealed: row.3 <= now && (row.4.map { row.3 <= $0 } ?? false), sealedUntil: row.4, zoneName: zone)
        }
    }

    /// Charged usage of the month per customer, country, encoding and unit price: the wholesale leg per reseller for
    /// the platform, the retail leg per sub-account for a reseller. Read from the same facts as the usage report's
    /// posted view (`usage_money_fact`), so an invoice agrees with `GET /reports/usage` for the month.
    private static func usageGroups(issuer: UUID?, period: Period, on connection: PostgresConnection) async throws
        -> [CustomerKey: [InvoiceBuilder.UsageGroup]]
    {
        let leg = issuer == nil ? "wholesale" : "retail"
        let rows = try await connection.query(
            """
            SELECT f.reseller_id, \(unescaped: leg == "retail" ? "f.sub_account_id" : "NULL::uuid"), f.country,
                   b.encoding, \(unescaped: leg == "retail" ? "m.retail_price" : "m.wholesale_price") / b.parts AS unit,
                   sum(b.parts)::bigint, sum(f.amount)::bigint
            FROM usage_money_fact f
            JOIN message m ON m.reseller_id = f.reseller_id AND m.id = f.message_id
            JOIN message_batch b ON b.reseller_id = m.reseller_id AND b.id = m.batch_id
            WHERE f.leg = \(leg) AND f.class = 'charged' AND f.at >= \(period.from) AND f.at < \(period.to)
              AND (\(issuer)::uuid IS NULL OR f.reseller_id = \(issuer))
            GROUP BY 1, 2, 3, 4, 5
            """
        ).decode((UUID, UUID?, String, String, Int64, Int64, Int64).self)
        var groups: [CustomerKey: [InvoiceBuilder.UsageGroup]] = [:]
        for (resellerID, subAccountID, country, encoding, unit, parts, credits) in rows where credits != 0 {
            groups[CustomerKey(resellerID: resellerID, subAccountID: subAccountID), default: []].append(
                .init(country: country, encoding: encoding, unitCredits: unit, parts: parts, credits: credits))
        }
        return groups
    }

    struct Purchase {
        var transferID: UUID
        var customer: CustomerKey
        var credits: Int64
        var reference: String?
        var amountPaid: Int64?
        var currency: String?
        var date: String
    }

    /// Purchases of the month so far, oldest first: the platform's top-ups of reseller wallets, or a reseller's credit
    /// transfers to its sub-accounts; without those a live document already covers.
    private static func purchases(issuer: UUID?, period: Period, on connection: PostgresConnection) async throws
        -> [Purchase]
    {
        try await connection.query(
            """
            SELECT t.id, a.reseller_id, a.sub_account_id, t.amount, t.reference, p.amount_paid, p.currency,
                   (t.created_at AT TIME ZONE \(period.zoneName))::date::text
            FROM ledger_transfer t
            JOIN ledger_account a ON a.id = t.credit_account_id
            LEFT JOIN transfer_payment p ON p.transfer_id = t.id
            WHERE t.kind = 'posted' AND t.created_at >= \(period.from) AND t.created_at < \(period.to)
              AND \(unescaped: issuer == nil
                  ? "t.code = 'top_up' AND a.kind = 'reseller_wallet'"
                  : "t.code = 'credit_transfer' AND a.kind = 'sub_account_wallet'")
              AND (\(issuer)::uuid IS NULL OR a.reseller_id = \(issuer))
              AND NOT EXISTS (SELECT 1 FROM invoice i WHERE i.purchase_transfer_id = t.id AND i.status <> 'voided')
            ORDER BY t.created_at, t.id
            """
        ).decode((UUID, UUID, UUID?, Int64, String?, Int64?, String?, String).self).map { row in
            Purchase(
                transferID: row.0, customer: CustomerKey(resellerID: row.1, subAccountID: issuer == nil ? nil : row.2),
                credits: row.3, reference: row.4, amountPaid: row.5, currency: row.6, date: row.7)
        }
    }

    private static func existingDocument(for draft: InvoiceDraft, on connection: PostgresConnection) async throws -> (
        id: UUID, number: String?
    )? {
        try await connection.query(
            """
            SELECT id, number FROM invoice
            WHERE status <> 'voided' AND (
                (source = 'purchase' AND purchase_transfer_id = \(draft.purchaseTransferID))
                OR (source = 'usage' AND \(draft.source.rawValue) = 'usage' AND customer_reseller_id = \(draft.customerResellerID)
                    AND customer_sub_account_id IS NOT DISTINCT FROM \(draft.customerSubAccountID)::uuid
                    AND period_start = \(draft.periodStart)::date))
            LIMIT 1
            """
        ).first(as: (UUID, String?).self).map { (id: $0.0, number: $0.1) }
    }

    private static func skip(_ customer: BillingProfile, reason: String, detail: String) -> Skip {
        Skip(
            customerResellerID: customer.resellerID, customerSubAccountID: customer.subAccountID,
            customerName: customer.party.legalName, purchaseTransferID: nil, reason: reason, detail: detail,
            invoiceID: nil)
    }

    /// The document a draft would become, unnumbered.
    package static func preview(_ draft: InvoiceDraft) -> InvoiceDocument {
        let money = { (value: Int64) in InvoiceMath.format(value, digits: draft.currencyDigits) }
        return InvoiceDocument(
            id: UUID(), kind: draft.kind, status: .draft, number: nil, issueDate: nil, dueDate: nil,
            periodStart: draft.periodStart, periodEnd: draft.periodEnd, currency: draft.issuer.currency,
            issuer: draft.issuer.party, customer: draft.customer,
            lines: draft.lines.map {
                .init(
                    position: $0.position, description: $0.description, quantity: $0.quantity, unit: $0.unit,
                    unitPrice: $0.unitPrice, net: money($0.net), vatRate: InvoiceMath.formatRate($0.vatRateBasisPoints),
                    vatCategory: $0.vatCategory)
            },
            vatSummary: draft.vat.map {
                .init(
                    vatRate: InvoiceMath.formatRate($0.rateBasisPoints), vatCategory: $0.category, base: money($0.base),
                    vat: money($0.vat))
            },
            netTotal: money(draft.netTotal), vatTotal: money(draft.vatTotal), total: money(draft.total),
            paymentTerms: nil, notes: draft.notes, corrects: nil)
    }
}
