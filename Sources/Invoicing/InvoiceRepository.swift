import Foundation
import Ledger
import PostgresLibpq
import ResellerCore
import SMSCore

/// A stored document with what the API shows beside the document itself.
package struct InvoiceRecord: Sendable, Equatable {
    package var document: InvoiceDocument
    package var source: InvoiceDraft.Source
    package var issuerResellerID: UUID?
    package var customerResellerID: UUID
    package var customerSubAccountID: UUID?
    package var coveredFrom: Date?
    package var coveredTo: Date?
    package var leg: String?
    package var purchaseTransferID: UUID?
    package var credits: Int64
    package var createdBy: String
    package var createdAt: Date
    package var issuedAt: Date?
    package var voidedAt: Date?
}

/// Whose documents a caller sees: the ones it issued and the ones it received. Customers never see drafts.
package struct InvoiceScope: Sendable, Equatable {
    package var role: Role
    package var resellerID: UUID?
    package var subAccountID: UUID?

    package init(principal: Principal) {
        role = principal.role
        resellerID = principal.resellerID
        subAccountID = principal.subAccountID
    }

    fileprivate var filter: PostgresQuery {
        switch role {
        case .admin:
            "i.issuer_reseller_id IS NULL"
        case .reseller:
            """
            (i.issuer_reseller_id = \(resellerID) OR (i.issuer_reseller_id IS NULL AND i.customer_reseller_id = \(resellerID)
             AND i.customer_sub_account_id IS NULL AND i.status = 'issued'))
            """
        case .subAccount:
            "i.customer_reseller_id = \(resellerID) AND i.customer_sub_account_id = \(subAccountID) AND i.status = 'issued'"
        }
    }
}

/// Invoices and credit notes: writing drafts, issuing them with gap-free numbers, voiding drafts, credit notes,
/// reading. See docs/invoices.md.
package enum InvoiceRepository {
    private static let nilUUID = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))

    /// Writes a draft (no number yet) with its lines and VAT; returns its id. 409 `already_invoiced` when a live
    /// document already covers the same usage period or purchase.
    package static func writeDraft(_ draft: InvoiceDraft, by actor: AuditActor, on connection: PostgresConnection)
        async throws -> UUID
    {
        let id = UUID()
        let issuerJSON = try json(draft.issuer.party)
        let customerJSON = try json(draft.customer)
        do {
            try await connection.query(
                """
                INSERT INTO invoice (id, kind, source, status, issuer_reseller_id, customer_reseller_id,
                    customer_sub_account_id, period_start, period_end, covered_from, covered_to, leg,
                    purchase_transfer_id, credits, currency, currency_digits, issuer, customer, notes, net_total,
                    vat_total, total, corrects_invoice_id, correction_reason, created_by)
                VALUES (\(id), \(draft.kind.rawValue), \(draft.source.rawValue), 'draft', \(draft.issuer.resellerID),
                    \(draft.customerResellerID), \(draft.customerSubAccountID), \(draft.periodStart)::date,
                    \(draft.periodEnd)::date, \(draft.coveredFrom), \(draft.coveredTo), \(draft.leg),
                    \(draft.purchaseTransferID), \(draft.credits), \(draft.issuer.currency), \(draft.currencyDigits),
                    \(issuerJSON)::jsonb, \(customerJSON)::jsonb, \(draft.notes), \(draft.netTotal), \(draft.vatTotal),
                    \(draft.total), \(draft.correctsInvoiceID), \(draft.correctionReason), \(actor.actor))
                """)
        } catch let error as PostgresError
            where error.constraint == "invoice_usage_once" || error.constraint == "invoice_purchase_once"
        {
            throw DomainError(
                .conflict, code: "already_invoiced",
                detail: "A document that is not voided already covers this \(draft.source.rawValue).")
        }
        for line in draft.lines {
            try await connection.query(
                """
                INSERT INTO invoice_line (invoice_id, position, description, quantity, unit, unit_price, net,
                    vat_rate_bp, vat_category, credits, country, encoding, corrects_position)
                VALUES (\(id), \(line.position), \(line.description), \(line.quantity)::numeric, \(line.unit),
                    \(line.unitPrice)::numeric, \(line.net), \(line.vatRateBasisPoints), \(line.vatCategory.rawValue),
                    \(line.credits), \(line.country), \(line.encoding), \(line.correctsPosition))
                """)
        }
        for vat in draft.vat {
            try await connection.query(
                """
                INSERT INTO invoice_vat (invoice_id, vat_rate_bp, vat_category, base, vat)
                VALUES (\(id), \(vat.rateBasisPoints), \(vat.category.rawValue), \(vat.base), \(vat.vat))
                """)
        }
        try await AuditRepository.record(
            on: connection, by: actor, action: "invoicing.draft", targetType: "invoice", targetID: id,
            resellerID: draft.customerResellerID, before: nil,
            after: ["kind": draft.kind.rawValue, "source": draft.source.rawValue, "total": String(draft.total)])
        return id
    }

    /// Issues a draft: takes the next number of the issuer's series for the year of the issue date (today in the
    /// issuer's zone), sets the due date, and refreshes the copies of issuer and customer from their profiles. The
    /// counter row is updated in this transaction, so a rollback returns the number and numbers have no gaps.
    package static func issue(id: UUID, by actor: AuditActor, on connection: PostgresConnection) async throws {
        guard
            let row = try await connection.query(
                """
                SELECT status, kind, issuer_reseller_id, customer_reseller_id, customer_sub_account_id
                FROM invoice WHERE id = \(id) FOR UPDATE
                """
            ).first(as: (String, String, UUID?, UUID, UUID?).self)
        else { throw DomainError.notFound("No invoice \(id.apiString).") }
        let (status, kind, issuerID, customerResellerID, customerSubAccountID) = row
        guard status == "draft" else {
            throw DomainError(
                .conflict, code: "not_a_draft", detail: "Invoice \(id.apiString) is \(status); only a draft is issued.")
        }
        guard let issuer = try await BillingProfiles.issuer(resellerID: issuerID, lock: .share, on: connection) else {
            throw DomainError(
                .conflict, code: "issuer_profile_missing", detail: "The issuer has no legal profile (PUT it first).")
        }
        let series = kind == "credit_note" ? "credit_note" : "invoice"
        guard
            let (issueDate, dueDate, year) = try await connection.query(
                """
                SELECT d::text, (d + \(issuer.paymentTermsDays)::int)::text, extract(year FROM d)::int
                FROM (SELECT (now() AT TIME ZONE \(issuer.timeZone))::date AS d) AS today
                """
            ).first(as: (String, String, Int).self)
        else { throw DomainError.conflict("No issue date.") }
        guard
            let sequence = try await connection.query(
                """
                INSERT INTO invoice_counter (issuer, series, year, last_number)
                VALUES (\(issuer.counterKey), \(series), \(year), 1)
                ON CONFLICT (issuer, series, year) DO UPDATE SET last_number = invoice_counter.last_number + 1
                RETURNING last_number
                """
            ).first(as: Int64.self)
        else { throw DomainError.conflict("No number.") }
        let prefix = kind == "credit_note" ? issuer.creditNotePrefix : issuer.invoicePrefix
        let number = "\(prefix)-\(year)-\(sequence < 1_000_000 ? String(format: "%06lld", sequence) : String(sequence))"
        let customer = try await BillingProfiles.customer(
            resellerID: customerResellerID, subAccountID: customerSubAccountID, on: connection)
        let issuerJSON = try json(issuer.party)
        let customerJSON = try customer.map { try json($0.party) }
        let terms =
            issuer.paymentTermsDays == 0 ? "Payment due on receipt" : "Payment within \(issuer.paymentTermsDays) days"
        try await connection.query(
            """
            UPDATE invoice SET status = 'issued', number = \(number), issue_date = \(issueDate)::date,
                due_date = \(dueDate)::date, payment_terms = \(kind == "credit_note" ? nil : terms),
                issuer = \(issuerJSON)::jsonb, customer = coalesce(\(customerJSON)::jsonb, customer),
                issued_by = \(actor.actor), issued_at = now()
            WHERE id = \(id)
            """)
        try await AuditRepository.record(
            on: connection, by: actor, action: "invoicing.issue", targetType: "invoice", targetID: id,
            resellerID: customerResellerID, before: ["status": "draft"], after: ["status": "issued", "number": number])
    }

    /// Voids a draft. An issued document is never voided: it is corrected by a credit note.
    package static func void(id: UUID, by actor: AuditActor, on connection: PostgresConnection) async throws {
        guard
            let (status, customerResellerID) = try await connection.query(
                "SELECT status, customer_reseller_id FROM invoice WHERE id = \(id) FOR UPDATE"
            ).first(as: (String, UUID).self)
        else { throw DomainError.notFound("No invoice \(id.apiString).") }
        guard status == "draft" else {
            throw DomainError(
                .conflict, code: "not_a_draft",
                detail:
                    "Invoice \(id.apiString) is \(status); only a draft can be voided (correct an issued one with a credit note)."
            )
        }
        try await connection.query(
            "UPDATE invoice SET status = 'voided', voided_by = \(actor.actor), voided_at = now() WHERE id = \(id)")
        try await AuditRepository.record(
            on: connection, by: actor, action: "invoicing.void", targetType: "invoice", targetID: id,
            resellerID: customerResellerID, before: ["status": "draft"], after: ["status": "voided"])
    }

    /// One line of an invoice to credit, and how much of it.
    package struct CreditRequest: Sendable, Equatable {
        package var position: Int
        /// Decimal text, positive: parts or credits, at most what is left to credit on that line.
        package var quantity: String

        package init(position: Int, quantity: String) {
            self.position = position
            self.quantity = quantity
        }
    }

    /// Issues a credit note for an issued invoice: the whole invoice (`lines` nil) or part of some lines. A line is
    /// never credited beyond its quantity over all its credit notes (409 `credit_exceeds_invoice`). The credit note
    /// has negative quantities and amounts, its own series, and names the invoice and the reason.
    package static func creditNote(
        for invoiceID: UUID, reason: String, lines requested: [CreditRequest]?, by actor: AuditActor,
        on connection: PostgresConnection
    ) async throws -> UUID {
        guard let invoice = try await record(id: invoiceID, lock: true, on: connection) else {
            throw DomainError.notFound("No invoice \(invoiceID.apiString).")
        }
        let document = invoice.document
        guard document.kind == .invoice, document.status == .issued else {
            throw DomainError(
                .conflict, code: "not_creditable",
                detail:
                    "Only an issued invoice can be credited; this is a \(document.status.rawValue) \(document.kind.rawValue)."
            )
        }
        guard let issuer = try await BillingProfiles.issuer(resellerID: invoice.issuerResellerID, on: connection) else {
            throw DomainError(.conflict, code: "issuer_profile_missing", detail: "The issuer has no legal profile.")
        }
        let stored = try await lines(of: [invoiceID], on: connection)
        // What earlier credit notes gave back, per line (quantity, net, credits) and per VAT rate, as positive figures.
        let credited = try await connection.query(
            """
            SELECT l.corrects_position, (-sum(l.quantity))::text, (-sum(l.net))::bigint, (-sum(l.credits))::bigint
            FROM invoice_line l JOIN invoice c ON c.id = l.invoice_id
            WHERE c.corrects_invoice_id = \(invoiceID) AND c.status <> 'voided'
            GROUP BY l.corrects_position
            """
        ).decode((Int, String, Int64, Int64).self)
        let creditedMoney = Dictionary(uniqueKeysWithValues: credited.map { ($0.0, (net: $0.2, credits: $0.3)) })
        // Per line: the scale of its quantity (parts are whole, credits have 4 decimals), its quantity and what earlier
        // notes credited of it, as integers at that scale.
        let creditedText = Dictionary(uniqueKeysWithValues: credited.map { ($0.0, $0.1) })
        let quantities = Dictionary(
            uniqueKeysWithValues: stored.map { line in
                let scale = line.unit == "part" ? 0 : Money.fractionDigits
                let total = InvoiceMath.parse(line.quantityText, digits: scale, maximum: .max) ?? 0
                let already =
                    creditedText[line.position].flatMap { InvoiceMath.parse($0, digits: scale, maximum: .max) } ?? 0
                return (line.position, (scale: scale, total: total, already: already))
            })
        let creditedVAT = try await connection.query(
            """
            SELECT v.vat_category || '/' || v.vat_rate_bp, (-sum(v.vat))::bigint
            FROM invoice_vat v JOIN invoice c ON c.id = v.invoice_id
            WHERE c.corrects_invoice_id = \(invoiceID) AND c.status <> 'voided'
            GROUP BY 1
            """
        ).decode((String, Int64).self)
        let digits = InvoiceMath.minorDigits(of: document.currency)
        // Without lines: whatever is left of every line.
        let wanted: [CreditRequest] =
            requested
            ?? stored.compactMap { line in
                guard let (scale, total, already) = quantities[line.position], total > already else { return nil }
                return CreditRequest(
                    position: line.position, quantity: InvoiceMath.format(total - already, digits: scale))
            }
        guard !wanted.isEmpty else {
            throw DomainError(
                .conflict, code: "credit_exceeds_invoice",
                detail: "Invoice \(document.number ?? "") has been credited in full already.")
        }
        var lines: [InvoiceDraft.Line] = []
        var completedPositions = Set<Int>()
        for (index, request) in wanted.enumerated() {
            guard let line = stored.first(where: { $0.position == request.position }),
                let (scale, total, already) = quantities[line.position]
            else {
                throw DomainError(
                    .unprocessable, code: "no_such_line",
                    detail: "Invoice \(document.number ?? "") has no line \(request.position).")
            }
            guard let quantity = InvoiceMath.parse(request.quantity, digits: scale, maximum: .max), quantity > 0
            else {
                throw DomainError(
                    .unprocessable, code: "bad_quantity",
                    detail:
                        "Line \(request.position): the quantity must be a positive \(scale == 0 ? "whole number of parts" : "number of credits with at most 4 decimals").",
                    fieldErrors: [.init(field: "/lines/\(index)/quantity", message: "must be positive")])
            }
            guard already + quantity <= total else {
                throw DomainError(
                    .conflict, code: "credit_exceeds_invoice",
                    detail:
                        "Line \(line.position) has \(InvoiceMath.format(total - already, digits: scale)) \(line.unit)s left to credit; \(request.quantity) asked."
                )
            }
            // A share of the line, rounded; the last credit of a line gives back exactly what is left of it, so the
            // credit notes of a line always add up to the line.
            let earlier = creditedMoney[line.position] ?? (net: 0, credits: 0)
            let completes = already + quantity == total
            let net =
                completes
                ? -(line.net - earlier.net)
                : -InvoiceMath.share(line.net, numerator: Int128(quantity), denominator: Int128(total))
            let credits =
                completes
                ? -(line.credits - earlier.credits)
                : -InvoiceMath.share(line.credits, numerator: Int128(quantity), denominator: Int128(total))
            if completes { completedPositions.insert(line.position) }
            lines.append(
                .init(
                    position: index + 1, description: line.description,
                    quantity: "-" + InvoiceMath.format(quantity, digits: scale), unit: line.unit,
                    unitPrice: line.unitPrice, net: net, vatRateBasisPoints: line.vatRateBasisPoints,
                    vatCategory: line.vatCategory, credits: credits, country: line.country, encoding: line.encoding,
                    correctsPosition: line.position))
        }
        // The note that credits what is left of every line gives back exactly the VAT that is left, so an invoice and
        // all its credit notes sum to zero; any other note computes its VAT per rate like an invoice.
        let fullyCredited = stored.allSatisfy { line in
            completedPositions.contains(line.position)
                || quantities[line.position].map { $0.already == $0.total } == true
        }
        let summary = InvoiceBuilder.summarize(lines)
        var vat = summary.vat
        if fullyCredited {
            let earlierVAT = Dictionary(uniqueKeysWithValues: creditedVAT)
            vat = []
            for stored in try await Self.vat(of: [invoiceID], on: connection) {
                let key = "\(stored.category.rawValue)/\(stored.rateBasisPoints)"
                let base = summary.vat.first {
                    $0.category == stored.category && $0.rateBasisPoints == stored.rateBasisPoints
                }
                vat.append(
                    InvoiceDraft.VAT(
                        rateBasisPoints: stored.rateBasisPoints, category: stored.category, base: base?.base ?? 0,
                        vat: -(stored.vat - (earlierVAT[key] ?? 0))))
            }
        }
        let draft = InvoiceDraft(
            kind: .creditNote, source: .correction, issuer: issuer, customerResellerID: invoice.customerResellerID,
            customerSubAccountID: invoice.customerSubAccountID, customer: document.customer,
            periodStart: document.periodStart, periodEnd: document.periodEnd, coveredFrom: nil, coveredTo: nil,
            leg: nil, purchaseTransferID: nil, credits: lines.reduce(0) { $0 + $1.credits },
            currencyDigits: digits, lines: lines, vat: vat, netTotal: summary.net,
            vatTotal: vat.reduce(0) { $0 + $1.vat }, notes: document.notes, correctsInvoiceID: invoiceID,
            correctionReason: reason)
        guard draft.currencyDigits == digits, document.currency == issuer.currency else {
            throw DomainError.conflict("The issuer's currency is no longer the invoice's.")
        }
        let id = try await writeDraft(draft, by: actor, on: connection)
        try await issue(id: id, by: actor, on: connection)
        return id
    }

    /// The ledger transfers a document covers, newest first (keyset on `seq`): the charged transfers of a usage
    /// invoice's leg for its customer in `[coveredFrom, coveredTo)`, the transfer of a purchase invoice, none for a
    /// credit note.
    package static func coveredTransfers(
        _ record: InvoiceRecord, before cursor: Int64?, limit: Int, on connection: PostgresConnection
    ) async throws -> [TransferRecord] {
        switch record.source {
        case .correction:
            return []
        case .purchase:
            return try await connection.query(
                """
                SELECT \(unescaped: LedgerRepository.transferColumns) FROM ledger_transfer
                WHERE id = \(record.purchaseTransferID) AND (\(cursor)::bigint IS NULL OR seq < \(cursor)::bigint)
                """
            ).decodeRecords(TransferRecord.self)
        case .usage:
            return try await connection.query(
                """
                SELECT \(unescaped: LedgerRepository.transferColumns) FROM ledger_transfer
                WHERE id IN (
                    SELECT f.transfer_id FROM usage_money_fact f
                    WHERE f.leg = \(record.leg) AND f.class = 'charged' AND f.at >= \(record.coveredFrom)
                      AND f.at < \(record.coveredTo) AND f.reseller_id = \(record.customerResellerID)
                      AND (\(record.customerSubAccountID)::uuid IS NULL OR f.sub_account_id = \(record.customerSubAccountID)))
                  AND (\(cursor)::bigint IS NULL OR seq < \(cursor)::bigint)
                ORDER BY seq DESC LIMIT \(limit)
                """
            ).decodeRecords(TransferRecord.self)
        }
    }

    /// One document in the caller's scope.
    package static func get(id: UUID, scope: InvoiceScope, on connection: PostgresConnection) async throws
        -> InvoiceRecord?
    {
        try await records(where: "i.id = \(id) AND \(scope.filter)", on: connection).first
    }

    /// A page of documents in the caller's scope, newest first. `direction`: `issued` (by the caller) or `received`.
    package static func list(
        scope: InvoiceScope, direction: String?, status: String?, kind: String?, customerSubAccountID: UUID?,
        customerResellerID: UUID?, before cursor: UUID?, limit: Int, on connection: PostgresConnection
    ) async throws -> [InvoiceRecord] {
        let directionFilter: PostgresQuery =
            switch (direction, scope.role) {
            case ("issued", .subAccount): "false"
            case ("issued", _):
                "i.issuer_reseller_id IS NOT DISTINCT FROM \(scope.role == .admin ? nil : scope.resellerID)::uuid"
            case ("received", .admin): "false"
            case ("received", .reseller): "i.issuer_reseller_id IS NULL"
            default: "true"
            }
        return try await records(
            where: """
                \(scope.filter) AND \(directionFilter)
                AND (\(status)::text IS NULL OR i.status = \(status))
                AND (\(kind)::text IS NULL OR i.kind = \(kind))
                AND (\(customerSubAccountID)::uuid IS NULL OR i.customer_sub_account_id = \(customerSubAccountID))
                AND (\(customerResellerID)::uuid IS NULL OR i.customer_reseller_id = \(customerResellerID))
                AND (\(cursor)::uuid IS NULL
                     OR (i.created_at, i.id) < (SELECT created_at, id FROM invoice WHERE id = \(cursor)::uuid))
                """,
            order: "ORDER BY i.created_at DESC, i.id DESC LIMIT \(limit)", on: connection)
    }

    /// A document by id whatever the scope (for the issuer's own operations, after the handler checked access).
    package static func record(id: UUID, lock: Bool = false, on connection: PostgresConnection) async throws
        -> InvoiceRecord?
    {
        try await records(where: "i.id = \(id)", order: lock ? "FOR UPDATE OF i" : "", on: connection).first
    }

    // MARK: - Reading

    private struct Row: Decodable {
        var id: UUID
        var kind: String
        var source: String
        var status: String
        var issuerResellerID: UUID?
        var customerResellerID: UUID
        var customerSubAccountID: UUID?
        var number: String?
        var issueDate: String?
        var dueDate: String?
        var periodStart: String
        var periodEnd: String
        var coveredFrom: Date?
        var coveredTo: Date?
        var leg: String?
        var purchaseTransferID: UUID?
        var credits: Int64
        var currency: String
        var currencyDigits: Int
        var issuer: String
        var customer: String
        var paymentTerms: String?
        var notes: [String]
        var netTotal: Int64
        var vatTotal: Int64
        var total: Int64
        var correctsInvoiceID: UUID?
        var correctionReason: String?
        var correctsNumber: String?
        var correctsIssueDate: String?
        var createdBy: String
        var createdAt: Date
        var issuedAt: Date?
        var voidedAt: Date?

        enum CodingKeys: String, CodingKey {
            case id, kind, source, status, number, leg, credits, currency, issuer, customer, notes, total
            case issuerResellerID = "issuer_reseller_id"
            case customerResellerID = "customer_reseller_id"
            case customerSubAccountID = "customer_sub_account_id"
            case issueDate = "issue_date"
            case dueDate = "due_date"
            case periodStart = "period_start"
            case periodEnd = "period_end"
            case coveredFrom = "covered_from"
            case coveredTo = "covered_to"
            case purchaseTransferID = "purchase_transfer_id"
            case currencyDigits = "currency_digits"
            case paymentTerms = "payment_terms"
            case netTotal = "net_total"
            case vatTotal = "vat_total"
            case correctsInvoiceID = "corrects_invoice_id"
            case correctionReason = "correction_reason"
            case correctsNumber = "corrects_number"
            case correctsIssueDate = "corrects_issue_date"
            case createdBy = "created_by"
            case createdAt = "created_at"
            case issuedAt = "issued_at"
            case voidedAt = "voided_at"
        }
    }

    fileprivate struct StoredLine: Decodable {
        var invoiceID: UUID
        var position: Int
        var description: String
        var quantityText: String
        var unit: String
        var unitPrice: String
        var net: Int64
        var vatRateBasisPoints: Int
        var vatCategoryText: String
        var credits: Int64
        var country: String?
        var encoding: String?

        var vatCategory: InvoiceDocument.VATCategory { .init(rawValue: vatCategoryText) ?? .standard }

        enum CodingKeys: String, CodingKey {
            case position, description, unit, net, credits, country, encoding
            case invoiceID = "invoice_id"
            case quantityText = "quantity"
            case unitPrice = "unit_price"
            case vatRateBasisPoints = "vat_rate_bp"
            case vatCategoryText = "vat_category"
        }
    }

    private struct StoredVAT: Decodable {
        var invoiceID: UUID
        var rateBasisPoints: Int
        var categoryText: String
        var base: Int64
        var vat: Int64

        var category: InvoiceDocument.VATCategory { .init(rawValue: categoryText) ?? .standard }

        enum CodingKeys: String, CodingKey {
            case base, vat
            case invoiceID = "invoice_id"
            case rateBasisPoints = "vat_rate_bp"
            case categoryText = "vat_category"
        }
    }

    private static func lines(of ids: [UUID], on connection: PostgresConnection) async throws -> [StoredLine] {
        try await connection.query(
            """
            SELECT invoice_id, position, description, quantity::text AS quantity, unit, unit_price::text AS unit_price,
                   net, vat_rate_bp, vat_category, credits, country, encoding
            FROM invoice_line WHERE invoice_id = ANY(\(ids)) ORDER BY invoice_id, position
            """
        ).decodeRecords(StoredLine.self)
    }

    private static func vat(of ids: [UUID], on connection: PostgresConnection) async throws -> [StoredVAT] {
        try await connection.query(
            """
            SELECT invoice_id, vat_rate_bp, vat_category, base, vat FROM invoice_vat
            WHERE invoice_id = ANY(\(ids)) ORDER BY invoice_id, vat_category, vat_rate_bp
            """
        ).decodeRecords(StoredVAT.self)
    }

    private static func records(
        where filter: PostgresQuery, order: PostgresQuery = "", on connection: PostgresConnection
    )
        async throws -> [InvoiceRecord]
    {
        let rows = try await connection.query(
            """
            SELECT i.id, i.kind, i.source, i.status, i.issuer_reseller_id, i.customer_reseller_id,
                   i.customer_sub_account_id, i.number, i.issue_date::text AS issue_date, i.due_date::text AS due_date,
                   i.period_start::text AS period_start, i.period_end::text AS period_end, i.covered_from, i.covered_to,
                   i.leg, i.purchase_transfer_id, i.credits, i.currency, i.currency_digits::int AS currency_digits,
                   i.issuer::text AS issuer, i.customer::text AS customer, i.payment_terms, i.notes, i.net_total,
                   i.vat_total, i.total, i.corrects_invoice_id, i.correction_reason, c.number AS corrects_number,
                   c.issue_date::text AS corrects_issue_date, i.created_by, i.created_at, i.issued_at, i.voided_at
            FROM invoice i LEFT JOIN invoice c ON c.id = i.corrects_invoice_id
            WHERE \(filter) \(order)
            """
        ).decodeRecords(Row.self)
        guard !rows.isEmpty else { return [] }
        let ids = rows.map(\.id)
        let lines = Dictionary(grouping: try await lines(of: ids, on: connection), by: \.invoiceID)
        let vats = Dictionary(grouping: try await vat(of: ids, on: connection), by: \.invoiceID)
        let decoder = JSONDecoder()
        return try rows.map { row in
            let digits = row.currencyDigits
            let money = { (value: Int64) in InvoiceMath.format(value, digits: digits) }
            let document = InvoiceDocument(
                id: row.id, kind: .init(rawValue: row.kind) ?? .invoice, status: .init(rawValue: row.status) ?? .draft,
                number: row.number, issueDate: row.issueDate, dueDate: row.dueDate, periodStart: row.periodStart,
                periodEnd: row.periodEnd, currency: row.currency,
                issuer: try decoder.decode(InvoiceDocument.Party.self, from: Data(row.issuer.utf8)),
                customer: try decoder.decode(InvoiceDocument.Party.self, from: Data(row.customer.utf8)),
                lines: (lines[row.id] ?? []).map { line in
                    .init(
                        position: line.position, description: line.description, quantity: line.quantityText,
                        unit: line.unit,
                        unitPrice: normalizedDecimal(line.unitPrice, minimumDigits: digits), net: money(line.net),
                        vatRate: InvoiceMath.formatRate(line.vatRateBasisPoints), vatCategory: line.vatCategory)
                },
                vatSummary: (vats[row.id] ?? []).map { vat in
                    .init(
                        vatRate: InvoiceMath.formatRate(vat.rateBasisPoints), vatCategory: vat.category,
                        base: money(vat.base), vat: money(vat.vat))
                },
                netTotal: money(row.netTotal), vatTotal: money(row.vatTotal), total: money(row.total),
                paymentTerms: row.paymentTerms, notes: row.notes,
                corrects: row.correctsInvoiceID.map {
                    .init(
                        invoiceId: $0, number: row.correctsNumber ?? "", issueDate: row.correctsIssueDate ?? "",
                        reason: row.correctionReason ?? "")
                })
            return InvoiceRecord(
                document: document, source: .init(rawValue: row.source) ?? .usage,
                issuerResellerID: row.issuerResellerID, customerResellerID: row.customerResellerID,
                customerSubAccountID: row.customerSubAccountID, coveredFrom: row.coveredFrom, coveredTo: row.coveredTo,
                leg: row.leg, purchaseTransferID: row.purchaseTransferID, credits: row.credits,
                createdBy: row.createdBy, createdAt: row.createdAt, issuedAt: row.issuedAt, voidedAt: row.voidedAt)
        }
    }

    /// PostgreSQL's text of a numeric keeps the scale it was written with; documents show at least the currency's
    /// digits and no trailing zeros beyond them.
    private static func normalizedDecimal(_ text: String, minimumDigits: Int) -> String {
        guard let point = text.firstIndex(of: ".") else {
            return minimumDigits == 0 ? text : text + "." + String(repeating: "0", count: minimumDigits)
        }
        var fraction = String(text[text.index(after: point)...])
        while fraction.count > minimumDigits, fraction.hasSuffix("0") { fraction.removeLast() }
        fraction += String(repeating: "0", count: max(0, minimumDigits - fraction.count))
        return fraction.isEmpty ? String(text[..<point]) : String(text[..<point]) + "." + fraction
    }

    private static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
