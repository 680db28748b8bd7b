-- Webhook fairness (docs/webhooks.md, "Fairness and limits"): the sender claims per endpoint, at most a few in flight
-- each, taking turns; an endpoint's pending deliveries are counted before a replay or redelivery adds to them; replays
-- and redeliveries are rate-limited per endpoint.

-- An endpoint's due deliveries, oldest first, and its pending count.
CREATE INDEX webhook_delivery_endpoint_due ON webhook_delivery (endpoint_id, due_at) WHERE state = 'pending';
-- What is in flight (claimed, not yet recorded): few rows.
CREATE INDEX webhook_delivery_in_flight ON webhook_delivery (endpoint_id) WHERE state = 'pending' AND leased_by IS NOT NULL;
-- A send's own callback URLs (no endpoint), due first.
CREATE INDEX webhook_delivery_callback_due ON webhook_delivery (due_at) WHERE state = 'pending' AND endpoint_id IS NULL;
-- The claim no longer reads one global queue.
DROP INDEX webhook_delivery_due;

-- Replays and redeliveries accepted, per endpoint, for their rate limits; rows past the longest window are deleted
-- when the endpoint's next call is counted.
CREATE TABLE webhook_requeue (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id uuid NOT NULL REFERENCES webhook_endpoint (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('replay', 'redeliver')),
    called_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_requeue_endpoint ON webhook_requeue (endpoint_id, kind, called_at);
