-- Delivery reports and settlement.
--
-- The upstream calls a URL per connection with a secret token in its path (it does not sign its
-- callbacks). A report is matched on `referentie` (our message id) and checked against the
-- upstream id the message was submitted with. A final state settles the message's reservations
-- once, by the refund policy of its tenant: charged states are posted, the others voided.

ALTER TABLE upstream_connection
    ADD COLUMN callback_token text NOT NULL UNIQUE
        DEFAULT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')
        CHECK (callback_token ~ '^[0-9a-f]{64}$');

-- Which final states are charged. A reseller's row without a sub-account is its default for its
-- sub-accounts (retail leg); a row with one overrides it. The wholesale leg follows the admin's
-- row for the reseller (layer 'wholesale'). Without a row: delivered is charged, the rest refunded.
CREATE TABLE refund_policy (
    reseller_id    uuid NOT NULL REFERENCES reseller (id),
    sub_account_id uuid,
    layer          text NOT NULL CHECK (layer IN ('retail', 'wholesale')),
    charged_states text[] NOT NULL CHECK (charged_states <@ ARRAY['delivered', 'not_delivered', 'rejected', 'expired']),
    updated_by     text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (layer = 'retail' OR sub_account_id IS NULL),
    FOREIGN KEY (reseller_id, sub_account_id) REFERENCES sub_account (reseller_id, id)
);
CREATE UNIQUE INDEX refund_policy_owner ON refund_policy (reseller_id, layer, sub_account_id) NULLS NOT DISTINCT;

-- How a message's reservations were settled, and when.
ALTER TABLE message
    ADD COLUMN settled_at  timestamptz,
    ADD COLUMN reported_at timestamptz;

-- Reports that could not be applied to any message of the connection (unknown reference, another
-- upstream id): kept for the admins, never applied.
CREATE TABLE unmatched_delivery_report (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection_id uuid NOT NULL,
    sms_id        text NOT NULL CHECK (length(sms_id) <= 100),
    status        text NOT NULL,
    reported_at   timestamptz,
    reference     text CHECK (length(reference) <= 200),
    reason        text NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX unmatched_delivery_report_received ON unmatched_delivery_report (received_at);

-- Polling: a submitted message with no final report after a while is asked about
-- (`gatewayrapport.php`), with a growing interval, until a final state or its expiry.
ALTER TABLE message
    ADD COLUMN next_poll_at  timestamptz,
    ADD COLUMN poll_attempts integer NOT NULL DEFAULT 0 CHECK (poll_attempts >= 0);
CREATE INDEX message_awaiting_report ON message (submitted_at) WHERE status = 'submitted';
