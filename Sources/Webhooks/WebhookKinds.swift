/// How an endpoint is called; fixed at registration.
package enum WebhookFormat: String, Codable, Sendable, CaseIterable {
    /// JSON POSTs signed with HMAC-SHA256 (`Webhook-Signature`).
    case signed
    /// The upstream's unsigned old-style GET (`smsid`, `datum`, `status`, `referentie`).
    case legacy1601 = "1601"

    /// The event types an endpoint of this format may receive: a `1601` endpoint gets message status changes only.
    package var allowedEventTypes: Set<WebhookEventType> {
        switch self {
        case .signed: Set(WebhookEventType.allCases).subtracting(WebhookEventType.platformEvents)
        case .legacy1601: [.messageStatusChanged]
        }
    }
}

/// What happened, as an event's `type` names it.
package enum WebhookEventType: String, Codable, Sendable, CaseIterable, Comparable {
    case messageStatusChanged = "message.status_changed"
    case balanceLow = "balance.low"
    case balanceRecovered = "balance.recovered"
    case accountBlocked = "account.blocked"
    case accountUnblocked = "account.unblocked"
    case senderNameApproved = "sender_name.approved"
    case senderNameRejected = "sender_name.rejected"
    case endpointDisabled = "webhook.endpoint_disabled"
    /// Platform events (docs/reconciliation.md): only platform endpoints (no reseller) take them, and nothing else.
    case upstreamCreditDrift = "upstream.credit_drift"
    case upstreamCreditDriftRecovered = "upstream.credit_drift_recovered"
    case upstreamReconciliationMismatch = "upstream.reconciliation_mismatch"

    /// The events of the platform itself, for the admin's endpoints; never a tenant's.
    package static let platformEvents: Set<WebhookEventType> = [
        .upstreamCreditDrift, .upstreamCreditDriftRecovered, .upstreamReconciliationMismatch,
    ]

    package static func < (left: Self, right: Self) -> Bool { left.rawValue < right.rawValue }
}

/// Whether an endpoint receives deliveries.
package enum WebhookEndpointStatus: String, Codable, Sendable {
    case active
    /// By its owner, or by the sender after every attempt failed for a while (`status_reason` says which).
    case disabled
}

/// Where a delivery is: due or retrying, or finished one way or the other.
package enum WebhookDeliveryState: String, Codable, Sendable {
    case pending
    case delivered
    /// Given up: retried until its deadline, or its endpoint was disabled.
    case failed
}
