import Ledger

/// The money rules of messages, as ``LedgerCheck``s for ``LedgerVerifier`` (docs/ledger.md, "Checked invariants").
package enum MessageMoneyChecks {
    /// Final states: the message's money is settled.
    static let finalStates = "'delivered', 'not_delivered', 'rejected', 'expired', 'failed', 'cancelled'"

    package static let checks: [LedgerCheck] = [
        LedgerCheck(
            name: "no_double_charge",
            rule:
                "each leg of a message is charged at most once: its reservation posted, or a late delivery charged, not both and not twice",
            offenders: """
                SELECT DISTINCT m.id::text FROM message m
                JOIN ledger_transfer r ON r.id IN (m.retail_reservation_id, m.wholesale_reservation_id)
                WHERE (SELECT count(*) FROM ledger_transfer t WHERE t.pending_id = r.id AND t.kind = 'post_pending')
                    + (SELECT count(*) FROM ledger_transfer t
                       WHERE t.code = 'late_delivery' AND t.reference = m.id::text
                         AND t.debit_account_id = r.debit_account_id) > 1
                """),
        LedgerCheck(
            name: "upstream_cost_once",
            rule: "what the upstream charges for a message is posted at most once",
            offenders: """
                SELECT reference FROM ledger_transfer WHERE code = 'upstream_cost' GROUP BY reference HAVING count(*) > 1
                """),
        LedgerCheck(
            name: "final_messages_hold_nothing",
            rule: "no message in a final state still holds a reservation",
            offenders: """
                SELECT DISTINCT m.id::text FROM message m
                JOIN ledger_transfer r ON r.id IN (m.retail_reservation_id, m.wholesale_reservation_id)
                WHERE m.status IN (\(finalStates)) AND r.state = 'pending'
                """),
        // A row a dispatcher holds under a lease that has not run out is that dispatcher's to clear, even when its
        // message is final already: an instance killed after its call, whose message's delivery report another
        // instance settled. The row goes when the lease has run out and a dispatcher claims it; one still there
        // after its lease is an offender.
        LedgerCheck(
            name: "unsent_messages_are_queued",
            rule:
                "every scheduled or queued message has its outbox row, and only those have one (or a dispatcher holds it under a lease not yet run out)",
            offenders: """
                SELECT m.id::text FROM message m
                WHERE m.status IN ('scheduled', 'queued')
                  AND NOT EXISTS (SELECT 1 FROM message_outbox o WHERE o.message_id = m.id)
                UNION ALL
                SELECT o.message_id::text FROM message_outbox o JOIN message m ON m.id = o.message_id
                WHERE m.status NOT IN ('scheduled', 'queued')
                  AND NOT (o.leased_by IS NOT NULL AND o.due_at > now())
                """),
    ]
}
