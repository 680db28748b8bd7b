import Foundation
import PostgresLibpq
import ResellerCore

/// The legal profile of an issuer: the platform (`resellerID` nil) or a reseller invoicing its sub-accounts.
package struct IssuerProfile: Sendable, Equatable {
    package var resellerID: UUID?
    package var party: InvoiceDocument.Party
    package var invoicePrefix: String
    package var creditNotePrefix: String
    package var paymentTermsDays: Int
    package var currency: String
    /// The IANA zone in which the issuer's months, issue dates and due dates are cut.
    package var timeZone: String
    package var updatedBy: String
    package var updatedAt: Date

    package init(
        resellerID: UUID?, party: InvoiceDocument.Party, invoicePrefix: String, creditNotePrefix: String,
        paymentTermsDays: Int, currency: String, timeZone: String, updatedBy: String = "", updatedAt: Date = Date()
    ) {
        self.resellerID = resellerID
        self.party = party
        self.invoicePrefix = invoicePrefix
        self.creditNotePrefix = creditNotePrefix
        self.paymentTermsDays = paymentTermsDays
        self.currency = currency
        self.timeZone = timeZone
        self.updatedBy = updatedBy
        self.updatedAt = updatedAt
    }

    /// The key of the issuer's number counters: the reseller's id, or the nil uuid for the platform.
    package var counterKey: UUID { resellerID ?? UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)) }
}

package enum BillingMode: String, Sendable, Equatable, Codable {
    /// Each purchase of credits (a top-up, a credit transfer) is invoiced.
    case prepaid
    /// The month's usage is invoiced after the month.
    case postpaid
}

/// How the issuer bills one customer: a reseller (as the platform's customer, `subAccountID` nil) or a sub-account
/// (as its reseller's).
package struct BillingProfile: Sendable, Equatable {
    package var resellerID: UUID
    package var subAccountID: UUID?
    package var party: InvoiceDocument.Party
    package var vatRegime: InvoiceDocument.VATCategory
    /// Hundredths of a percent (`2100` = 21 %); 0 unless the regime is `standard`.
    package var vatRateBasisPoints: Int
    package var billingMode: BillingMode
    /// The price of one credit in the issuer's currency, in 1/10^8 of its major unit.
    package var creditPrice: Int64
    package var updatedBy: String
    package var updatedAt: Date

    package init(
        resellerID: UUID, subAccountID: UUID?, party: InvoiceDocument.Party, vatRegime: InvoiceDocument.VATCategory,
        vatRateBasisPoints: Int, billingMode: BillingMode, creditPrice: Int64, updatedBy: String = "",
        updatedAt: Date = Date()
    ) {
        self.resellerID = resellerID
        self.subAccountID = subAccountID
        self.party = party
        self.vatRegime = vatRegime
        self.vatRateBasisPoints = vatRateBasisPoints
        self.billingMode = billingMode
        self.creditPrice = creditPrice
        self.updatedBy = updatedBy
        self.updatedAt = updatedAt
    }
}

/// Issuer and customer profiles. See docs/invoices.md.
package enum BillingProfiles {
    private struct PartyRow: Decodable {
        var legalName: String
        var address: [String]
        var countryCode: String
        var vatNumber: String?
        var companyNumber: String?

        enum CodingKeys: String, CodingKey {
            case address
            case legalName = "legal_name"
            case countryCode = "country_code"
            case vatNumber = "vat_number"
            case companyNumber = "company_number"
        }

        var party: InvoiceDocument.Party {
            .init(
                legalName: legalName, address: address, countryCode: countryCode, vatNumber: vatNumber,
                companyNumber: companyNumber)
        }
    }

    private struct IssuerRow: Decodable {
        var resellerID: UUID?
        var invoicePrefix: String
        var creditNotePrefix: String
        var paymentTermsDays: Int
        var currency: String
        var timeZone: String
        var updatedBy: String
        var updatedAt: Date

        enum CodingKeys: String, CodingKey {
            case currency
            case resellerID = "reseller_id"
            case invoicePrefix = "invoice_prefix"
            case creditNotePrefix = "credit_note_prefix"
            case paymentTermsDays = "payment_terms_days"
            case timeZone = "time_zone"
            case updatedBy = "updated_by"
            case updatedAt = "updated_at"
        }
    }

    private struct CustomerRow: Decodable {
        var resellerID: UUID
        var subAccountID: UUID?
        var vatRegime: String
        var vatRateBasisPoints: Int
        var billingMode: String
        var creditPrice: Int64
        var updatedBy: String
        var updatedAt: Date

        enum CodingKeys: String, CodingKey {
            case resellerID = "reseller_id"
            case subAccountID = "sub_account_id"
            case vatRegime = "vat_regime"
            case vatRateBasisPoints = "vat_rate_bp"
            case billingMode = "billing_mode"
            case creditPrice = "credit_price"
            case updatedBy = "updated_by"
            case updatedAt = "updated_at"
        }
    }

    private static let partyColumns = "legal_name, address, country_code, vat_number, company_number"
    private static let issuerColumns =
        "reseller_id, invoice_prefix, credit_note_prefix, payment_terms_days, currency, time_zone, updated_by, updated_at"
    private static let customerColumns =
        "reseller_id, sub_account_id, vat_regime, vat_rate_bp, billing_mode, credit_price, updated_by, updated_at"

    /// How a read of a profile locks it.
    package enum Lock: String, Sendable {
        case none = ""
        /// A document is written against a profile that cannot change before its transaction ends.
        case share = "FOR SHARE"
        /// The profile is about to be replaced (two replacements at once queue instead of deadlocking).
        case update = "FOR UPDATE"
    }

    /// The issuer's profile.
    package static func issuer(resellerID: UUID?, lock: Lock = .none, on connection: PostgresConnection)
        async throws -> IssuerProfile?
    {
        let rows = try await connection.query(
            """
            SELECT \(unescaped: partyColumns), \(unescaped: issuerColumns) FROM issuer_profile
            WHERE reseller_id IS NOT DISTINCT FROM \(resellerID)::uuid \(unescaped: lock.rawValue)
            """)
        guard let party = try rows.decodeRecords(PartyRow.self).first,
            let row = try rows.decodeRecords(IssuerRow.self).first
        else { return nil }
        return IssuerProfile(
            resellerID: row.resellerID, party: party.party, invoicePrefix: row.invoicePrefix,
            creditNotePrefix: row.creditNotePrefix, paymentTermsDays: row.paymentTermsDays, currency: row.currency,
            timeZone: row.timeZone, updatedBy: row.updatedBy, updatedAt: row.updatedAt)
    }

    /// Creates or replaces the issuer's profile, audited as `invoicing.issuer_profile`. The currency cannot change
    /// once the issuer has written a document in it (409 `currency_in_use`).
    package static func putIssuer(_ profile: IssuerProfile, by actor: AuditActor, on connection: PostgresConnection)
        async throws -> IssuerProfile
    {
        let before = try await issuer(resellerID: profile.resellerID, lock: .update, on: connection)
        if let before, before.currency != profile.currency {
            let used = try await connection.query(
                """
                SELECT 1 FROM invoice WHERE issuer_reseller_id IS NOT DISTINCT FROM \(profile.resellerID)::uuid
                  AND status <> 'voided' LIMIT 1
                """
            ).first(as: Int.self)
            if used != nil {
                throw DomainError(
                    .conflict, code: "currency_in_use",
                    detail:
                        "Documents in \(before.currency) exist; the issuer's currency cannot change to \(profile.currency)."
                )
            }
        }
        let party = profile.party
        try await connection.query(
            """
            INSERT INTO issuer_profile (reseller_id, legal_name, address, country_code, vat_number, company_number,
                invoice_prefix, credit_note_prefix, payment_terms_days, currency, time_zone, updated_by)
            VALUES (\(profile.resellerID), \(party.legalName), \(party.address), \(party.countryCode), \(party.vatNumber),
                \(party.companyNumber), \(profile.invoicePrefix), \(profile.creditNotePrefix), \(profile.paymentTermsDays),
                \(profile.currency), \(profile.timeZone), \(actor.actor))
            ON CONFLICT (reseller_id) DO UPDATE SET
                legal_name = excluded.legal_name, address = excluded.address, country_code = excluded.country_code,
                vat_number = excluded.vat_number, company_number = excluded.company_number,
                invoice_prefix = excluded.invoice_prefix, credit_note_prefix = excluded.credit_note_prefix,
                payment_terms_days = excluded.payment_terms_days, currency = excluded.currency,
                time_zone = excluded.time_zone, updated_by = excluded.updated_by, updated_at = now()
            """)
        guard let after = try await issuer(resellerID: profile.resellerID, on: connection) else {
            throw DomainError.conflict("The issuer profile vanished while it was written.")
        }
        try await AuditRepository.record(
            on: connection, by: actor, action: "invoicing.issuer_profile", targetType: "issuer_profile",
            targetID: profile.resellerID?.apiString ?? "platform", resellerID: profile.resellerID,
            before: before.map(IssuerAudit.init), after: IssuerAudit(after))
        return after
    }

    /// The customer's billing profile.
    package static func customer(resellerID: UUID, subAccountID: UUID?, on connection: PostgresConnection)
        async throws -> BillingProfile?
    {
        try await customers(resellerID: resellerID, subAccountID: subAccountID, all: false, on: connection).first
    }

    /// The profiles of every customer of an issuer: the resellers' (`issuer` nil, the platform) or one reseller's
    /// sub-accounts.
    package static func customers(ofIssuer issuer: UUID?, on connection: PostgresConnection) async throws
        -> [BillingProfile]
    {
        try await customers(resellerID: issuer, subAccountID: nil, all: true, on: connection)
    }

    private static func customers(resellerID: UUID?, subAccountID: UUID?, all: Bool, on connection: PostgresConnection)
        async throws -> [BillingProfile]
    {
        let filter: PostgresQuery =
            switch (all, resellerID) {
            case (true, nil): "sub_account_id IS NULL"
            case (true, let issuer?): "reseller_id = \(issuer) AND sub_account_id IS NOT NULL"
            case (false, _): "reseller_id = \(resellerID) AND sub_account_id IS NOT DISTINCT FROM \(subAccountID)::uuid"
            }
        let rows = try await connection.query(
            """
            SELECT \(unescaped: partyColumns), \(unescaped: customerColumns) FROM billing_profile WHERE \(filter)
            ORDER BY legal_name, reseller_id, sub_account_id
            """)
        let parties = try rows.decodeRecords(PartyRow.self)
        return try zip(parties, rows.decodeRecords(CustomerRow.self)).map { party, row in
            BillingProfile(
                resellerID: row.resellerID, subAccountID: row.subAccountID, party: party.party,
                vatRegime: InvoiceDocument.VATCategory(rawValue: row.vatRegime) ?? .standard,
                vatRateBasisPoints: row.vatRateBasisPoints,
                billingMode: BillingMode(rawValue: row.billingMode) ?? .prepaid, creditPrice: row.creditPrice,
                updatedBy: row.updatedBy, updatedAt: row.updatedAt)
        }
    }

    /// Creates or replaces a customer's billing profile, audited as `invoicing.billing_profile`. Documents already
    /// written keep the copy they took.
    package static func putCustomer(_ profile: BillingProfile, by actor: AuditActor, on connection: PostgresConnection)
        async throws -> BillingProfile
    {
        let before = try await customer(
            resellerID: profile.resellerID, subAccountID: profile.subAccountID, on: connection)
        let party = profile.party
        try await connection.query(
            """
            INSERT INTO billing_profile (reseller_id, sub_account_id, legal_name, address, country_code, vat_number,
                company_number, vat_regime, vat_rate_bp, billing_mode, credit_price, updated_by)
            VALUES (\(profile.resellerID), \(profile.subAccountID), \(party.legalName), \(party.address),
                \(party.countryCode), \(party.vatNumber), \(party.companyNumber), \(profile.vatRegime.rawValue),
                \(profile.vatRateBasisPoints), \(profile.billingMode.rawValue), \(profile.creditPrice), \(actor.actor))
            ON CONFLICT (reseller_id, sub_account_id) DO UPDATE SET
                legal_name = excluded.legal_name, address = excluded.address, country_code = excluded.country_code,
                vat_number = excluded.vat_number, company_number = excluded.company_number,
                vat_regime = excluded.vat_regime, vat_rate_bp = excluded.vat_rate_bp,
                billing_mode = excluded.billing_mode, credit_price = excluded.credit_price,
                updated_by = excluded.updated_by, updated_at = now()
            """)
        guard
            let after = try await customer(
                resellerID: profile.resellerID, subAccountID: profile.subAccountID, on: connection)
        else { throw DomainError.conflict("The billing profile vanished while it was written.") }
        try await AuditRepository.record(
            on: connection, by: actor, action: "invoicing.billing_profile", targetType: "billing_profile",
            targetID: (profile.subAccountID ?? profile.resellerID).apiString, resellerID: profile.resellerID,
            before: before.map(CustomerAudit.init), after: CustomerAudit(after))
        return after
    }

    /// Records what a top-up or credit transfer was paid, in the transaction that made the transfer.
    package static func recordPayment(
        transferID: UUID, amountPaid: Int64, currency: String, on connection: PostgresConnection
    ) async throws {
        try await connection.query(
            """
            INSERT INTO transfer_payment (transfer_id, amount_paid, currency)
            VALUES (\(transferID), \(amountPaid), \(currency))
            """)
    }

    private struct IssuerAudit: Encodable {
        var legalName: String
        var countryCode: String
        var vatNumber: String?
        var invoicePrefix: String
        var creditNotePrefix: String
        var paymentTermsDays: Int
        var currency: String
        var timeZone: String

        init(_ profile: IssuerProfile) {
            legalName = profile.party.legalName
            countryCode = profile.party.countryCode
            vatNumber = profile.party.vatNumber
            invoicePrefix = profile.invoicePrefix
            creditNotePrefix = profile.creditNotePrefix
            paymentTermsDays = profile.paymentTermsDays
            currency = profile.currency
            timeZone = profile.timeZone
        }
    }

    private struct CustomerAudit: Encodable {
        var legalName: String
        var countryCode: String
        var vatNumber: String?
        var vatRegime: String
        var vatRate: String
        var billingMode: String
        var creditPrice: String

        init(_ profile: BillingProfile) {
            legalName = profile.party.legalName
            countryCode = profile.party.countryCode
            vatNumber = profile.party.vatNumber
            vatRegime = profile.vatRegime.rawValue
            vatRate = InvoiceMath.formatRate(profile.vatRateBasisPoints)
            billingMode = profile.billingMode.rawValue
            creditPrice = InvoiceMath.format(profile.creditPrice, digits: InvoiceMath.creditPriceScale)
        }
    }
}
