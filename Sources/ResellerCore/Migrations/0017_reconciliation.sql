-- Reconciliation against the upstream (docs/reconciliation.md): credit snapshots beside the ledger's
-- upstream_balance, their drift since a baseline, day reports comparing the upstream's report table with
-- our messages, and platform-owned webhook endpoints for the admin's events.

-- One row per connection: when the job runs it next, who runs it now, the drift baseline and whether the
-- drift is past the threshold (an event is raised once per crossing). A run claims the row by moving
-- next_run_at forward by the interval (one run per connection per interval, whatever the instances) and
-- holds it with running_until while it works; a crashed run's claim lapses at running_until.
CREATE TABLE upstream_reconciliation_state (
    connection_id        uuid PRIMARY KEY REFERENCES upstream_connection (id),
    next_run_at          timestamptz NOT NULL DEFAULT now(),
    running_by           text,
    running_until        timestamptz,
    baseline_snapshot_id uuid,
    drift_alerted        boolean NOT NULL DEFAULT false,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Every run, successful or not: a failing upstream call is a failed run with its reason.
CREATE TABLE upstream_reconciliation_run (
    id            uuid PRIMARY KEY,
    connection_id uuid NOT NULL REFERENCES upstream_connection (id),
    trigger       text NOT NULL CHECK (trigger IN ('schedule', 'admin')),
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- ok: snapshot and day reports; partial: a snapshot, but the report table could not be read; failed: nothing.
    outcome       text NOT NULL CHECK (outcome IN ('ok', 'partial', 'failed')),
    error         text CHECK (length(error) <= 1000),
    created_by    text NOT NULL
);
CREATE INDEX upstream_reconciliation_run_connection ON upstream_reconciliation_run (connection_id, started_at DESC);

-- A credit snapshot: the upstream's `credits` answer and the ledger's upstream_balance at the same instant.
-- Amounts are ledger minor units (1 credit = 10 000).
CREATE TABLE upstream_credit_snapshot (
    id                    uuid PRIMARY KEY,
    connection_id         uuid NOT NULL REFERENCES upstream_connection (id),
    run_id                uuid NOT NULL REFERENCES upstream_reconciliation_run (id),
    -- The credits request was sent at asked_at and answered at answered_at; the ledger was read at taken_at.
    asked_at              timestamptz NOT NULL,
    answered_at           timestamptz NOT NULL,
    taken_at              timestamptz NOT NULL,
    upstream_answer       text NOT NULL CHECK (length(upstream_answer) <= 100),
    upstream_credits      bigint NOT NULL,
    ledger_balance        bigint NOT NULL,
    -- Messages whose upstream charge may or may not be in the answer: claimed or in doubt at the ledger read.
    in_flight_messages    integer NOT NULL CHECK (in_flight_messages >= 0),
    in_flight_cost        bigint NOT NULL CHECK (in_flight_cost >= 0),
    -- Upstream cost recorded on the ledger between the request and the ledger read.
    recorded_during       bigint NOT NULL CHECK (recorded_during >= 0),
    -- Nothing in flight before the request nor at the read, and nothing recorded in between.
    exact                 boolean NOT NULL,
    -- upstream_credits - (ledger_balance - in_flight_cost)
    difference            bigint NOT NULL,
    -- What the difference may be off by: in_flight_cost + recorded_during (0 when exact).
    uncertainty           bigint NOT NULL CHECK (uncertainty >= 0),
    baseline_snapshot_id  uuid NOT NULL,
    drift                 bigint NOT NULL,
    previous_snapshot_id  uuid,
    -- Purchases recorded after the previous snapshot's ledger read and up to this one's.
    purchases_since_previous bigint NOT NULL DEFAULT 0
);
CREATE INDEX upstream_credit_snapshot_connection ON upstream_credit_snapshot (connection_id, taken_at DESC, id DESC);

-- Which snapshot first saw each purchase on the ledger: the purchases recorded between two snapshots, the
-- explanation of a drift that a purchase at the upstream recorded late caused and its recording undid.
CREATE TABLE upstream_credit_snapshot_purchase (
    purchase_id uuid PRIMARY KEY REFERENCES upstream_purchase (id),
    snapshot_id uuid NOT NULL REFERENCES upstream_credit_snapshot (id)
);
CREATE INDEX upstream_credit_snapshot_purchase_snapshot ON upstream_credit_snapshot_purchase (snapshot_id);

ALTER TABLE upstream_reconciliation_state
    ADD CONSTRAINT upstream_reconciliation_state_baseline
    FOREIGN KEY (baseline_snapshot_id) REFERENCES upstream_credit_snapshot (id);

-- The report table compared with our messages, per connection and UTC day. A later run replaces a day's
-- report when it covers at least as much of the day (see docs/reconciliation.md).
CREATE TABLE upstream_reconciliation_day (
    connection_id      uuid NOT NULL REFERENCES upstream_connection (id),
    day                date NOT NULL,
    run_id             uuid NOT NULL REFERENCES upstream_reconciliation_run (id),
    checked_at         timestamptz NOT NULL,
    -- The part of the day the comparison covers; covered_from is null when the table listed the whole account.
    covered_from       timestamptz,
    covered_until      timestamptz NOT NULL,
    complete           boolean NOT NULL,
    rows_listed        integer NOT NULL,
    messages_compared  integer NOT NULL,
    matched            integer NOT NULL,
    unknown_upstream   integer NOT NULL,
    listed_twice       integer NOT NULL,
    missing_upstream   integer NOT NULL,
    other_upstream_id  integer NOT NULL,
    in_flight          integer NOT NULL,
    differences        jsonb NOT NULL,
    PRIMARY KEY (connection_id, day)
);

-- Platform-owned webhook endpoints (no reseller): the admin's, for platform events only. Tenant queries all
-- filter on reseller_id = <tenant>, which a null never matches.
ALTER TABLE webhook_endpoint ALTER COLUMN reseller_id DROP NOT NULL;
ALTER TABLE webhook_event ALTER COLUMN reseller_id DROP NOT NULL;
ALTER TABLE webhook_delivery ALTER COLUMN reseller_id DROP NOT NULL;
ALTER TABLE webhook_endpoint DROP CONSTRAINT webhook_endpoint_event_types_check;
ALTER TABLE webhook_endpoint ADD CONSTRAINT webhook_endpoint_event_types_check CHECK (
    cardinality(event_types) > 0 AND event_types <@ ARRAY[
        'message.status_changed', 'balance.low', 'balance.recovered', 'account.blocked', 'account.unblocked',
        'sender_name.approved', 'sender_name.rejected', 'webhook.endpoint_disabled',
        'upstream.credit_drift', 'upstream.credit_drift_recovered', 'upstream.reconciliation_mismatch']);
-- A platform endpoint takes platform events only and is signed; a tenant's never takes one.
ALTER TABLE webhook_endpoint ADD CONSTRAINT webhook_endpoint_platform_events CHECK (
    CASE WHEN reseller_id IS NULL
        THEN sub_account_id IS NULL AND format = 'signed' AND event_types <@ ARRAY[
            'upstream.credit_drift', 'upstream.credit_drift_recovered', 'upstream.reconciliation_mismatch']
        ELSE NOT event_types && ARRAY[
            'upstream.credit_drift', 'upstream.credit_drift_recovered', 'upstream.reconciliation_mismatch']
    END);
-- A platform event belongs to no tenant.
ALTER TABLE webhook_event ADD CONSTRAINT webhook_event_platform CHECK (
    (reseller_id IS NULL) = (type LIKE 'upstream.%'));
CREATE INDEX webhook_endpoint_platform ON webhook_endpoint (created_at) WHERE reseller_id IS NULL;
CREATE INDEX webhook_event_platform ON webhook_event (occurred_at) WHERE reseller_id IS NULL;

-- Stores a platform event and one delivery per active platform endpoint that wants it; nothing (null) when none does.
CREATE FUNCTION webhook_emit_platform(p_type text, p_payload jsonb) RETURNS uuid
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_id uuid;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoint e
                   WHERE e.reseller_id IS NULL AND e.status = 'active' AND p_type = ANY (e.event_types)) THEN
        RETURN NULL;
    END IF;
    INSERT INTO webhook_event (type, reseller_id, sub_account_id, payload)
    VALUES (p_type, NULL, NULL, p_payload) RETURNING id INTO v_id;
    INSERT INTO webhook_delivery (reseller_id, endpoint_id, event_id)
    SELECT NULL, e.id, v_id FROM webhook_endpoint e
    WHERE e.reseller_id IS NULL AND e.status = 'active' AND p_type = ANY (e.event_types);
    RETURN v_id;
END
$$;
