import Foundation
import SMSCore

/// What a ledger account is for. Platform accounts have no tenant; upstream accounts carry their connection; reseller
/// accounts carry the reseller; a sub-account wallet carries both.
package enum LedgerAccountKind: String, Codable, Sendable, CaseIterable {
    /// The counterpart of every top-up: money that came into the platform from outside.
    case platformFunding = "platform_funding"
    /// Wholesale income, one account per reseller it comes from (so tenants never share a hot row);
    /// only the admin sees it.
    case platformRevenue = "platform_revenue"
    /// Credits the platform prepaid at the upstream, one account per upstream connection: purchases credit it, each
    /// message the upstream takes debits it by its cost. May go below zero (see docs/finance.md).
    case upstreamBalance = "upstream_balance"
    /// The platform's cost of sales through one upstream connection: what the messages it took cost.
    case upstreamCost = "upstream_cost"
    /// Credits the reseller bought from the platform; pays the wholesale leg of each send.
    case resellerWallet = "reseller_wallet"
    /// Retail income from the reseller's sub-accounts.
    case resellerRevenue = "reseller_revenue"
    /// The counterpart of credits the reseller grants its sub-accounts (its customers pay it outside).
    case resellerIssuance = "reseller_issuance"
    /// A sub-account's credits; pays the retail leg of each send.
    case subAccountWallet = "sub_account_wallet"

    /// Wallets may not go below zero beyond their credit limit.
    package var isWallet: Bool { self == .resellerWallet || self == .subAccountWallet }
}

/// A ledger account with its four running sums (minor units).
package struct LedgerAccountRecord: Decodable, Sendable, Equatable {
    package var id: UUID
    package var kind: LedgerAccountKind
    package var resellerID: UUID?
    package var subAccountID: UUID?
    package var upstreamConnectionID: UUID?
    package var debitsPending: Int64
    package var debitsPosted: Int64
    package var creditsPending: Int64
    package var creditsPosted: Int64
    package var creditLimit: Int64?
    package var debitsMustNotExceedCredits: Bool
    package var lowBalanceThreshold: Int64?
    package var belowThreshold: Bool
    package var createdAt: Date
    package var updatedAt: Date

    /// Posted credits minus posted debits.
    package var balance: Int64 { creditsPosted - debitsPosted }
    /// The balance less what is reserved.
    package var available: Int64 { balance - debitsPending }
    /// What a new debit may take: available plus the credit limit.
    package var spendable: Int64 { available + (creditLimit ?? 0) }

    package enum CodingKeys: String, CodingKey {
        case id, kind
        case resellerID = "reseller_id"
        case subAccountID = "sub_account_id"
        case upstreamConnectionID = "upstream_connection_id"
        case debitsPending = "debits_pending"
        case debitsPosted = "debits_posted"
        case creditsPending = "credits_pending"
        case creditsPosted = "credits_posted"
        case creditLimit = "credit_limit"
        case debitsMustNotExceedCredits = "debits_must_not_exceed_credits"
        case lowBalanceThreshold = "low_balance_threshold"
        case belowThreshold = "below_threshold"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }
}

/// How a transfer moves money: at once, as a reservation, or as a reservation's resolution.
package enum TransferKind: String, Codable, Sendable {
    case posted
    case pending
    case postPending = "post_pending"
    case voidPending = "void_pending"
}

/// A reservation's state; nil for the other kinds.
package enum ReservationState: String, Codable, Sendable {
    case pending, posted, voided, expired
}

/// One appended transfer.
package struct TransferRecord: Decodable, Sendable, Equatable {
    package var id: UUID
    package var seq: Int64
    package var debitAccountID: UUID
    package var creditAccountID: UUID
    package var amount: Int64
    package var kind: TransferKind
    package var state: ReservationState?
    package var pendingID: UUID?
    package var linkedID: UUID?
    package var timeoutAt: Date?
    package var code: String
    package var resellerID: UUID?
    package var subAccountID: UUID?
    package var reference: String?
    package var note: String?
    package var createdBy: String
    package var requestID: String?
    package var createdAt: Date

    package enum CodingKeys: String, CodingKey {
        case id, seq, amount, kind, state, code, reference, note
        case debitAccountID = "debit_account_id"
        case creditAccountID = "credit_account_id"
        case pendingID = "pending_id"
        case linkedID = "linked_id"
        case timeoutAt = "timeout_at"
        case resellerID = "reseller_id"
        case subAccountID = "sub_account_id"
        case createdBy = "created_by"
        case requestID = "request_id"
        case createdAt = "created_at"
    }
}

/// A transfer to append: what `ledger_apply_transfers` takes, one JSON object per element.
package struct TransferRequest: Encodable, Sendable {
    package var id: UUID = UUID()
    package var kind: TransferKind
    package var debitAccountID: UUID?
    package var creditAccountID: UUID?
    /// Required for posted and pending; for post_pending nil posts the full reservation.
    package var amount: Int64?
    package var pendingID: UUID?
    package var timeoutAt: Date?
    package var code: String
    package var resellerID: UUID?
    package var subAccountID: UUID?
    package var reference: String?
    package var note: String?
    package var createdBy: String
    package var requestID: String?
    /// Check the debit against the available balance alone, not the credit line.
    package var ignoreCreditLimit = false
    /// For a void: the reservation timed out (its state becomes `expired`, not `voided`).
    package var expire = false

    package static func posted(
        from debit: UUID, to credit: UUID, amount: Int64, code: String, by actor: String, resellerID: UUID? = nil,
        subAccountID: UUID? = nil, reference: String? = nil, note: String? = nil, requestID: String? = nil
    ) -> TransferRequest {
        TransferRequest(
            kind: .posted, debitAccountID: debit, creditAccountID: credit, amount: amount, code: code,
            resellerID: resellerID,
            subAccountID: subAccountID, reference: reference, note: note, createdBy: actor, requestID: requestID)
    }

    package static func pending(
        from debit: UUID, to credit: UUID, amount: Int64, timeoutAt: Date? = nil, code: String, by actor: String,
        resellerID: UUID? = nil, subAccountID: UUID? = nil, reference: String? = nil, requestID: String? = nil
    ) -> TransferRequest {
        TransferRequest(
            kind: .pending, debitAccountID: debit, creditAccountID: credit, amount: amount, timeoutAt: timeoutAt,
            code: code,
            resellerID: resellerID, subAccountID: subAccountID, reference: reference, createdBy: actor,
            requestID: requestID)
    }

    /// Posts `amount` (nil: all) of reservation `pendingID`; the rest is released.
    package static func post(
        _ pendingID: UUID, amount: Int64? = nil, code: String, by actor: String, requestID: String? = nil
    ) -> TransferRequest {
        TransferRequest(
            kind: .postPending, amount: amount, pendingID: pendingID, code: code, createdBy: actor, requestID: requestID
        )
    }

    /// Releases reservation `pendingID`.
    package static func void(_ pendingID: UUID, code: String, by actor: String, requestID: String? = nil)
        -> TransferRequest
    {
        TransferRequest(kind: .voidPending, pendingID: pendingID, code: code, createdBy: actor, requestID: requestID)
    }

    /// Releases reservation `pendingID` because its timeout passed.
    package static func expiry(_ pendingID: UUID, by actor: String) -> TransferRequest {
        var request = TransferRequest(kind: .voidPending, pendingID: pendingID, code: "expired", createdBy: actor)
        request.expire = true
        return request
    }

    package enum CodingKeys: String, CodingKey {
        case id, kind, amount, code, reference, note
        case debitAccountID = "debit_account_id"
        case creditAccountID = "credit_account_id"
        case pendingID = "pending_id"
        case timeoutAt = "timeout_at"
        case resellerID = "reseller_id"
        case subAccountID = "sub_account_id"
        case createdBy = "created_by"
        case requestID = "request_id"
        case ignoreCreditLimit = "ignore_credit_limit"
        case expire
    }
}

/// Why `ledger_apply_transfers` refused a list; `index` is the failing element. Nothing was applied.
package struct LedgerFailure: Error, Sendable, Equatable {
    package enum Reason: String, Sendable {
        /// LE001: the debit account cannot cover it.
        case insufficientFunds
        /// LE002: an account or reservation does not exist.
        case notFound
        /// LE003: the reservation is already posted, voided or expired.
        case alreadyResolved
        /// LE004: posting more than was reserved.
        case exceedsReservation
        /// LE005: the reservation expired before it was posted.
        case expired
        /// A transfer with this id exists (the primary key refused it).
        case exists
        /// LE007: a malformed element.
        case malformed
    }

    package var reason: Reason
    package var index: Int
    package var message: String

    package static let sqlStates: [String: Reason] = [
        "LE001": .insufficientFunds, "LE002": .notFound, "LE003": .alreadyResolved, "LE004": .exceedsReservation,
        "LE005": .expired, "LE007": .malformed,
    ]
}

/// Which way a wallet crossed its low-balance threshold.
package enum BalanceEventKind: String, Codable, Sendable {
    /// Its available balance fell below the threshold.
    case lowBalance = "low_balance"
    /// It rose to the threshold or above again.
    case balanceRecovered = "balance_recovered"
}

/// A low-balance crossing.
package struct BalanceEventRecord: Decodable, Sendable {
    package var id: Int64
    package var accountID: UUID
    package var kind: BalanceEventKind
    package var available: Int64
    package var threshold: Int64
    package var transferID: UUID?
    package var createdAt: Date

    package enum CodingKeys: String, CodingKey {
        case id, kind, available, threshold
        case accountID = "account_id"
        case transferID = "transfer_id"
        case createdAt = "created_at"
    }
}

/// One line of a statement: a posted movement with the balance after it.
package struct StatementLine: Sendable, Equatable {
    package var transfer: TransferRecord
    package var counterpartyAccountID: UUID
    package var debit: Int64
    package var credit: Int64
    package var balance: Int64
}

/// An account's posted movements over `[from, to)`.
package struct Statement: Sendable {
    package var account: LedgerAccountRecord
    package var from: Date
    package var to: Date
    package var openingBalance: Int64
    package var totalDebits: Int64
    package var totalCredits: Int64
    package var closingBalance: Int64 { openingBalance + totalCredits - totalDebits }
    package var lines: [StatementLine]
    /// The period ends less than a minute before the read: transfers inside it may still be committing.
    package var provisional: Bool
    /// The seq to continue from when the period has more lines than the page.
    package var nextCursor: Int64?
}

extension Money {
    package init(_ minorUnits: Int64) { self.init(minorUnits: minorUnits) }
}
