import Foundation
import Invoicing
import Ledger
import PostgresLibpq
import ResellerAPI
import ResellerCore
import SMSCore

/// The credit ledger: balances, transfers and statements for everyone in scope; top-ups and
/// corrections by the admin; credit transfers to sub-accounts by their reseller.
extension APIHandlers {
    package var ledger: LedgerRepository { LedgerRepository(pool: pool) }
    package var idempotency: Idempotency { Idempotency(pool: pool) }

    // MARK: - Reading

    package func listLedgerAccounts(_ input: Operations.ListLedgerAccounts.Input) async throws
        -> Operations.ListLedgerAccounts.Output
    {
        let principal = try Access.principal()
        var validator = Validator()
        let limit = validator.limit(input.query.limit)
        let cursor = validator.uuidCursor(input.query.cursor)
        let resellerID = uuidFilter(input.query.resellerId, field: "resellerId", &validator)
        let subAccountID = uuidFilter(input.query.subAccountId, field: "subAccountId", &validator)
        try validator.check()
        let rows = try await ledger.accounts(
            scope: principal.scope, kind: input.query.kind.flatMap { LedgerAccountKind(rawValue: $0.rawValue) },
            resellerID: resellerID, subAccountID: subAccountID, after: cursor, limit: limit + 1)
        let page = Page(rows, limit: limit)
        return .ok(
            .init(
                body: .json(.init(items: page.items.map(Self.schema), nextCursor: page.nextCursor { $0.id.apiString })))
        )
    }

    package func getLedgerAccount(_ input: Operations.GetLedgerAccount.Input) async throws
        -> Operations.GetLedgerAccount.Output
    {
        let (_, account) = try await visibleAccount(input.path.accountId)
        return .ok(.init(body: .json(Self.schema(account))))
    }

    package func listAccountTransfers(_ input: Operations.ListAccountTransfers.Input) async throws
        -> Operations.ListAccountTransfers.Output
    {
        let (_, account) = try await visibleAccount(input.path.accountId)
        var validator = Validator()
        let limit = validator.limit(input.query.limit)
        let cursor = validator.integerCursor(input.query.cursor)
        try validator.check()
        let rows = try await ledger.transfers(accountID: account.id, before: cursor, limit: limit + 1)
        let page = Page(rows, limit: limit)
        return .ok(
            .init(
                body: .json(.init(items: page.items.map(Self.schema), nextCursor: page.nextCursor { String($0.seq) }))))
    }

    package func getAccountStatement(_ input: Operations.GetAccountStatement.Input) async throws
        -> Operations.GetAccountStatement.Output
    {
        let (_, account) = try await visibleAccount(input.path.accountId)
        var validator = Validator()
        let limit = validator.limit(input.query.limit)
        let cursor = validator.integerCursor(input.query.cursor)
        if input.query.from >= input.query.to { validator.fail("to", "must be after from") }
        try validator.check()
        guard
            let statement = try await ledger.statement(
                accountID: account.id, from: input.query.from, to: input.query.to, after: cursor, limit: limit)
        else { throw APIProblem.notFound("No account \(account.id.apiString).") }
        return .ok(
            .init(
                body: .json(
                    .init(
                        provisional: statement.provisional, account: Self.schema(statement.account),
                        from: statement.from, to: statement.to,
                        openingBalance: Money(statement.openingBalance).description,
                        totalDebits: Money(statement.totalDebits).description,
                        totalCredits: Money(statement.totalCredits).description,
                        closingBalance: Money(statement.closingBalance).description,
                        lines: statement.lines.map { line in
                            .init(
                                transferId: line.transfer.id.apiString, seq: line.transfer.seq,
                                at: line.transfer.createdAt,
                                kind: .init(rawValue: line.transfer.kind.rawValue)!, code: line.transfer.code,
                                reference: line.transfer.reference,
                                note: line.transfer.note, counterpartyAccountId: line.counterpartyAccountID.apiString,
                                debit: Money(line.debit).description, credit: Money(line.credit).description,
                                balance: Money(line.balance).description)
                        },
                        nextCursor: statement.nextCursor.map(String.init)))))
    }

    package func listBalanceEvents(_ input: Operations.ListBalanceEvents.Input) async throws
        -> Operations.ListBalanceEvents.Output
    {
        let (_, account) = try await visibleAccount(input.path.accountId)
        var validator = Validator()
        let limit = validator.limit(input.query.limit)
        let cursor = validator.integerCursor(input.query.cursor)
        try validator.check()
        let rows = try await ledger.events(accountID: account.id, before: cursor, limit: limit + 1)
        let page = Page(rows, limit: limit)
        return .ok(
            .init(
                body: .json(
                    .init(
                        items: page.items.map { event in
                            .init(
                                id: event.id, accountId: event.accountID.apiString,
                                kind: .init(rawValue: event.kind.rawValue)!,
                                available: Money(event.available).description,
                                threshold: Money(event.threshold).description,
                                transferId: event.transferID?.apiString, at: event.createdAt)
                        },
                        nextCursor: page.nextCursor { String($0.id) }))))
    }

    package func getTransfer(_ input: Operations.GetTransfer.Input) async throws -> Operations.GetTransfer.Output {
        let principal = try Access.principal()
        let id = try pathID(input.path.transferId, "transfer")
        guard let transfer = try await ledger.transfer(id: id, scope: principal.scope) else {
            throw APIProblem.notFound("No transfer \(id.apiString).")
        }
        return .ok(.init(body: .json(Self.schema(transfer))))
    }

    // MARK: - Moving money

    package func topUpReseller(_ input: Operations.TopUpReseller.Input) async throws -> Operations.TopUpReseller.Output
    {
        let resellerID = try pathID(input.path.resellerId, "reseller")
        let principal = try Access.requireReseller(resellerID, roles: .admin)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let amount = validator.amount(body.amount, field: "/amount")
        let reference = validator.required(body.paymentReference, field: "/paymentReference", maximum: 200)
        let note = validator.text(body.note, field: "/note", maximum: 1000)
        let payment = validator.payment(amountPaid: body.amountPaid, currency: body.currency)
        try validator.check()
        let request = try Idempotency.request(
            principal: principal, key: input.headers.idempotencyKey, operation: "topUpReseller:\(resellerID.apiString)",
            body: [
                "amount": String(amount.minorUnits), "paymentReference": reference, "note": note ?? "",
                "amountPaid": payment.map { String($0.amount.minorUnits) } ?? "", "currency": payment?.currency ?? "",
            ])
        let (result, replayed) = try await idempotency.run(request, status: 201) { connection in
            let movement = try await LedgerService.topUp(
                resellerID: resellerID, amount: amount, paymentReference: reference, note: note,
                by: AuditActor(principal), on: connection)
            if let payment {
                try await BillingProfiles.recordPayment(
                    transferID: movement.transfer.id, amountPaid: payment.amount.minorUnits,
                    currency: payment.currency, on: connection)
            }
            return Self.schema(movement)
        }
        return .created(.init(headers: .init(idempotentReplayed: replayed), body: .json(result)))
    }

    package func adjustResellerWallet(_ input: Operations.AdjustResellerWallet.Input) async throws
        -> Operations.AdjustResellerWallet.Output
    {
        let resellerID = try pathID(input.path.resellerId, "reseller")
        let principal = try Access.requireReseller(resellerID, roles: .admin)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let amount = validator.amount(body.amount, field: "/amount", allowNegative: true)
        let reason = validator.required(body.reason, field: "/reason", maximum: 1000)
        try validator.check()
        let request = try Idempotency.request(
            principal: principal, key: input.headers.idempotencyKey,
            operation: "adjustResellerWallet:\(resellerID.apiString)",
            body: ["amount": String(amount.minorUnits), "reason": reason])
        let (result, replayed) = try await idempotency.run(request, status: 201) { connection in
            Self.schema(
                try await LedgerService.adjust(
                    resellerID: resellerID, amount: amount, reason: reason, by: AuditActor(principal), on: connection))
        }
        return .created(.init(headers: .init(idempotentReplayed: replayed), body: .json(result)))
    }

    package func transferSubAccountCredits(_ input: Operations.TransferSubAccountCredits.Input) async throws
        -> Operations.TransferSubAccountCredits.Output
    {
        let (principal, subAccount) = try await findSubAccount(input.path.subAccountId)
        try Access.ensure(principal, isOneOf: .reseller, .admin)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let amount = validator.amount(body.amount, field: "/amount")
        let note = validator.text(body.note, field: "/note", maximum: 1000)
        let direction: LedgerService.CreditDirection = body.direction == .toSubAccount ? .toSubAccount : .fromSubAccount
        let payment = validator.payment(amountPaid: body.amountPaid, currency: body.currency)
        if payment != nil, direction == .fromSubAccount {
            validator.fail("/amountPaid", "is only for credits sold (to_sub_account)")
        }
        try validator.check()
        let request = try Idempotency.request(
            principal: principal, key: input.headers.idempotencyKey,
            operation: "transferSubAccountCredits:\(subAccount.id.apiString)",
            body: [
                "amount": String(amount.minorUnits), "direction": direction.rawValue, "note": note ?? "",
                "amountPaid": payment.map { String($0.amount.minorUnits) } ?? "", "currency": payment?.currency ?? "",
            ])
        let (result, replayed) = try await idempotency.run(request, status: 201) { connection in
            let movement = try await LedgerService.transferCredits(
                subAccount: subAccount, amount: amount, direction: direction, note: note, by: AuditActor(principal),
                on: connection)
            if let payment {
                try await BillingProfiles.recordPayment(
                    transferID: movement.transfer.id, amountPaid: payment.amount.minorUnits,
                    currency: payment.currency, on: connection)
            }
            return Self.schema(movement)
        }
        return .created(.init(headers: .init(idempotentReplayed: replayed), body: .json(result)))
    }

    package func setCreditLimit(_ input: Operations.SetCreditLimit.Input) async throws
        -> Operations.SetCreditLimit.Output
    {
        let (principal, account) = try await visibleAccount(input.path.accountId)
        // The wallet's parent decides how far it may go below zero: the admin for resellers, the reseller for its customers.
        switch account.kind {
        case .resellerWallet: try Access.ensure(principal, isOneOf: .admin)
        case .subAccountWallet: try Access.ensure(principal, isOneOf: .reseller, .admin)
        default: try Access.ensure(principal, isOneOf: .admin)
        }
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let limit = validator.amount(body.creditLimit, field: "/creditLimit", allowZero: true)
        try validator.check()
        let request = try Idempotency.request(
            principal: principal, key: input.headers.idempotencyKey,
            operation: "setCreditLimit:\(account.id.apiString)",
            body: ["creditLimit": String(limit.minorUnits)])
        let (result, replayed) = try await idempotency.run(request, status: 200) { connection in
            Self.schema(
                try await LedgerService.setCreditLimit(
                    account: account, limit: limit, by: AuditActor(principal), on: connection))
        }
        return .ok(.init(headers: .init(idempotentReplayed: replayed), body: .json(result)))
    }

    package func setLowBalanceThreshold(_ input: Operations.SetLowBalanceThreshold.Input) async throws
        -> Operations.SetLowBalanceThreshold.Output
    {
        let (principal, account) = try await visibleAccount(input.path.accountId)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let threshold = validator.amount(body.threshold, field: "/threshold", allowZero: true)
        try validator.check()
        let record = try await pool.withTransaction { connection in
            try await LedgerService.setLowBalanceThreshold(
                account: account, threshold: threshold, by: AuditActor(principal), on: connection)
        }
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func removeLowBalanceThreshold(_ input: Operations.RemoveLowBalanceThreshold.Input) async throws
        -> Operations.RemoveLowBalanceThreshold.Output
    {
        let (principal, account) = try await visibleAccount(input.path.accountId)
        let record = try await pool.withTransaction { connection in
            try await LedgerService.setLowBalanceThreshold(
                account: account, threshold: nil, by: AuditActor(principal), on: connection)
        }
        return .ok(.init(body: .json(Self.schema(record))))
    }

    // MARK: - Helpers

    /// The account when the caller can see it, else 404 (the same as for an id that does not exist).
    package func visibleAccount(_ pathID: String) async throws -> (Principal, LedgerAccountRecord) {
        let principal = try Access.principal()
        let id = try self.pathID(pathID, "account")
        guard let account = try await ledger.account(id: id, scope: principal.scope) else {
            throw APIProblem.notFound("No account \(id.apiString).")
        }
        return (principal, account)
    }

    package func uuidFilter(_ text: String?, field: String, _ validator: inout Validator) -> UUID? {
        guard let text else { return nil }
        guard let id = UUID(uuidString: text) else {
            validator.fail(field, "must be a UUID")
            return nil
        }
        return id
    }

    package static func schema(_ account: LedgerAccountRecord) -> Components.Schemas.LedgerAccount {
        .init(
            id: account.id.apiString, kind: .init(rawValue: account.kind.rawValue)!,
            resellerId: account.resellerID?.apiString,
            subAccountId: account.subAccountID?.apiString,
            upstreamConnectionId: account.upstreamConnectionID?.apiString,
            debitsPending: Money(account.debitsPending).description,
            debitsPosted: Money(account.debitsPosted).description,
            creditsPending: Money(account.creditsPending).description,
            creditsPosted: Money(account.creditsPosted).description, balance: Money(account.balance).description,
            available: Money(account.available).description, spendable: Money(account.spendable).description,
            creditLimit: account.creditLimit.map { Money($0).description },
            overdraftAllowed: !account.debitsMustNotExceedCredits,
            lowBalanceThreshold: account.lowBalanceThreshold.map { Money($0).description },
            belowLowBalanceThreshold: account.belowThreshold, updatedAt: account.updatedAt)
    }

    package static func schema(_ transfer: TransferRecord) -> Components.Schemas.Transfer {
        .init(
            id: transfer.id.apiString, seq: transfer.seq, kind: .init(rawValue: transfer.kind.rawValue)!,
            state: transfer.state.map { .init(rawValue: $0.rawValue)! }, pendingId: transfer.pendingID?.apiString,
            linkedId: transfer.linkedID?.apiString, debitAccountId: transfer.debitAccountID.apiString,
            creditAccountId: transfer.creditAccountID.apiString, amount: Money(transfer.amount).description,
            code: transfer.code,
            reference: transfer.reference, note: transfer.note, resellerId: transfer.resellerID?.apiString,
            subAccountId: transfer.subAccountID?.apiString, createdBy: transfer.createdBy,
            requestId: transfer.requestID,
            timeoutAt: transfer.timeoutAt, createdAt: transfer.createdAt)
    }

    package static func schema(_ movement: LedgerService.Movement) -> Components.Schemas.TransferResult {
        .init(transfer: schema(movement.transfer), account: schema(movement.account))
    }
}
