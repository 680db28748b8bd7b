-- Webhooks out.
--
-- An event is written by the transaction that makes the change it reports (a transactional outbox, like
-- message_outbox): triggers on the changed rows call webhook_emit, which stores the event and one delivery per
-- matching active endpoint. The webhook sender claims due deliveries (FOR UPDATE SKIP LOCKED and a lease), POSTs them
-- and records each attempt; a crash between the commit and the POST only delays the delivery.
--
-- An event is stored only when an active endpoint of its owner wants its type at that moment: message status changes
-- are the hottest writes of the system, and an event nobody subscribed to would never be read. Replay therefore
-- covers the events stored in a period, i.e. those some endpoint of the owner wanted then.

CREATE TABLE webhook_endpoint (
    id                         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    reseller_id                uuid NOT NULL REFERENCES reseller (id),
    -- NULL: the reseller's own endpoint, for its own events and those of all its sub-accounts.
    sub_account_id             uuid,
    url                        text NOT NULL CHECK (length(url) BETWEEN 8 AND 2000),
    event_types                text[] NOT NULL CHECK (cardinality(event_types) > 0 AND event_types <@ ARRAY[
                                   'message.status_changed', 'balance.low', 'balance.recovered', 'account.blocked',
                                   'account.unblocked', 'sender_name.approved', 'sender_name.rejected',
                                   'webhook.endpoint_disabled']),
    description                text CHECK (length(description) <= 200),
    -- Signing secrets. They must be readable to sign (unlike API keys, which are only compared), so they are stored
    -- as they are; a rotation keeps the previous one valid until previous_secret_expires_at, and deliveries carry a
    -- signature for each valid secret.
    secret                     text NOT NULL CHECK (length(secret) >= 32),
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    status                     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    status_reason              text CHECK (length(status_reason) <= 500),
    -- Since when every attempt has failed (NULL after a success); three days of it disable the endpoint.
    failing_since              timestamptz,
    created_by                 text NOT NULL,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    UNIQUE (reseller_id, id),
    FOREIGN KEY (reseller_id, sub_account_id) REFERENCES sub_account (reseller_id, id),
    CHECK ((previous_secret IS NULL) = (previous_secret_expires_at IS NULL))
);
CREATE INDEX webhook_endpoint_owner ON webhook_endpoint (reseller_id, sub_account_id) WHERE status = 'active';
CREATE TRIGGER webhook_endpoint_touch BEFORE UPDATE ON webhook_endpoint FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE webhook_event (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    type           text NOT NULL,
    reseller_id    uuid NOT NULL,
    sub_account_id uuid,
    payload        jsonb NOT NULL,
    occurred_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX webhook_event_owner ON webhook_event (reseller_id, occurred_at);
-- Retention: the sender forgets old events (see webhook_delivery_finished).
CREATE INDEX webhook_event_age ON webhook_event (occurred_at);

-- One row per event and endpoint (and one more per manual redelivery or replay, so the log keeps the earlier ones).
CREATE TABLE webhook_delivery (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    reseller_id      uuid NOT NULL,
    -- Not a foreign key, like message.upstream_connection_id: every event written for a busy sub-account would
    -- take a key-share lock on its one endpoint row. Deleting an endpoint deletes its deliveries; a delivery whose
    -- endpoint is gone is never claimed.
    endpoint_id      uuid NOT NULL,
    event_id         uuid NOT NULL REFERENCES webhook_event (id),
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    -- While pending: when the next attempt is due; a claim moves it forward by the lease (a crashed sender's
    -- deliveries become due again after it).
    due_at           timestamptz NOT NULL DEFAULT now(),
    leased_by        text,
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_status_code integer,
    last_latency_ms  integer,
    last_error       text CHECK (length(last_error) <= 500),
    -- Retries stop after this (at least three days after the first try) and the delivery fails.
    give_up_at       timestamptz NOT NULL DEFAULT now() + interval '3 days',
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);
CREATE INDEX webhook_delivery_due ON webhook_delivery (due_at) WHERE state = 'pending';
CREATE INDEX webhook_delivery_endpoint ON webhook_delivery (endpoint_id, created_at DESC);
CREATE INDEX webhook_delivery_event ON webhook_delivery (event_id);
-- Retention: finished deliveries (with their attempts) are purged after a while, then their events.
CREATE INDEX webhook_delivery_finished ON webhook_delivery (finished_at) WHERE state <> 'pending';

CREATE TABLE webhook_attempt (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  uuid NOT NULL REFERENCES webhook_delivery (id) ON DELETE CASCADE,
    attempt      integer NOT NULL,
    attempted_at timestamptz NOT NULL,
    status_code  integer,
    latency_ms   integer NOT NULL,
    error        text CHECK (length(error) <= 500)
);
CREATE INDEX webhook_attempt_delivery ON webhook_attempt (delivery_id, id);

-- The admin's exceptions to the SSRF guard: private ranges that receivers may use (on-premise installations). One row.
CREATE TABLE webhook_settings (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    allowed_ranges  cidr[] NOT NULL DEFAULT '{}',
    updated_by      text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO webhook_settings DEFAULT VALUES;

-- Whether an active endpoint of the owner wants `p_type`. Every endpoint gets webhook.endpoint_disabled.
CREATE FUNCTION webhook_wanted(p_type text, p_reseller uuid, p_sub_account uuid) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM webhook_endpoint e
        WHERE e.reseller_id = p_reseller AND e.status = 'active'
          AND (e.sub_account_id IS NULL OR e.sub_account_id = p_sub_account)
          AND (p_type = ANY (e.event_types) OR p_type = 'webhook.endpoint_disabled'))
$$;

-- Stores an event and one delivery per matching active endpoint, in the caller's transaction. NULL when nobody wants it.
CREATE FUNCTION webhook_emit(p_type text, p_reseller uuid, p_sub_account uuid, p_payload jsonb) RETURNS uuid
    LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
BEGIN
    IF NOT webhook_wanted(p_type, p_reseller, p_sub_account) THEN
        RETURN NULL;
    END IF;
    INSERT INTO webhook_event (type, reseller_id, sub_account_id, payload)
    VALUES (p_type, p_reseller, p_sub_account, p_payload) RETURNING id INTO v_id;
    INSERT INTO webhook_delivery (reseller_id, endpoint_id, event_id)
    SELECT e.reseller_id, e.id, v_id FROM webhook_endpoint e
    WHERE e.reseller_id = p_reseller AND e.status = 'active'
      AND (e.sub_account_id IS NULL OR e.sub_account_id = p_sub_account)
      AND (p_type = ANY (e.event_types) OR p_type = 'webhook.endpoint_disabled');
    RETURN v_id;
END
$$;

-- Amounts in JSON are decimal strings with four places, like the API's.
CREATE FUNCTION webhook_money(units bigint) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$ SELECT (units::numeric / 10000)::numeric(24, 4)::text $$;

-- Event sources. Triggers on the rows themselves, so that every path that changes them (dispatcher, reports, polling,
-- expiry, cancellation, the API) reports in its own transaction without each having to remember to.

-- message.status_changed: every change of message.status.
CREATE FUNCTION webhook_message_status_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF webhook_wanted('message.status_changed', NEW.reseller_id, NEW.sub_account_id) THEN
        PERFORM webhook_emit('message.status_changed', NEW.reseller_id, NEW.sub_account_id, jsonb_build_object(
            'messageId', NEW.id, 'subAccountId', NEW.sub_account_id, 'batchId', NEW.batch_id,
            'reference', (SELECT b.reference FROM message_batch b WHERE b.reseller_id = NEW.reseller_id AND b.id = NEW.batch_id),
            'recipient', NEW.recipient, 'status', NEW.status, 'previousStatus', OLD.status,
            'statusCode', NEW.status_code, 'statusAt', NEW.status_at));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER message_webhook AFTER UPDATE OF status ON message
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION webhook_message_status_changed();

-- balance.low / balance.recovered: the ledger writes ledger_event rows when an account crosses its threshold.
CREATE FUNCTION webhook_ledger_event() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    v_type text := CASE NEW.kind WHEN 'low_balance' THEN 'balance.low' ELSE 'balance.recovered' END;
BEGIN
    IF NEW.reseller_id IS NOT NULL THEN
        PERFORM webhook_emit(v_type, NEW.reseller_id, NEW.sub_account_id, jsonb_build_object(
            'accountId', NEW.account_id, 'subAccountId', NEW.sub_account_id,
            'available', webhook_money(NEW.available), 'threshold', webhook_money(NEW.threshold)));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER ledger_event_webhook AFTER INSERT ON ledger_event FOR EACH ROW EXECUTE FUNCTION webhook_ledger_event();

-- account.blocked / account.unblocked: active ↔ blocked or blocked_payment, of a sub-account or a reseller.
CREATE FUNCTION webhook_account_status_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    v_type text;
    v_reseller uuid;
    v_sub_account uuid;
BEGIN
    IF OLD.status = 'active' AND NEW.status IN ('blocked', 'blocked_payment') THEN
        v_type := 'account.blocked';
    ELSIF OLD.status IN ('blocked', 'blocked_payment') AND NEW.status = 'active' THEN
        v_type := 'account.unblocked';
    ELSE
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'sub_account' THEN
        v_reseller := NEW.reseller_id;
        v_sub_account := NEW.id;
    ELSE
        v_reseller := NEW.id;
    END IF;
    PERFORM webhook_emit(v_type, v_reseller, v_sub_account, jsonb_build_object(
        'accountType', TG_TABLE_NAME, 'resellerId', v_reseller, 'subAccountId', v_sub_account,
        'status', NEW.status, 'previousStatus', OLD.status, 'reason', NEW.status_reason));
    RETURN NULL;
END
$$;
CREATE TRIGGER sub_account_webhook AFTER UPDATE OF status ON sub_account
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION webhook_account_status_changed();
CREATE TRIGGER reseller_webhook AFTER UPDATE OF status ON reseller
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION webhook_account_status_changed();

-- sender_name.approved / sender_name.rejected, including names approved on request at once.
CREATE FUNCTION webhook_sender_name_decided() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IN ('approved', 'rejected') AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM NEW.status) THEN
        PERFORM webhook_emit('sender_name.' || NEW.status, NEW.reseller_id, NEW.sub_account_id, jsonb_build_object(
            'senderNameId', NEW.id, 'subAccountId', NEW.sub_account_id, 'name', NEW.name, 'status', NEW.status,
            'reason', NEW.reason));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER sender_name_webhook AFTER INSERT OR UPDATE OF status ON sender_name
    FOR EACH ROW EXECUTE FUNCTION webhook_sender_name_decided();
