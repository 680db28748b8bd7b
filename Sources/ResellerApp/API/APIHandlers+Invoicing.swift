import Finance
import Foundation
import HTTPTypes
import Invoicing
import Ledger
import OpenAPIRuntime
import PostgresLibpq
import ResellerAPI
import ResellerCore
import SMSCore

/// Invoicing: issuer and customer profiles, the monthly run, invoices and credit notes. See docs/invoices.md.
extension APIHandlers {
    // MARK: - Profiles

    package func getIssuerProfile(_ input: Operations.GetIssuerProfile.Input) async throws
        -> Operations.GetIssuerProfile.Output
    {
        let principal = try Access.require(.admin, .reseller)
        let issuer = principal.role == .admin ? nil : principal.resellerID
        guard
            let profile = try await pool.withConnection({ connection in
                try await BillingProfiles.issuer(resellerID: issuer, on: connection)
            })
        else { throw APIProblem.notFound("No issuer profile yet: PUT /invoicing/issuer-profile.") }
        return .ok(.init(body: .json(Self.schema(profile))))
    }

    package func putIssuerProfile(_ input: Operations.PutIssuerProfile.Input) async throws
        -> Operations.PutIssuerProfile.Output
    {
        let principal = try Access.require(.admin, .reseller)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let party = validator.party(
            legalName: body.legalName, address: body.address, countryCode: body.countryCode,
            vatNumber: body.vatNumber, companyNumber: body.companyNumber)
        let invoicePrefix = body.invoicePrefix
        let creditNotePrefix = body.creditNotePrefix
        for (field, prefix) in [("/invoicePrefix", invoicePrefix), ("/creditNotePrefix", creditNotePrefix)]
        where prefix.wholeMatch(of: /[A-Z0-9]{1,10}/) == nil {
            validator.fail(field, "must be 1 to 10 capitals or digits")
        }
        if invoicePrefix == creditNotePrefix {
            validator.fail("/creditNotePrefix", "must differ from invoicePrefix")
        }
        if !(0...365).contains(body.paymentTermsDays) { validator.fail("/paymentTermsDays", "must be 0 to 365") }
        if body.currency.wholeMatch(of: /[A-Z]{3}/) == nil {
            validator.fail("/currency", "must be an ISO 4217 code (EUR)")
        }
        let zone = body.timeZone ?? "UTC"
        if !(try await timeZones.contains(zone)) { validator.fail("/timeZone", "is not a time zone PostgreSQL knows") }
        try validator.check()
        let profile = IssuerProfile(
            resellerID: principal.role == .admin ? nil : principal.resellerID, party: party,
            invoicePrefix: invoicePrefix, creditNotePrefix: creditNotePrefix,
            paymentTermsDays: Int(body.paymentTermsDays), currency: body.currency, timeZone: zone)
        let stored = try await pool.withTransaction { connection in
            try await BillingProfiles.putIssuer(profile, by: AuditActor(principal), on: connection)
        }
        return .ok(.init(body: .json(Self.schema(stored))))
    }

    package func getResellerBillingProfile(_ input: Operations.GetResellerBillingProfile.Input) async throws
        -> Operations.GetResellerBillingProfile.Output
    {
        let resellerID = try pathID(input.path.resellerId, "reseller")
        _ = try Access.requireReseller(resellerID, roles: .admin, .reseller)
        return .ok(.init(body: .json(try await billingProfile(resellerID: resellerID, subAccountID: nil))))
    }

    package func putResellerBillingProfile(_ input: Operations.PutResellerBillingProfile.Input) async throws
        -> Operations.PutResellerBillingProfile.Output
    {
        let resellerID = try pathID(input.path.resellerId, "reseller")
        let principal = try Access.requireReseller(resellerID, roles: .admin)
        guard try await resellers.find(id: resellerID) != nil else {
            throw APIProblem.notFound("No reseller \(resellerID.apiString).")
        }
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        let profile = try Self.billingProfile(body, resellerID: resellerID, subAccountID: nil)
        let stored = try await pool.withTransaction { connection in
            try await BillingProfiles.putCustomer(profile, by: AuditActor(principal), on: connection)
        }
        return .ok(.init(body: .json(Self.schema(stored))))
    }

    package func getSubAccountBillingProfile(_ input: Operations.GetSubAccountBillingProfile.Input) async throws
        -> Operations.GetSubAccountBillingProfile.Output
    {
        let (_, subAccount) = try await findSubAccount(input.path.subAccountId)
        return .ok(
            .init(
                body: .json(
                    try await billingProfile(resellerID: subAccount.resellerID, subAccountID: subAccount.id))))
    }

    package func putSubAccountBillingProfile(_ input: Operations.PutSubAccountBillingProfile.Input) async throws
        -> Operations.PutSubAccountBillingProfile.Output
    {
        let (principal, subAccount) = try await visibleSubAccount(input.path.subAccountId)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        let profile = try Self.billingProfile(body, resellerID: subAccount.resellerID, subAccountID: subAccount.id)
        let stored = try await pool.withTransaction { connection in
            try await BillingProfiles.putCustomer(profile, by: AuditActor(principal), on: connection)
        }
        return .ok(.init(body: .json(Self.schema(stored))))
    }

    private func billingProfile(resellerID: UUID, subAccountID: UUID?) async throws
        -> Components.Schemas.BillingProfile
    {
        guard
            let profile = try await pool.withConnection({ connection in
                try await BillingProfiles.customer(resellerID: resellerID, subAccountID: subAccountID, on: connection)
            })
        else { throw APIProblem.notFound("No billing profile yet.") }
        return Self.schema(profile)
    }

    private static func billingProfile(
        _ body: Components.Schemas.BillingProfileUpdate, resellerID: UUID, subAccountID: UUID?
    ) throws -> BillingProfile {
        var validator = Validator()
        let party = validator.party(
            legalName: body.legalName, address: body.address, countryCode: body.countryCode,
            vatNumber: body.vatNumber, companyNumber: body.companyNumber)
        let regime: InvoiceDocument.VATCategory =
            switch body.vatRegime {
            case .standard: .standard
            case .reverseCharge: .reverseCharge
            case .exempt: .exempt
            }
        var rate = 0
        if let text = body.vatRate {
            if let parsed = InvoiceMath.parse(text, digits: 2, maximum: 10_000) {
                rate = Int(parsed)
            } else {
                validator.fail("/vatRate", "must be a percent from 0 to 100 with at most 2 decimals (\"21\", \"8.5\")")
            }
        } else if regime == .standard {
            validator.fail("/vatRate", "is required for the standard regime")
        }
        if regime != .standard, rate != 0 {
            validator.fail("/vatRate", "must be absent or 0 unless the regime is standard")
        }
        if regime == .reverseCharge, party.vatNumber == nil {
            validator.fail("/vatNumber", "is required for reverse charge (the document must show it)")
        }
        let price = InvoiceMath.parse(
            body.creditPrice, digits: InvoiceMath.creditPriceScale, maximum: 100_000_000_000_000)
        if price == nil {
            validator.fail("/creditPrice", "must be a decimal of at least 0 with at most 8 decimals, at most 1000000")
        }
        try validator.check()
        return BillingProfile(
            resellerID: resellerID, subAccountID: subAccountID, party: party, vatRegime: regime,
            vatRateBasisPoints: rate, billingMode: body.billingMode == .postpaid ? .postpaid : .prepaid,
            creditPrice: price ?? 0)
    }

    // MARK: - The monthly run

    package func runInvoices(_ input: Operations.RunInvoices.Input) async throws -> Operations.RunInvoices.Output {
        let principal = try Access.require(.admin, .reseller)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let parts = body.month.split(separator: "-")
        let year = parts.count == 2 ? Int(parts[0]) : nil
        let month = parts.count == 2 ? Int(parts[1]) : nil
        if year == nil || month == nil || !(1...12).contains(month ?? 0) || !(2000...9999).contains(year ?? 0) {
            validator.fail("/month", "must be YYYY-MM, from 2000-01")
        }
        try validator.check()
        let mode: InvoiceRun.Mode =
            switch body.mode {
            case .preview: .preview
            case .draft: .draft
            case .issue, nil: .issue
            }
        let issuer = principal.role == .admin ? nil : principal.resellerID
        let outcome = try await InvoiceRun.run(
            issuer: issuer, year: year!, month: month!, mode: mode, by: AuditActor(principal), pool: pool)
        // Written documents are read back with their coverage; previews are described from the run itself.
        var documents: [Components.Schemas.Invoice] = []
        if mode == .preview {
            documents = outcome.documents.map { Self.schema(preview: $0) }
        } else {
            let ids = outcome.documents.map(\.id)
            let records = try await pool.withConnection { connection in
                var records: [InvoiceRecord] = []
                for id in ids {
                    if let record = try await InvoiceRepository.record(id: id, on: connection) {
                        records.append(record)
                    }
                }
                return records
            }
            documents = records.map(Self.schema)
        }
        return .ok(
            .init(
                body: .json(
                    .init(
                        mode: .init(rawValue: mode.rawValue)!, periodStart: outcome.periodStart,
                        periodEnd: outcome.periodEnd, documents: documents,
                        skipped: outcome.skipped.map { skip in
                            .init(
                                customerResellerId: skip.customerResellerID.apiString,
                                customerSubAccountId: skip.customerSubAccountID?.apiString,
                                customerName: skip.customerName,
                                purchaseTransferId: skip.purchaseTransferID?.apiString,
                                reason: .init(rawValue: skip.reason) ?? .alreadyInvoiced, detail: skip.detail,
                                invoiceId: skip.invoiceID?.apiString)
                        }))))
    }

    // MARK: - Documents

    package func listInvoices(_ input: Operations.ListInvoices.Input) async throws -> Operations.ListInvoices.Output {
        let principal = try Access.principal()
        var validator = Validator()
        let limit = validator.limit(input.query.limit)
        let cursor = validator.uuidCursor(input.query.cursor)
        let subAccountID = input.query.subAccountId.flatMap(UUID.init(uuidString:))
        if input.query.subAccountId != nil, subAccountID == nil { validator.fail("subAccountId", "must be a UUID") }
        let resellerID = input.query.resellerId.flatMap(UUID.init(uuidString:))
        if input.query.resellerId != nil, resellerID == nil { validator.fail("resellerId", "must be a UUID") }
        try validator.check()
        let rows = try await pool.withConnection { connection in
            try await InvoiceRepository.list(
                scope: InvoiceScope(principal: principal), direction: input.query.direction?.rawValue,
                status: input.query.status?.rawValue, kind: input.query.kind?.rawValue,
                customerSubAccountID: subAccountID, customerResellerID: resellerID, before: cursor, limit: limit + 1,
                on: connection)
        }
        let page = Page(rows, limit: limit)
        return .ok(
            .init(
                body: .json(
                    .init(
                        items: page.items.map(Self.schema),
                        nextCursor: page.nextCursor { $0.document.id.apiString }))))
    }

    package func getInvoice(_ input: Operations.GetInvoice.Input) async throws -> Operations.GetInvoice.Output {
        let principal = try Access.principal()
        // `…/{id}.pdf`: the extension chooses the format; else Accept does.
        var text = input.path.invoiceId
        var format: Operations.GetInvoice.AcceptableContentType?
        let extensions: [(String, Operations.GetInvoice.AcceptableContentType)] = [
            (".json", .json), (".csv", .csv), (".pdf", .pdf),
        ]
        for (suffix, wanted) in extensions where text.hasSuffix(suffix) {
            text.removeLast(suffix.count)
            format = wanted
        }
        let id = try pathID(text, "invoice")
        if format == nil {
            let accepted = input.headers.accept.sortedByQuality()
            if accepted.isEmpty {
                format = .json
            } else if let known = accepted.first(where: {
                if case .other = $0.contentType { return false } else { return true }
            }) {
                format = known.contentType
            } else if accepted.contains(where: { $0.contentType.rawValue == "*/*" }) {
                format = .json
            } else {
                throw APIProblem(
                    .notAcceptable, code: "not_acceptable",
                    detail: "Invoices are served as application/json, text/csv or application/pdf.")
            }
        }
        guard
            let record = try await pool.withConnection({ connection in
                try await InvoiceRepository.get(id: id, scope: InvoiceScope(principal: principal), on: connection)
            })
        else { throw APIProblem.notFound("No invoice \(id.apiString).") }
        let document = record.document
        let name = Self.fileName(document)
        switch format {
        case .csv:
            return .ok(
                .init(
                    headers: .init(contentDisposition: "attachment; filename=\"\(name).csv\""),
                    body: .csv(HTTPBody(InvoiceCSV.render(document)))))
        case .pdf:
            let bytes = try await InvoiceDocuments.pdf(document)
            return .ok(
                .init(
                    headers: .init(contentDisposition: "attachment; filename=\"\(name).pdf\""),
                    body: .pdf(HTTPBody(bytes))))
        default:
            return .ok(.init(body: .json(Self.schema(record))))
        }
    }

    package func listInvoiceTransfers(_ input: Operations.ListInvoiceTransfers.Input) async throws
        -> Operations.ListInvoiceTransfers.Output
    {
        let principal = try Access.principal()
        let id = try pathID(input.path.invoiceId, "invoice")
        var validator = Validator()
        let limit = validator.limit(input.query.limit)
        let cursor = validator.integerCursor(input.query.cursor)
        try validator.check()
        let rows = try await pool.withConnection { connection in
            guard
                let record = try await InvoiceRepository.get(
                    id: id, scope: InvoiceScope(principal: principal), on: connection)
            else { throw DomainError.notFound("No invoice \(id.apiString).") }
            return try await InvoiceRepository.coveredTransfers(
                record, before: cursor, limit: limit + 1, on: connection)
        }
        let page = Page(rows, limit: limit)
        return .ok(
            .init(
                body: .json(.init(items: page.items.map(Self.schema), nextCursor: page.nextCursor { String($0.seq) }))))
    }

    package func issueInvoice(_ input: Operations.IssueInvoice.Input) async throws -> Operations.IssueInvoice.Output {
        let (principal, id) = try await issuersInvoice(input.path.invoiceId)
        let record = try await pool.withTransaction { connection in
            try await InvoiceRepository.issue(id: id, by: AuditActor(principal), on: connection)
            return try await InvoiceRepository.record(id: id, on: connection)
        }
        guard let record else { throw APIProblem.notFound("No invoice \(id.apiString).") }
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func voidInvoice(_ input: Operations.VoidInvoice.Input) async throws -> Operations.VoidInvoice.Output {
        let (principal, id) = try await issuersInvoice(input.path.invoiceId)
        let record = try await pool.withTransaction { connection in
            try await InvoiceRepository.void(id: id, by: AuditActor(principal), on: connection)
            return try await InvoiceRepository.record(id: id, on: connection)
        }
        guard let record else { throw APIProblem.notFound("No invoice \(id.apiString).") }
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func issueCreditNote(_ input: Operations.IssueCreditNote.Input) async throws
        -> Operations.IssueCreditNote.Output
    {
        let (principal, id) = try await issuersInvoice(input.path.invoiceId)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let reason = validator.required(body.reason, field: "/reason", maximum: 500)
        let lines = body.lines?.map {
            InvoiceRepository.CreditRequest(position: Int($0.position), quantity: $0.quantity)
        }
        if let lines, Set(lines.map(\.position)).count != lines.count {
            validator.fail("/lines", "must name each line once")
        }
        try validator.check()
        let request = try Idempotency.request(
            principal: principal, key: input.headers.idempotencyKey, operation: "issueCreditNote:\(id.apiString)",
            body: [
                "reason": reason,
                "lines": lines.map { $0.map { "\($0.position):\($0.quantity)" }.joined(separator: ",") } ?? "",
            ])
        let (result, replayed) = try await idempotency.run(request, status: 201) { connection in
            let creditNote = try await InvoiceRepository.creditNote(
                for: id, reason: reason, lines: lines, by: AuditActor(principal), on: connection)
            guard let record = try await InvoiceRepository.record(id: creditNote, on: connection) else {
                throw DomainError.conflict("The credit note vanished while it was written.")
            }
            return Self.schema(record)
        }
        return .created(.init(headers: .init(idempotentReplayed: replayed), body: .json(result)))
    }

    /// A document the caller issued: 404 unless it can see it, 403 unless it is its issuer.
    private func issuersInvoice(_ pathID: String) async throws -> (Principal, UUID) {
        let principal = try Access.principal()
        let id = try self.pathID(pathID, "invoice")
        guard
            let record = try await pool.withConnection({ connection in
                try await InvoiceRepository.get(id: id, scope: InvoiceScope(principal: principal), on: connection)
            })
        else { throw APIProblem.notFound("No invoice \(id.apiString).") }
        let isIssuer =
            switch principal.role {
            case .admin: record.issuerResellerID == nil
            case .reseller: record.issuerResellerID == principal.resellerID
            case .subAccount: false
            }
        guard isIssuer else { throw DomainError.forbidden("Only the document's issuer may do this.") }
        return (principal, id)
    }

    // MARK: - Mapping

    private static func fileName(_ document: InvoiceDocument) -> String {
        let base = document.number ?? "draft-\(document.id.apiString)"
        return base.unicodeScalars.allSatisfy { $0.isASCII } ? base : "invoice-\(document.id.apiString)"
    }

    static func schema(_ profile: IssuerProfile) -> Components.Schemas.IssuerProfile {
        .init(
            resellerId: profile.resellerID?.apiString, legalName: profile.party.legalName,
            address: profile.party.address, countryCode: profile.party.countryCode, vatNumber: profile.party.vatNumber,
            companyNumber: profile.party.companyNumber, invoicePrefix: profile.invoicePrefix,
            creditNotePrefix: profile.creditNotePrefix, paymentTermsDays: Int32(profile.paymentTermsDays),
            currency: profile.currency, timeZone: profile.timeZone, updatedBy: profile.updatedBy,
            updatedAt: profile.updatedAt)
    }

    static func schema(_ profile: BillingProfile) -> Components.Schemas.BillingProfile {
        .init(
            resellerId: profile.resellerID.apiString, subAccountId: profile.subAccountID?.apiString,
            legalName: profile.party.legalName, address: profile.party.address,
            countryCode: profile.party.countryCode, vatNumber: profile.party.vatNumber,
            companyNumber: profile.party.companyNumber,
            vatRegime: .init(rawValue: profile.vatRegime.rawValue) ?? .standard,
            vatRate: InvoiceMath.formatRate(profile.vatRateBasisPoints),
            billingMode: profile.billingMode == .postpaid ? .postpaid : .prepaid,
            creditPrice: InvoiceMath.format(profile.creditPrice, digits: InvoiceMath.creditPriceScale),
            updatedBy: profile.updatedBy, updatedAt: profile.updatedAt)
    }

    static func schema(_ record: InvoiceRecord) -> Components.Schemas.Invoice {
        var invoice = schema(preview: record.document)
        invoice.source = .init(rawValue: record.source.rawValue) ?? .usage
        invoice.customerResellerId = record.customerResellerID.apiString
        invoice.customerSubAccountId = record.customerSubAccountID?.apiString
        invoice.covers = .init(
            leg: record.leg.flatMap { .init(rawValue: $0) }, from: record.coveredFrom, to: record.coveredTo,
            purchaseTransferId: record.purchaseTransferID?.apiString,
            credits: Money(minorUnits: record.credits).description)
        invoice.createdAt = record.createdAt
        invoice.issuedAt = record.issuedAt
        return invoice
    }

    /// A document not (yet) stored: the run's previews. Source and coverage are filled by `schema(_:)` for stored ones.
    static func schema(preview document: InvoiceDocument) -> Components.Schemas.Invoice {
        .init(
            id: document.id.apiString, kind: document.kind == .creditNote ? .creditNote : .invoice,
            status: .init(rawValue: document.status.rawValue) ?? .draft, source: .usage, number: document.number,
            issueDate: document.issueDate, dueDate: document.dueDate, periodStart: document.periodStart,
            periodEnd: document.periodEnd,
            currency: document.currency, issuer: schema(document.issuer), customer: schema(document.customer),
            customerResellerId: "",
            lines: document.lines.map { line in
                .init(
                    position: Int32(line.position), description: line.description, quantity: line.quantity,
                    unit: line.unit == "part" ? .part : .credit, unitPrice: line.unitPrice, net: line.net,
                    vatRate: line.vatRate, vatCategory: .init(rawValue: line.vatCategory.rawValue) ?? .standard)
            },
            vatSummary: document.vatSummary.map { vat in
                .init(
                    vatRate: vat.vatRate, vatCategory: .init(rawValue: vat.vatCategory.rawValue) ?? .standard,
                    base: vat.base, vat: vat.vat)
            },
            netTotal: document.netTotal, vatTotal: document.vatTotal, total: document.total,
            paymentTerms: document.paymentTerms, notes: document.notes,
            corrects: document.corrects.map { correction in
                .init(
                    invoiceId: correction.invoiceId.apiString, number: correction.number,
                    issueDate: correction.issueDate, reason: correction.reason)
            },
            covers: .init(credits: "0.0000"))
    }

    static func schema(_ party: InvoiceDocument.Party) -> Components.Schemas.Party {
        .init(
            legalName: party.legalName, address: party.address, countryCode: party.countryCode,
            vatNumber: party.vatNumber, companyNumber: party.companyNumber)
    }
}

extension Validator {
    /// A party's fields, trimmed and checked (docs/invoices.md, "Profiles").
    mutating func party(
        legalName: String, address: [String], countryCode: String, vatNumber: String?, companyNumber: String?
    ) -> InvoiceDocument.Party {
        let name = required(legalName, field: "/legalName", maximum: 200)
        if !(1...6).contains(address.count) { fail("/address", "must have 1 to 6 lines") }
        let lines = address.enumerated().map { index, line in
            required(line, field: "/address/\(index)", maximum: 200)
        }
        if countryCode.wholeMatch(of: /[A-Z]{2}/) == nil {
            fail("/countryCode", "must be an ISO 3166-1 alpha-2 code (NL)")
        }
        let vat = text(vatNumber, field: "/vatNumber", maximum: 40)
        let company = text(companyNumber, field: "/companyNumber", maximum: 40)
        return .init(
            legalName: name, address: lines, countryCode: countryCode, vatNumber: vat, companyNumber: company)
    }

    /// What a purchase of credits was paid (`amountPaid` with `currency`, or neither): an amount of 0 to 4 decimals.
    mutating func payment(amountPaid: String?, currency: String?) -> (amount: Money, currency: String)? {
        switch (amountPaid, currency) {
        case (nil, nil):
            return nil
        case (let amountPaid?, let currency?):
            let amount = self.amount(amountPaid, field: "/amountPaid", allowZero: true)
            if currency.wholeMatch(of: /[A-Z]{3}/) == nil { fail("/currency", "must be an ISO 4217 code (EUR)") }
            return (amount, currency)
        default:
            fail(amountPaid == nil ? "/amountPaid" : "/currency", "amountPaid and currency go together")
            return nil
        }
    }
}
