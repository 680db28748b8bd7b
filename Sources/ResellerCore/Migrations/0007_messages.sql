-- Messages: batches, one row per recipient, their status history, and the outbox the dispatcher
-- drains.
--
-- A send request is a batch: what all its messages share (sender, text, segmentation, schedule,
-- the client's reference) is stored once on the batch; a message row holds what is its own (the
-- number and its country, the prices and price versions it was accepted at, its reservations,
-- its status, the upstream's id). Accepting writes the batch, the messages, their reservations
-- and their outbox rows in one transaction.

-- Countries (calling codes) to which the upstream takes no messages of more than one part: the
-- 1601 error 119, checked before sending.
ALTER TABLE upstream_connection
    ADD COLUMN single_part_countries text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(single_part_countries) <= 1000);

CREATE TABLE message_batch (
    reseller_id     uuid NOT NULL,
    id              uuid NOT NULL,
    sub_account_id  uuid NOT NULL,
    sender          text NOT NULL,
    text            text NOT NULL,
    encoding        text NOT NULL CHECK (encoding IN ('gsm7', 'ucs2')),
    -- Characters as the segmentation counts them (septets or UTF-16 units), and parts per message.
    length          integer NOT NULL CHECK (length >= 0),
    parts           integer NOT NULL CHECK (parts >= 1),
    long            boolean NOT NULL,
    -- The client's own reference (the 1601 `referentie`, at most 75 characters). Upstream, a message's
    -- `referentie` is its own id, which is what delivery reports are matched on.
    reference       text CHECK (length(reference) BETWEEN 1 AND 75),
    -- Per-request override of the sub-account's delivery callback.
    callback_url    text CHECK (length(callback_url) <= 2000),
    group_name      text,
    schedule_at     timestamptz,
    -- Recipients in the request, messages accepted, recipients refused (per-recipient errors).
    recipient_count integer NOT NULL CHECK (recipient_count >= 1),
    message_count   integer NOT NULL CHECK (message_count >= 1),
    retail_total    bigint NOT NULL CHECK (retail_total >= 0),
    wholesale_total bigint NOT NULL CHECK (wholesale_total >= 0),
    created_by      text NOT NULL,
    request_id      text,
    accepted_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (reseller_id, id),
    UNIQUE (id),
    FOREIGN KEY (reseller_id, sub_account_id) REFERENCES sub_account (reseller_id, id)
);
CREATE INDEX message_batch_sub_account ON message_batch (sub_account_id, accepted_at DESC, id DESC);

CREATE TABLE message (
    reseller_id              uuid NOT NULL,
    id                       uuid NOT NULL,
    sub_account_id           uuid NOT NULL,
    batch_id                 uuid NOT NULL,
    -- Position of the recipient in the request (refused recipients keep their positions).
    position                 integer NOT NULL CHECK (position >= 0),
    -- E.164 digits, no `+`; the calling code it was priced by.
    recipient                text NOT NULL CHECK (recipient ~ '^[1-9][0-9]{6,14}$'),
    country                  text NOT NULL CHECK (country ~ '^[0-9]{1,7}$'),
    -- Prices of the whole message (per part × parts), and the versions they came from.
    retail_price             bigint NOT NULL CHECK (retail_price >= 0),
    wholesale_price          bigint NOT NULL CHECK (wholesale_price >= 0),
    upstream_cost            bigint NOT NULL CHECK (upstream_cost >= 0),
    retail_version_id        uuid NOT NULL,
    wholesale_version_id     uuid NOT NULL,
    upstream_cost_version_id uuid NOT NULL,
    -- The reservations (pending transfers); none for a free leg.
    retail_reservation_id    uuid REFERENCES ledger_transfer (id),
    wholesale_reservation_id uuid REFERENCES ledger_transfer (id),
    status                   text NOT NULL CHECK (status IN (
                                 'scheduled', 'queued', 'submitted', 'delivered', 'not_delivered', 'rejected',
                                 'expired', 'failed', 'cancelled')),
    -- The 1601 error code of a failed message, when the upstream gave one.
    status_code              integer CHECK (status_code BETWEEN 100 AND 199),
    status_detail            text CHECK (length(status_detail) <= 500),
    schedule_at              timestamptz,
    -- Not a foreign key, like message_outbox.connection_id: every send and every dispatch would take a
    -- key-share lock on the one connection row all tenants share. Connections are never deleted.
    upstream_connection_id   uuid,
    upstream_id              text CHECK (length(upstream_id) <= 100),
    accepted_at              timestamptz NOT NULL,
    status_at                timestamptz NOT NULL,
    submitted_at             timestamptz,
    PRIMARY KEY (reseller_id, id),
    UNIQUE (id),
    FOREIGN KEY (reseller_id, batch_id) REFERENCES message_batch (reseller_id, id),
    CHECK (status NOT IN ('submitted', 'delivered', 'not_delivered', 'rejected') OR upstream_id IS NOT NULL)
);
CREATE INDEX message_sub_account ON message (sub_account_id, accepted_at DESC, id DESC);
CREATE INDEX message_batch_position ON message (batch_id, position);
CREATE INDEX message_recipient ON message (sub_account_id, recipient);
CREATE INDEX message_scheduled ON message (sub_account_id) WHERE status = 'scheduled';
CREATE INDEX message_upstream_id ON message (upstream_id) WHERE upstream_id IS NOT NULL;

-- Every status a message has had after acceptance (acceptance itself is the message row), and
-- dispatch attempts that failed for now.
CREATE TABLE message_event (
    reseller_id uuid NOT NULL,
    message_id  uuid NOT NULL,
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    status      text NOT NULL,
    code        integer,
    detail      text CHECK (length(detail) <= 500),
    occurred_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, seq)
);

-- The transactional outbox: one row per message that still has to reach the upstream, deleted in
-- the transaction that records the upstream's answer.
--
-- `due_at` is when the row may be claimed: acceptance, the schedule time, the next retry, or the
-- end of a claim's lease (a claim moves it forward by the lease, so a crashed worker's rows become
-- due again and no second column is needed). `attempts` counts claims. `possibly_sent` is set by a
-- claim and cleared only when the upstream's answer proves it did not take the message (an
-- `ERROR` code, a refused connection): a message possibly sent can no longer be cancelled.
CREATE TABLE message_outbox (
    message_id    uuid PRIMARY KEY REFERENCES message (id),
    reseller_id   uuid NOT NULL,
    -- The connection that sends it: the reseller's effective connection, kept current by the
    -- triggers below; NULL while there is none (the message waits). No foreign key (see message).
    connection_id uuid,
    due_at        timestamptz NOT NULL,
    -- Transient failures are retried until then; afterwards the message fails.
    deadline_at   timestamptz NOT NULL,
    attempts      integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    possibly_sent boolean NOT NULL DEFAULT false,
    leased_by     text,
    last_error    text CHECK (length(last_error) <= 500)
);
CREATE INDEX message_outbox_due ON message_outbox (connection_id, due_at);
CREATE INDEX message_outbox_reseller ON message_outbox (reseller_id);

-- A reseller's connection, or the platform default, changes: its queued messages follow. A send
-- holds its reseller's row FOR SHARE from before it works out the connection until it commits, so
-- locking the reseller first waits for sends in flight, and the UPDATE (a later snapshot) sees their
-- rows; a send that comes after waits for this change and sees the new connection.
CREATE FUNCTION message_outbox_follow_reseller_connection() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.reseller_id ELSE NEW.reseller_id END;
BEGIN
    PERFORM 1 FROM reseller WHERE id = r FOR UPDATE;
    UPDATE message_outbox SET connection_id = effective_upstream_connection(r)
    WHERE reseller_id = r AND connection_id IS DISTINCT FROM effective_upstream_connection(r);
    RETURN NULL;
END;
$$;
CREATE TRIGGER message_outbox_reseller_connection AFTER INSERT OR UPDATE OR DELETE ON reseller_upstream_connection
FOR EACH ROW EXECUTE FUNCTION message_outbox_follow_reseller_connection();

CREATE FUNCTION message_outbox_follow_default_connection() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM reseller r
    WHERE NOT EXISTS (SELECT 1 FROM reseller_upstream_connection a WHERE a.reseller_id = r.id)
    ORDER BY r.id FOR UPDATE;
    UPDATE message_outbox o SET connection_id = effective_upstream_connection(o.reseller_id)
    WHERE NOT EXISTS (SELECT 1 FROM reseller_upstream_connection r WHERE r.reseller_id = o.reseller_id)
      AND o.connection_id IS DISTINCT FROM effective_upstream_connection(o.reseller_id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER message_outbox_default_connection AFTER INSERT OR UPDATE OR DELETE ON upstream_connection_default
FOR EACH STATEMENT EXECUTE FUNCTION message_outbox_follow_default_connection();

-- Appends many reservations (pending transfers) at once, set-based: the send path's version of
-- ledger_apply_transfers for one or many sends in one statement. Arrays are parallel, one element
-- per transfer; `linked` groups transfers that belong together (a message's two legs).
-- The accounts are locked in id order, each touched once with the sum of its amounts; a debit
-- account that cannot cover its sum fails the whole call with LE001 (DETAIL: the account id), so the
-- caller, which has checked the balances under the same locks, never sees it unless it is wrong.
-- Low-balance crossings are recorded as by ledger_apply_transfers.
CREATE FUNCTION ledger_reserve(
    ids uuid[], debit_ids uuid[], credit_ids uuid[], amounts bigint[], linked_ids uuid[],
    codes text[], reseller_ids uuid[], sub_account_ids uuid[], refs text[], created_bys text[], request_ids text[]
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    account_ids uuid[];
    locked      bigint;
    debited     bigint;
    now_ts      timestamptz;
    acct        ledger_account;
BEGIN
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(amounts, debit_ids, credit_ids) AS u (a, d, c) WHERE a IS NULL OR a <= 0 OR d = c) THEN
        RAISE EXCEPTION 'malformed reservation' USING ERRCODE = 'LE007';
    END IF;
    account_ids := ARRAY(SELECT DISTINCT a FROM unnest(debit_ids || credit_ids) a ORDER BY a);
    PERFORM 1 FROM ledger_account WHERE id = ANY (account_ids) ORDER BY id FOR UPDATE;
    GET DIAGNOSTICS locked = ROW_COUNT;
    IF locked <> cardinality(account_ids) THEN
        RAISE EXCEPTION 'no account %', (SELECT a FROM unnest(account_ids) a WHERE NOT EXISTS (SELECT 1 FROM ledger_account WHERE id = a) LIMIT 1)
            USING ERRCODE = 'LE002';
    END IF;
    now_ts := clock_timestamp();

    WITH d AS (SELECT u.a AS account, sum(u.x) AS total FROM unnest(debit_ids, amounts) AS u (a, x) GROUP BY u.a)
    UPDATE ledger_account l SET debits_pending = l.debits_pending + d.total
    FROM d
    WHERE l.id = d.account
      AND (NOT l.debits_must_not_exceed_credits
           OR l.credits_posted - l.debits_posted - l.debits_pending + COALESCE(l.credit_limit, 0) >= d.total);
    GET DIAGNOSTICS debited = ROW_COUNT;
    IF debited <> (SELECT count(DISTINCT a) FROM unnest(debit_ids) a) THEN
        RAISE EXCEPTION 'exceeds credits' USING ERRCODE = 'LE001', DETAIL = (
            SELECT string_agg(l.id::text, ',') FROM ledger_account l
            JOIN (SELECT u.a, sum(u.x) AS total FROM unnest(debit_ids, amounts) AS u (a, x) GROUP BY u.a) d ON d.a = l.id
            WHERE l.debits_must_not_exceed_credits
              AND l.credits_posted - l.debits_posted - l.debits_pending + COALESCE(l.credit_limit, 0) < d.total);
    END IF;
    WITH c AS (SELECT u.a AS account, sum(u.x) AS total FROM unnest(credit_ids, amounts) AS u (a, x) GROUP BY u.a)
    UPDATE ledger_account l SET credits_pending = l.credits_pending + c.total FROM c WHERE l.id = c.account;

    INSERT INTO ledger_transfer (id, debit_account_id, credit_account_id, amount, kind, state, linked_id, code,
                                 reseller_id, sub_account_id, reference, created_by, request_id, created_at)
    SELECT u.id, u.d, u.c, u.a, 'pending', 'pending', u.l, u.code, u.r, u.s, u.ref, u.by, u.req, now_ts
    FROM unnest(ids, debit_ids, credit_ids, amounts, linked_ids, codes, reseller_ids, sub_account_ids, refs, created_bys, request_ids)
         WITH ORDINALITY AS u (id, d, c, a, l, code, r, s, ref, by, req, n)
    ORDER BY u.n;

    -- Low-balance crossings of the accounts with a threshold, with the last transfer that touched each.
    FOR acct IN SELECT * FROM ledger_account
                WHERE id = ANY (account_ids) AND low_balance_threshold IS NOT NULL
                  AND below_threshold <> (credits_posted - debits_posted - debits_pending < low_balance_threshold)
    LOOP
        UPDATE ledger_account SET below_threshold = NOT below_threshold WHERE id = acct.id;
        INSERT INTO ledger_event (account_id, reseller_id, sub_account_id, kind, available, threshold, transfer_id)
        VALUES (acct.id, acct.reseller_id, acct.sub_account_id,
                CASE WHEN acct.below_threshold THEN 'balance_recovered' ELSE 'low_balance' END,
                acct.credits_posted - acct.debits_posted - acct.debits_pending, acct.low_balance_threshold,
                (SELECT u.id FROM unnest(ids, debit_ids, credit_ids) WITH ORDINALITY AS u (id, d, c, n)
                 WHERE acct.id IN (u.d, u.c) ORDER BY u.n DESC LIMIT 1));
    END LOOP;
END;
$$;

-- Every send resolves its price lists and versions and its upstream connection through these
-- functions. As `LANGUAGE sql` functions with subqueries they cannot be inlined, and PostgreSQL then
-- plans their body on every call; in PL/pgSQL the plans are kept for the session. Same definitions.
CREATE OR REPLACE FUNCTION effective_upstream_cost_price_list() RETURNS uuid
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT price_list_id FROM platform_price_default WHERE layer = 'upstream_cost');
END;
$$;

CREATE OR REPLACE FUNCTION effective_wholesale_price_list(p_reseller uuid) RETURNS uuid
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce(
        (SELECT price_list_id FROM reseller_wholesale_price_list WHERE reseller_id = p_reseller),
        (SELECT price_list_id FROM platform_price_default WHERE layer = 'wholesale'));
END;
$$;

CREATE OR REPLACE FUNCTION effective_retail_price_list(p_reseller uuid, p_sub_account uuid) RETURNS uuid
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce(
        (SELECT price_list_id FROM sub_account_retail_price_list WHERE reseller_id = p_reseller AND sub_account_id = p_sub_account),
        (SELECT price_list_id FROM reseller_default_retail_price_list WHERE reseller_id = p_reseller));
END;
$$;

CREATE OR REPLACE FUNCTION platform_price_version_at(p_list uuid, p_instant timestamptz) RETURNS uuid
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT id FROM platform_price_version
            WHERE price_list_id = p_list AND effective_from <= p_instant
            ORDER BY effective_from DESC LIMIT 1);
END;
$$;

CREATE OR REPLACE FUNCTION retail_price_version_at(p_reseller uuid, p_list uuid, p_instant timestamptz) RETURNS uuid
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT id FROM retail_price_version
            WHERE reseller_id = p_reseller AND price_list_id = p_list AND effective_from <= p_instant
            ORDER BY effective_from DESC LIMIT 1);
END;
$$;

CREATE OR REPLACE FUNCTION effective_upstream_connection(p_reseller uuid) RETURNS uuid
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce(
        (SELECT connection_id FROM reseller_upstream_connection WHERE reseller_id = p_reseller),
        (SELECT connection_id FROM upstream_connection_default));
END;
$$;
