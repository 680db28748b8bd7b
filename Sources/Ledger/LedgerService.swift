import Foundation
import PostgresLibpq
import ResellerCore
import SMSCore

/// The money operations of the REST API, each on the caller's transaction (which also holds the
/// idempotency record): the handlers check who may do it, this type checks that it may be done
/// and moves the money through `ledger_apply_transfers`.
///
/// See docs/ledger.md.
package enum LedgerService {
    /// The outcome of a money movement: the transfer and the account the caller cares about, after it.
    package struct Movement: Sendable {
        package var transfer: TransferRecord
        package var account: LedgerAccountRecord
    }

    /// Credits a reseller's wallet from platform funding: a payment received.
    package static func topUp(
        resellerID: UUID, amount: Money, paymentReference: String, note: String?, by actor: AuditActor,
        on connection: PostgresConnection
    ) async throws -> Movement {
        try await requireReseller(resellerID, open: true, on: connection)
        let funding = try await requireAccount(.platformFunding, nil, nil, on: connection)
        let wallet = try await requireAccount(.resellerWallet, resellerID, nil, on: connection)
        let transfer = try await apply(
            .posted(
                from: funding.id, to: wallet.id, amount: amount.minorUnits, code: "top_up", by: actor.actor,
                resellerID: resellerID,
                reference: paymentReference, note: note, requestID: actor.requestID), on: connection)
        return try await finish(
            transfer, account: wallet.id, action: "ledger.top_up", resellerID: resellerID, by: actor, on: connection)
    }

    /// Corrects a reseller's wallet: a positive amount credits it, a negative one debits it (never below
    /// its available balance plus credit limit).
    package static func adjust(
        resellerID: UUID, amount: Money, reason: String, by actor: AuditActor, on connection: PostgresConnection
    ) async throws -> Movement {
        // Allowed on a closed reseller too: settling its last balance is a correction.
        try await requireReseller(resellerID, open: false, on: connection)
        let funding = try await requireAccount(.platformFunding, nil, nil, on: connection)
        let wallet = try await requireAccount(.resellerWallet, resellerID, nil, on: connection)
        let (debit, credit) = amount.isNegative ? (wallet.id, funding.id) : (funding.id, wallet.id)
        let transfer = try await apply(
            .posted(
                from: debit, to: credit, amount: amount.minorUnits.magnitude.asInt64, code: "adjustment",
                by: actor.actor,
                resellerID: resellerID, note: reason, requestID: actor.requestID), on: connection)
        return try await finish(
            transfer, account: wallet.id, action: "ledger.adjustment", resellerID: resellerID, by: actor, on: connection
        )
    }

    package enum CreditDirection: String, Sendable {
        case toSubAccount = "to_sub_account"
        case fromSubAccount = "from_sub_account"
    }

    /// Issues credits to a sub-account (against the reseller's issuance account) or takes them back
    /// (never more than its available balance: a credit line is not the reseller's to take).
    package static func transferCredits(
        subAccount: SubAccountRecord, amount: Money, direction: CreditDirection, note: String?, by actor: AuditActor,
        on connection: PostgresConnection
    ) async throws -> Movement {
        // Read under lock in this transaction, so a concurrent close cannot slip between check and transfer.
        guard let statuses = try await SubAccountRepository.lockStatuses(subAccountID: subAccount.id, on: connection)
        else {
            throw DomainError.notFound("No sub-account \(subAccount.id.apiString).")
        }
        guard statuses.subAccount != .closed else {
            throw DomainError.conflict("Sub-account \(subAccount.id.apiString) is closed; its credits cannot move.")
        }
        guard direction == .fromSubAccount || statuses.reseller != .closed else {
            throw DomainError.conflict("The reseller is closed; it cannot grant credits.")
        }
        let issuance = try await requireAccount(.resellerIssuance, subAccount.resellerID, nil, on: connection)
        let wallet = try await requireAccount(.subAccountWallet, subAccount.resellerID, subAccount.id, on: connection)
        var request: TransferRequest =
            switch direction {
            case .toSubAccount:
                .posted(
                    from: issuance.id, to: wallet.id, amount: amount.minorUnits, code: "credit_transfer",
                    by: actor.actor,
                    resellerID: subAccount.resellerID, subAccountID: subAccount.id, note: note,
                    requestID: actor.requestID)
            case .fromSubAccount:
                .posted(
                    from: wallet.id, to: issuance.id, amount: amount.minorUnits, code: "credit_return", by: actor.actor,
                    resellerID: subAccount.resellerID, subAccountID: subAccount.id, note: note,
                    requestID: actor.requestID)
            }
        request.ignoreCreditLimit = direction == .fromSubAccount
        let transfer = try await apply(request, on: connection)
        return try await finish(
            transfer, account: wallet.id,
            action: "ledger.\(direction == .toSubAccount ? "credit_transfer" : "credit_return")",
            resellerID: subAccount.resellerID, by: actor, on: connection)
    }

    /// Sets a wallet's credit limit; 409 when the wallet already uses more than the new limit allows.
    package static func setCreditLimit(
        account: LedgerAccountRecord, limit: Money, by actor: AuditActor, on connection: PostgresConnection
    ) async throws -> LedgerAccountRecord {
        guard account.kind.isWallet else {
            throw DomainError.conflict("Only wallets have credit limits; this is a \(account.kind.rawValue) account.")
        }
        guard let before = try await LedgerRepository.lockAccount(id: account.id, on: connection) else {
            throw DomainError.notFound("No account \(account.id.apiString).")
        }
        let after: LedgerAccountRecord
        do {
            after = try await LedgerRepository.setCreditLimit(
                accountID: account.id, limit: limit.minorUnits, on: connection)
        } catch is LedgerRepository.LimitRefused {
            throw DomainError(
                .conflict, code: "credit_limit_too_low",
                detail:
                    "The wallet already uses \(Money(-before.available)) beyond its balance; the limit must be at least that."
            )
        }
        try await AuditRepository.record(
            on: connection, by: actor, action: "ledger.credit_limit", targetType: "ledger_account",
            targetID: account.id,
            resellerID: account.resellerID, before: AccountAudit(before), after: AccountAudit(after))
        return after
    }

    /// Sets (or with nil removes) an account's low-balance threshold.
    package static func setLowBalanceThreshold(
        account: LedgerAccountRecord, threshold: Money?, by actor: AuditActor, on connection: PostgresConnection
    ) async throws -> LedgerAccountRecord {
        guard let before = try await LedgerRepository.lockAccount(id: account.id, on: connection) else {
            throw DomainError.notFound("No account \(account.id.apiString).")
        }
        let after = try await LedgerRepository.setLowBalanceThreshold(
            accountID: account.id, threshold: threshold?.minorUnits, wasBelow: before.belowThreshold, on: connection)
        try await AuditRepository.record(
            on: connection, by: actor, action: "ledger.low_balance_threshold", targetType: "ledger_account",
            targetID: account.id,
            resellerID: account.resellerID, before: AccountAudit(before), after: AccountAudit(after))
        return after
    }

    // MARK: - Helpers

    private static func requireReseller(_ id: UUID, open: Bool, on connection: PostgresConnection) async throws {
        guard let status = try await ResellerRepository.lockStatus(id: id, on: connection) else {
            throw DomainError.notFound("No reseller \(id.apiString).")
        }
        guard !open || status != .closed else {
            throw DomainError.conflict("Reseller \(id.apiString) is closed; its wallet cannot move.")
        }
    }

    private static func requireAccount(
        _ kind: LedgerAccountKind, _ resellerID: UUID?, _ subAccountID: UUID?, on connection: PostgresConnection
    ) async throws -> LedgerAccountRecord {
        guard
            let account = try await LedgerRepository.account(
                kind: kind, resellerID: resellerID, subAccountID: subAccountID, on: connection)
        else {
            // Accounts are opened by triggers with their owners; a missing one is a broken database.
            throw LedgerInconsistency(
                message:
                    "no \(kind.rawValue) account for \(String(describing: resellerID))/\(String(describing: subAccountID))"
            )
        }
        return account
    }

    private static func apply(_ request: TransferRequest, on connection: PostgresConnection) async throws
        -> TransferRecord
    {
        do {
            return try await LedgerRepository.apply([request], on: connection)[0]
        } catch let failure as LedgerFailure where failure.reason == .insufficientFunds || failure.reason == .notFound {
            throw DomainError(failure)
        }
        // Any other refusal (a malformed transfer, a reused id) is a bug here: it stays an internal error (500, logged).
    }

    private static func finish(
        _ transfer: TransferRecord, account: UUID, action: String, resellerID: UUID?, by actor: AuditActor,
        on connection: PostgresConnection
    ) async throws -> Movement {
        guard let after = try await LedgerRepository.account(id: account, on: connection) else {
            throw LedgerInconsistency(message: "account \(account) vanished")
        }
        try await AuditRepository.record(
            on: connection, by: actor, action: action, targetType: "ledger_transfer", targetID: transfer.id,
            resellerID: resellerID,
            before: nil, after: TransferAudit(transfer))
        return Movement(transfer: transfer, account: after)
    }
}

/// A state the schema's constraints should make impossible.
package struct LedgerInconsistency: Error, CustomStringConvertible {
    package var message: String
    package var description: String { "ledger inconsistency: \(message)" }
    package init(message: String) { self.message = message }
}

extension DomainError {
    /// The answer for a refused transfer.
    package init(_ failure: LedgerFailure) {
        switch failure.reason {
        case .insufficientFunds:
            self.init(
                .conflict, code: "insufficient_funds",
                detail: "The account's available balance does not cover this amount.",
                gatewayCode: GatewayErrorCode.insufficientCredits)
        case .notFound:
            self.init(.notFound, code: "not_found", detail: failure.message)
        case .alreadyResolved, .exceedsReservation, .expired, .exists, .malformed:
            self.init(.conflict, code: "transfer_refused", detail: failure.message)
        }
    }
}

/// What the audit log keeps of a transfer and of an account's settings.
private struct TransferAudit: Encodable {
    var id: UUID
    var kind: String
    var debitAccountId: UUID
    var creditAccountId: UUID
    var amount: String
    var code: String
    var reference: String?
    var note: String?

    init(_ transfer: TransferRecord) {
        id = transfer.id
        kind = transfer.kind.rawValue
        debitAccountId = transfer.debitAccountID
        creditAccountId = transfer.creditAccountID
        amount = Money(transfer.amount).description
        code = transfer.code
        reference = transfer.reference
        note = transfer.note
    }
}

private struct AccountAudit: Encodable {
    var creditLimit: String?
    var lowBalanceThreshold: String?

    init(_ account: LedgerAccountRecord) {
        creditLimit = account.creditLimit.map { Money($0).description }
        lowBalanceThreshold = account.lowBalanceThreshold.map { Money($0).description }
    }
}

extension UInt64 {
    /// Magnitudes of `Money` amounts are at most `Money.maximum`, far inside `Int64`.
    fileprivate var asInt64: Int64 { Int64(self) }
}
