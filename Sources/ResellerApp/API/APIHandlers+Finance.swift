import Finance
import Foundation
import Ledger
import PostgresLibpq
import ResellerAPI
import ResellerCore
import SMSCore

/// Finance: upstream credit purchases (admin), usage and balance reports and charts of accounts (every role, in its
/// scope). The streamed exports are served by `ExportRoute`. See docs/finance.md.
extension APIHandlers {
    // MARK: - Upstream purchases

    package func recordUpstreamPurchase(_ input: Operations.RecordUpstreamPurchase.Input) async throws
        -> Operations.RecordUpstreamPurchase.Output
    {
        // Connections are the admin's: to anyone else one does not exist (404, as for the other connection paths).
        let (principal, connectionID) = try adminConnectionID(input.path.connectionId)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let credits = validator.amount(body.credits, field: "/credits")
        let amountPaid = validator.amount(body.amountPaid, field: "/amountPaid", allowZero: true)
        let currency = validator.required(body.currency, field: "/currency", maximum: 3)
        if currency.wholeMatch(of: /[A-Z]{3}/) == nil { validator.fail("/currency", "must be an ISO 4217 code (EUR)") }
        let invoice = validator.required(body.invoiceReference, field: "/invoiceReference", maximum: 200)
        let note = validator.text(body.note, field: "/note", maximum: 1000)
        try validator.check()
        let request = try Idempotency.request(
            principal: principal, key: input.headers.idempotencyKey,
            operation: "recordUpstreamPurchase:\(connectionID.apiString)",
            body: [
                "credits": String(credits.minorUnits), "amountPaid": String(amountPaid.minorUnits),
                "currency": currency,
                "invoiceReference": invoice, "note": note ?? "",
            ])
        let (result, replayed) = try await idempotency.run(request, status: 201) { connection in
            let (purchase, balance) = try await UpstreamPurchases.record(
                connectionID: connectionID, credits: credits, amountPaid: amountPaid, currency: currency,
                invoiceReference: invoice, note: note, by: AuditActor(principal), on: connection)
            return Components.Schemas.UpstreamPurchaseResult(
                purchase: Self.schema(purchase), balance: Self.schema(balance))
        }
        return .created(.init(headers: .init(idempotentReplayed: replayed), body: .json(result)))
    }

    package func listUpstreamPurchases(_ input: Operations.ListUpstreamPurchases.Input) async throws
        -> Operations.ListUpstreamPurchases.Output
    {
        let (_, connectionID) = try adminConnectionID(input.path.connectionId)
        var validator = Validator()
        let limit = validator.limit(input.query.limit)
        let cursor = validator.uuidCursor(input.query.cursor)
        try validator.check()
        let rows = try await pool.withConnection { connection in
            guard
                try await LedgerRepository.upstreamAccount(.upstreamBalance, connectionID: connectionID, on: connection)
                    != nil
            else { throw DomainError.notFound("No upstream connection \(connectionID.apiString).") }
            return try await UpstreamPurchases.list(
                connectionID: connectionID, before: cursor, limit: limit + 1, on: connection)
        }
        let page = Page(rows, limit: limit)
        return .ok(
            .init(
                body: .json(.init(items: page.items.map(Self.schema), nextCursor: page.nextCursor { $0.id.apiString })))
        )
    }

    // MARK: - Reports

    package func getUsageReport(_ input: Operations.GetUsageReport.Input) async throws
        -> Operations.GetUsageReport.Output
    {
        let principal = try Access.principal()
        let query = input.query
        let request = try await usageRequest(
            principal: principal, from: query.from, to: query.to, timeZone: query.timeZone, groupBy: query.groupBy,
            view: query.view?.rawValue, resellerID: query.resellerId, subAccountID: query.subAccountId,
            country: query.country, defaultGroups: [])
        let freshness = try await DataFreshness.read(reportsPool)
        let report = try await UsageReports(pool: reportsPool).report(request)
        return .ok(
            .init(
                body: .json(
                    .init(
                        view: .init(rawValue: request.view.rawValue)!, from: request.from, to: request.to,
                        timeZone: request.timeZone, groupBy: request.groupBy.map(\.rawValue),
                        provisional: report.provisional,
                        rows: report.rows.map { row in
                            .init(
                                period: row.period, resellerId: row.resellerID?.apiString,
                                subAccountId: row.subAccountID?.apiString, country: row.country,
                                statusClass: row.statusClass.map { .init(rawValue: $0.rawValue)! },
                                figures: Self.schema(row.figures))
                        },
                        totals: Self.schema(report.totals), dataAsOf: freshness.asOf,
                        replicationLagSeconds: freshness.lagSeconds))))
    }

    package func getBalanceReport(_ input: Operations.GetBalanceReport.Input) async throws
        -> Operations.GetBalanceReport.Output
    {
        let principal = try Access.principal()
        var validator = Validator()
        let resellerID = uuidFilter(input.query.resellerId, field: "resellerId", &validator)
        let subAccountID = uuidFilter(input.query.subAccountId, field: "subAccountId", &validator)
        try validator.check()
        let freshness = try await DataFreshness.read(reportsPool)
        let report = try await BalanceReports(pool: reportsPool).balances(
            scope: FinanceScope(principal: principal, resellerID: resellerID, subAccountID: subAccountID),
            at: input.query.at)
        return .ok(
            .init(
                body: .json(
                    .init(
                        at: report.at, provisional: report.provisional,
                        wallets: report.wallets.map { wallet in
                            .init(
                                accountId: wallet.accountID.apiString, kind: .init(rawValue: wallet.kind.rawValue)!,
                                resellerId: wallet.resellerID?.apiString, subAccountId: wallet.subAccountID?.apiString,
                                upstreamConnectionId: wallet.upstreamConnectionID?.apiString,
                                balance: Money(wallet.balance).description, pending: Money(wallet.pending).description,
                                available: Money(wallet.available).description,
                                creditLimit: wallet.creditLimit.map { Money($0).description })
                        },
                        totalBalance: Money(report.totalBalance).description,
                        totalPending: Money(report.totalPending).description,
                        totalAvailable: Money(report.totalAvailable).description, dataAsOf: freshness.asOf,
                        replicationLagSeconds: freshness.lagSeconds))))
    }

    /// A usage request from query parameters, validated (422 with every field at fault). Shared with the exports.
    package func usageRequest(
        principal: Principal, from: Date, to: Date, timeZone: String?, groupBy: String?, view: String?,
        resellerID: String?, subAccountID: String?, country: String?, defaultGroups: [UsageDimension]
    ) async throws -> UsageReportRequest {
        var validator = Validator()
        if from >= to { validator.fail("to", "must be after from") }
        let zone = timeZone ?? "UTC"
        if !(try await timeZones.contains(zone)) { validator.fail("timeZone", "is not an IANA time zone name") }
        var groups = defaultGroups
        if let groupBy {
            groups = []
            for name in groupBy.split(separator: ",", omittingEmptySubsequences: false) {
                let name = name.trimmingCharacters(in: .whitespaces)
                guard let dimension = UsageDimension(rawValue: name) else {
                    validator.fail(
                        "groupBy",
                        "'\(name)' is not one of \(UsageDimension.allCases.map(\.rawValue).joined(separator: ", "))")
                    continue
                }
                if !groups.contains(dimension) { groups.append(dimension) }
            }
            if groups.contains(.day) && groups.contains(.month) {
                validator.fail("groupBy", "day and month exclude each other")
            }
        }
        let usageView = UsageView(rawValue: view ?? UsageView.posted.rawValue)
        if usageView == nil { validator.fail("view", "must be posted or accepted") }
        if let country, country.wholeMatch(of: /[0-9]{1,7}/) == nil {
            validator.fail("country", "must be calling code digits")
        }
        let reseller = uuidFilter(resellerID, field: "resellerId", &validator)
        let subAccount = uuidFilter(subAccountID, field: "subAccountId", &validator)
        try validator.check()
        return UsageReportRequest(
            scope: FinanceScope(principal: principal, resellerID: reseller, subAccountID: subAccount), from: from,
            to: to, timeZone: zone, groupBy: groups, view: usageView!, country: country)
    }

    // MARK: - Charts of accounts

    package func getAccountCodes(_ input: Operations.GetAccountCodes.Input) async throws
        -> Operations.GetAccountCodes.Output
    {
        let principal = try Access.require(.admin, .reseller)
        let chart = try await pool.withConnection {
            try await AccountCodes.chart(resellerID: principal.resellerID, on: $0)
        }
        return .ok(.init(body: .json(.init(items: chart.map(Self.schema)))))
    }

    package func replaceAccountCodes(_ input: Operations.ReplaceAccountCodes.Input) async throws
        -> Operations.ReplaceAccountCodes.Output
    {
        let principal = try Access.require(.admin, .reseller)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        var codes: [AccountCode] = []
        for (index, item) in body.items.enumerated() {
            let kind = LedgerAccountKind(rawValue: item.accountKind.rawValue)!
            if codes.contains(where: { $0.accountKind == kind }) {
                validator.fail("/items/\(index)/accountKind", "\(kind.rawValue) is listed twice")
            }
            let code = validator.required(item.code, field: "/items/\(index)/code", maximum: 40)
            let name = validator.text(item.name, field: "/items/\(index)/name", maximum: 200)
            codes.append(AccountCode(accountKind: kind, code: code, name: name))
        }
        try validator.check()
        let chart = try await pool.withTransaction { connection in
            try await AccountCodes.replace(
                resellerID: principal.resellerID, with: codes, by: AuditActor(principal), on: connection)
        }
        return .ok(.init(body: .json(.init(items: chart.map(Self.schema)))))
    }

    // MARK: - Schemas

    package static func schema(_ purchase: UpstreamPurchaseRecord) -> Components.Schemas.UpstreamPurchase {
        .init(
            id: purchase.id.apiString, connectionId: purchase.connectionID.apiString,
            credits: Money(purchase.credits).description, amountPaid: Money(purchase.amountPaid).description,
            currency: purchase.currency, invoiceReference: purchase.invoiceReference, note: purchase.note,
            transferId: purchase.transferID.apiString, createdBy: purchase.createdBy, createdAt: purchase.createdAt)
    }

    package static func schema(_ figures: UsageFigures) -> Components.Schemas.UsageFigures {
        .init(
            messages: figures.messages, parts: figures.parts, retailCharged: Money(figures.retailCharged).description,
            retailRefunded: Money(figures.retailRefunded).description,
            retailPending: Money(figures.retailPending).description,
            wholesaleCharged: figures.wholesaleCharged.map { Money($0).description },
            wholesaleRefunded: figures.wholesaleRefunded.map { Money($0).description },
            wholesalePending: figures.wholesalePending.map { Money($0).description },
            upstreamCost: figures.upstreamCost.map { Money($0).description },
            resellerMargin: figures.resellerMargin.map { Money($0).description },
            platformMargin: figures.platformMargin.map { Money($0).description })
    }

    package static func schema(_ code: AccountCode) -> Components.Schemas.AccountCode {
        .init(accountKind: .init(rawValue: code.accountKind.rawValue)!, code: code.code, name: code.name)
    }
}
