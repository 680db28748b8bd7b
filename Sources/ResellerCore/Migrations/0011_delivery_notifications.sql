-- Old-style (1601) delivery notifications: what customers of the upstream's own API received, kept by the
-- 1601-compatible endpoint. A `1601` endpoint gets `GET <url>?smsid=…&datum=…&status=…&referentie=…` for the message
-- status changes of batches sent with delivery reports (`message_batch.delivery_reports`, the 1601 `delivery=ja`),
-- instead of signed JSON. A send's own `callback_url` takes the place of the sub-account's 1601 endpoints for that
-- batch: its deliveries carry the URL themselves and belong to no endpoint.
--
-- Both go through the webhook outbox (0009): the same claim, lease, retries, give-up, SSRF guard and log.

ALTER TABLE webhook_endpoint
    ADD COLUMN format text NOT NULL DEFAULT 'signed' CHECK (format IN ('signed', '1601')),
    -- The old style has only delivery notifications.
    ADD CONSTRAINT webhook_endpoint_1601_types CHECK (format = 'signed' OR event_types = ARRAY['message.status_changed']);

-- Events that only old-style receivers get (a BUFFERED report, which changes no status): a signed endpoint's replay
-- skips them.
ALTER TABLE webhook_event ADD COLUMN legacy_only boolean NOT NULL DEFAULT false;

ALTER TABLE webhook_delivery
    ALTER COLUMN endpoint_id DROP NOT NULL,
    -- A send's own callback URL (endpoint_id NULL): where to, and which message's history records the outcome.
    ADD COLUMN url        text CHECK (length(url) <= 2000),
    ADD COLUMN message_id uuid,
    ADD CONSTRAINT webhook_delivery_target CHECK ((endpoint_id IS NULL) = (url IS NOT NULL) AND (url IS NULL) = (message_id IS NULL));

-- The 1601 status word of a message status; NULL for states the upstream never reports (queued, scheduled, cancelled).
CREATE FUNCTION webhook_gateway_status(p_status text) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_status
        WHEN 'submitted' THEN 'SUBMITTED'
        WHEN 'delivered' THEN 'DELIVERED'
        WHEN 'not_delivered' THEN 'NOT DELIVERED'
        WHEN 'expired' THEN 'NOT DELIVERED'
        WHEN 'rejected' THEN 'REJECTED'
        WHEN 'failed' THEN 'REJECTED'
    END
$$;

-- From now on only signed endpoints get the events that go through webhook_emit (every type but message status
-- changes, which webhook_emit_message writes): a 1601 receiver could not read them, webhook.endpoint_disabled included.
CREATE OR REPLACE FUNCTION webhook_wanted(p_type text, p_reseller uuid, p_sub_account uuid) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM webhook_endpoint e
        WHERE e.reseller_id = p_reseller AND e.status = 'active' AND e.format = 'signed'
          AND (e.sub_account_id IS NULL OR e.sub_account_id = p_sub_account)
          AND (p_type = ANY (e.event_types) OR p_type = 'webhook.endpoint_disabled'))
$$;

CREATE OR REPLACE FUNCTION webhook_emit(p_type text, p_reseller uuid, p_sub_account uuid, p_payload jsonb) RETURNS uuid
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
    WHERE e.reseller_id = p_reseller AND e.status = 'active' AND e.format = 'signed'
      AND (e.sub_account_id IS NULL OR e.sub_account_id = p_sub_account)
      AND (p_type = ANY (e.event_types) OR p_type = 'webhook.endpoint_disabled');
    RETURN v_id;
END
$$;

-- A message.status_changed event of `p_message` and its deliveries: to the owner's signed endpoints (when
-- `p_signed`: a real status change), and, when the status has a 1601 word and the batch asked for delivery reports,
-- to the send's own callback URL or else the sub-account's 1601 endpoints. Reseller-wide 1601 endpoints get theirs
-- whatever the send's URL (they are the reseller's, not the customer's). The payload is the 0009 one plus
-- `gatewayId`, `gatewayStatus` and `gatewayStatusAt`; `statusAt` is the time of the change, `gatewayStatusAt` the
-- `datum` of a 1601 notification: the time a delivery report gave when one set the status (as gatewayrapport.php and
-- the rapport table date it), else the time of the change. NULL when nobody gets it.
CREATE FUNCTION webhook_emit_message(
    p_message message, p_previous_status text, p_gateway_status text, p_at timestamptz, p_signed boolean
) RETURNS uuid
    LANGUAGE plpgsql AS $$
DECLARE
    v_reference   text;
    v_callback    text;
    v_reports     boolean;
    v_signed      boolean;
    v_legacy      boolean;
    v_id          uuid;
BEGIN
    -- One statement on every status change (it runs for every message, mostly with nobody listening): the batch's
    -- reference, URL and flag, and whether any endpoint of either format wants the change.
    SELECT b.reference, b.callback_url, b.delivery_reports AND p_gateway_status IS NOT NULL,
           p_signed AND EXISTS (
               SELECT 1 FROM webhook_endpoint e
               WHERE e.reseller_id = p_message.reseller_id AND e.status = 'active' AND e.format = 'signed'
                 AND (e.sub_account_id IS NULL OR e.sub_account_id = p_message.sub_account_id)
                 AND 'message.status_changed' = ANY (e.event_types)),
           EXISTS (
               SELECT 1 FROM webhook_endpoint e
               WHERE e.reseller_id = p_message.reseller_id AND e.status = 'active' AND e.format = '1601'
                 AND (e.sub_account_id IS NULL OR e.sub_account_id = p_message.sub_account_id))
    INTO v_reference, v_callback, v_reports, v_signed, v_legacy
    FROM message_batch b WHERE b.reseller_id = p_message.reseller_id AND b.id = p_message.batch_id;
    IF NOT v_reports THEN
        v_callback := NULL;
        v_legacy := false;
    END IF;
    v_legacy := v_legacy OR v_callback IS NOT NULL;
    IF NOT (v_signed OR v_legacy) THEN
        RETURN NULL;
    END IF;
    INSERT INTO webhook_event (type, reseller_id, sub_account_id, payload, legacy_only)
    VALUES ('message.status_changed', p_message.reseller_id, p_message.sub_account_id, jsonb_build_object(
                'messageId', p_message.id, 'subAccountId', p_message.sub_account_id, 'batchId', p_message.batch_id,
                'reference', v_reference, 'recipient', p_message.recipient, 'status', p_message.status,
                'previousStatus', p_previous_status, 'statusCode', p_message.status_code, 'statusAt', p_at,
                'gatewayId', p_message.gateway_id, 'gatewayStatus', p_gateway_status,
                'gatewayStatusAt', COALESCE(p_message.reported_at, p_at)),
            -- Only what a signed endpoint wanted is theirs to replay.
            NOT v_signed)
    RETURNING id INTO v_id;
    IF v_signed THEN
        INSERT INTO webhook_delivery (reseller_id, endpoint_id, event_id)
        SELECT e.reseller_id, e.id, v_id FROM webhook_endpoint e
        WHERE e.reseller_id = p_message.reseller_id AND e.status = 'active' AND e.format = 'signed'
          AND (e.sub_account_id IS NULL OR e.sub_account_id = p_message.sub_account_id)
          AND 'message.status_changed' = ANY (e.event_types);
    END IF;
    IF v_legacy THEN
        INSERT INTO webhook_delivery (reseller_id, endpoint_id, event_id)
        SELECT e.reseller_id, e.id, v_id FROM webhook_endpoint e
        WHERE e.reseller_id = p_message.reseller_id AND e.status = 'active' AND e.format = '1601'
          AND (e.sub_account_id IS NULL OR (e.sub_account_id = p_message.sub_account_id AND v_callback IS NULL));
        IF v_callback IS NOT NULL THEN
            INSERT INTO webhook_delivery (reseller_id, endpoint_id, event_id, url, message_id)
            VALUES (p_message.reseller_id, NULL, v_id, v_callback, p_message.id);
        END IF;
    END IF;
    RETURN v_id;
END
$$;

CREATE OR REPLACE FUNCTION webhook_message_status_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM webhook_emit_message(NEW, OLD.status, webhook_gateway_status(NEW.status), NEW.status_at, true);
    RETURN NULL;
END
$$;

-- A BUFFERED report changes no status but is in the message's history: old-style receivers hear of it, once, while
-- the message is in flight (a BUFFERED arriving after the final state, or again, is only recorded).
CREATE FUNCTION webhook_message_buffered() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    v_message message;
BEGIN
    SELECT * INTO v_message FROM message m WHERE m.reseller_id = NEW.reseller_id AND m.id = NEW.message_id;
    IF v_message.status NOT IN ('queued', 'submitted')
       OR EXISTS (SELECT 1 FROM message_event e WHERE e.message_id = NEW.message_id AND e.status = NEW.status AND e.seq < NEW.seq) THEN
        RETURN NULL;
    END IF;
    PERFORM webhook_emit_message(v_message, v_message.status, 'BUFFERED', NEW.occurred_at, false);
    RETURN NULL;
END
$$;
CREATE TRIGGER message_event_buffered_webhook AFTER INSERT ON message_event
    FOR EACH ROW WHEN (NEW.status = 'report:buffered') EXECUTE FUNCTION webhook_message_buffered();
