-- Finance: what the upstream costs on the ledger, upstream credit purchases, the operators' charts of
-- accounts, and the hourly rollups that usage reports read.

-- 1. Upstream accounts, two per upstream connection: `upstream_balance` (credits prepaid at 1601:
-- purchases credit it, each message the upstream takes debits it) and `upstream_cost` (the
-- platform's cost of sales through that connection). Per connection rather than platform-wide, so
-- that recording dispatch results never waits on one row all connections share; reports sum them.
-- The balance may go below zero: an `OK` from the upstream is recorded whatever our books say, and
-- a negative balance is a finding for reconciliation, not a reason to lose a message id.
ALTER TABLE ledger_account ADD COLUMN upstream_connection_id uuid REFERENCES upstream_connection (id);
ALTER TABLE ledger_account DROP CONSTRAINT ledger_account_kind_check;
ALTER TABLE ledger_account ADD CONSTRAINT ledger_account_kind_check CHECK (kind IN (
    'platform_funding', 'platform_revenue', 'upstream_balance', 'upstream_cost',
    'reseller_wallet', 'reseller_revenue', 'reseller_issuance', 'sub_account_wallet'));
-- The platform-wide upstream_cost account of 0003 was never posted to; its role passes to the
-- per-connection accounts.
DELETE FROM ledger_account WHERE kind = 'upstream_cost' AND upstream_connection_id IS NULL;
ALTER TABLE ledger_account DROP CONSTRAINT ledger_account_check;
ALTER TABLE ledger_account ADD CONSTRAINT ledger_account_check CHECK (CASE
    WHEN kind = 'platform_funding' THEN reseller_id IS NULL AND sub_account_id IS NULL AND upstream_connection_id IS NULL
    WHEN kind IN ('upstream_balance', 'upstream_cost')
        THEN reseller_id IS NULL AND sub_account_id IS NULL AND upstream_connection_id IS NOT NULL
    WHEN kind = 'sub_account_wallet'
        THEN reseller_id IS NOT NULL AND sub_account_id IS NOT NULL AND upstream_connection_id IS NULL
    ELSE reseller_id IS NOT NULL AND sub_account_id IS NULL AND upstream_connection_id IS NULL
END);
DROP INDEX ledger_account_owner;
CREATE UNIQUE INDEX ledger_account_owner ON ledger_account (kind, reseller_id, sub_account_id, upstream_connection_id)
    NULLS NOT DISTINCT;

CREATE FUNCTION ledger_open_upstream_accounts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_account (kind, upstream_connection_id, debits_must_not_exceed_credits)
    VALUES ('upstream_balance', NEW.id, false), ('upstream_cost', NEW.id, false);
    RETURN NULL;
END;
$$;
CREATE TRIGGER upstream_connection_ledger_accounts AFTER INSERT ON upstream_connection
FOR EACH ROW EXECUTE FUNCTION ledger_open_upstream_accounts();
INSERT INTO ledger_account (kind, upstream_connection_id, debits_must_not_exceed_credits)
SELECT k.kind, c.id, false
FROM upstream_connection c CROSS JOIN (VALUES ('upstream_balance'), ('upstream_cost')) AS k (kind);

-- Appends posted transfers set-based (the dispatcher's cost postings, the backfill below): arrays
-- are parallel, one element per transfer. Accounts are locked in id order and each touched once
-- with its sums; a debit account that may not be overdrawn and cannot cover its sum fails the call
-- with LE001. `created_ats` may hold NULLs (the time of the call) or, for a backfill, the time the
-- movement happened. Accounts with a low-balance threshold are not expected here (LE007 if any).
CREATE FUNCTION ledger_post(
    ids uuid[], debit_ids uuid[], credit_ids uuid[], amounts bigint[], codes text[], reseller_ids uuid[],
    sub_account_ids uuid[], refs text[], created_bys text[], created_ats timestamptz[]
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    account_ids uuid[];
    locked      bigint;
    debited     bigint;
    now_ts      timestamptz;
BEGIN
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(amounts, debit_ids, credit_ids) AS u (a, d, c) WHERE a IS NULL OR a <= 0 OR d = c) THEN
        RAISE EXCEPTION 'malformed transfer' USING ERRCODE = 'LE007';
    END IF;
    account_ids := ARRAY(SELECT DISTINCT a FROM unnest(debit_ids || credit_ids) a ORDER BY a);
    PERFORM 1 FROM ledger_account WHERE id = ANY (account_ids) ORDER BY id FOR UPDATE;
    GET DIAGNOSTICS locked = ROW_COUNT;
    IF locked <> cardinality(account_ids) THEN
        RAISE EXCEPTION 'no account %', (SELECT a FROM unnest(account_ids) a WHERE NOT EXISTS (SELECT 1 FROM ledger_account WHERE id = a) LIMIT 1)
            USING ERRCODE = 'LE002';
    END IF;
    IF EXISTS (SELECT 1 FROM ledger_account WHERE id = ANY (account_ids) AND low_balance_threshold IS NOT NULL) THEN
        RAISE EXCEPTION 'ledger_post does not watch low-balance thresholds' USING ERRCODE = 'LE007';
    END IF;
    now_ts := clock_timestamp();

    WITH d AS (SELECT u.a AS account, sum(u.x) AS total FROM unnest(debit_ids, amounts) AS u (a, x) GROUP BY u.a)
    UPDATE ledger_account l SET debits_posted = l.debits_posted + d.total
    FROM d
    WHERE l.id = d.account
      AND (NOT l.debits_must_not_exceed_credits
           OR l.credits_posted - l.debits_posted - l.debits_pending + COALESCE(l.credit_limit, 0) >= d.total);
    GET DIAGNOSTICS debited = ROW_COUNT;
    IF debited <> (SELECT count(DISTINCT a) FROM unnest(debit_ids) a) THEN
        RAISE EXCEPTION 'exceeds credits' USING ERRCODE = 'LE001';
    END IF;
    WITH c AS (SELECT u.a AS account, sum(u.x) AS total FROM unnest(credit_ids, amounts) AS u (a, x) GROUP BY u.a)
    UPDATE ledger_account l SET credits_posted = l.credits_posted + c.total FROM c WHERE l.id = c.account;

    INSERT INTO ledger_transfer (id, debit_account_id, credit_account_id, amount, kind, code,
                                 reseller_id, sub_account_id, reference, created_by, created_at)
    SELECT u.id, u.d, u.c, u.a, 'posted', u.code, u.r, u.s, u.ref, u.by, coalesce(u.at, now_ts)
    FROM unnest(ids, debit_ids, credit_ids, amounts, codes, reseller_ids, sub_account_ids, refs, created_bys, created_ats)
         WITH ORDINALITY AS u (id, d, c, a, code, r, s, ref, by, at, n)
    ORDER BY u.n;
END;
$$;

-- 2. What each message cost: the transfer that posted its upstream cost, set once, when the upstream
-- first answered `OK` for it (a later `OK` for the same message costs nothing more).
ALTER TABLE message ADD COLUMN upstream_cost_transfer_id uuid REFERENCES ledger_transfer (id);

-- Messages the upstream took before this migration get their cost now, dated when they were taken.
WITH costed AS (
    UPDATE message m SET upstream_cost_transfer_id = gen_random_uuid()
    WHERE m.upstream_id IS NOT NULL AND m.upstream_connection_id IS NOT NULL AND m.upstream_cost > 0
    RETURNING m.id, m.reseller_id, m.sub_account_id, m.upstream_connection_id, m.upstream_cost,
              m.upstream_cost_transfer_id, coalesce(m.submitted_at, m.status_at) AS taken_at
), legs AS (
    SELECT c.*, b.id AS balance_id, k.id AS cost_id
    FROM costed c
    JOIN ledger_account b ON b.kind = 'upstream_balance' AND b.upstream_connection_id = c.upstream_connection_id
    JOIN ledger_account k ON k.kind = 'upstream_cost' AND k.upstream_connection_id = c.upstream_connection_id
)
SELECT ledger_post(
    coalesce(array_agg(upstream_cost_transfer_id ORDER BY taken_at, id), '{}'),
    coalesce(array_agg(balance_id ORDER BY taken_at, id), '{}'),
    coalesce(array_agg(cost_id ORDER BY taken_at, id), '{}'),
    coalesce(array_agg(upstream_cost ORDER BY taken_at, id), '{}'),
    coalesce(array_agg('upstream_cost'::text ORDER BY taken_at, id), '{}'),
    coalesce(array_agg(reseller_id ORDER BY taken_at, id), '{}'),
    coalesce(array_agg(sub_account_id ORDER BY taken_at, id), '{}'),
    coalesce(array_agg(id::text ORDER BY taken_at, id), '{}'),
    coalesce(array_agg('system:migration'::text ORDER BY taken_at, id), '{}'),
    coalesce(array_agg(taken_at ORDER BY taken_at, id), '{}'))
FROM legs;

-- 3. Purchases of upstream credits: what the platform bought at 1601 (credits), what it paid (an
-- amount in a currency, as invoiced), and the transfer that credited the connection's balance.
CREATE TABLE upstream_purchase (
    id                uuid PRIMARY KEY,
    connection_id     uuid NOT NULL REFERENCES upstream_connection (id),
    credits           bigint NOT NULL CHECK (credits > 0),
    -- The invoiced amount in minor units of 1/10 000 of `currency` (12.5 EUR = 125000).
    amount_paid       bigint NOT NULL CHECK (amount_paid >= 0),
    currency          text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    invoice_reference text NOT NULL CHECK (length(invoice_reference) BETWEEN 1 AND 200),
    note              text CHECK (length(note) <= 1000),
    transfer_id       uuid NOT NULL UNIQUE REFERENCES ledger_transfer (id),
    created_by        text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX upstream_purchase_connection ON upstream_purchase (connection_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX upstream_purchase_invoice ON upstream_purchase (connection_id, invoice_reference);

-- 4. Charts of accounts: the code each ledger account kind has in the operator's own bookkeeping
-- (reseller_id NULL: the platform's chart), used by the double-entry journal export.
CREATE TABLE account_code (
    reseller_id  uuid REFERENCES reseller (id),
    account_kind text NOT NULL CHECK (account_kind IN (
                     'platform_funding', 'platform_revenue', 'upstream_balance', 'upstream_cost',
                     'reseller_wallet', 'reseller_revenue', 'reseller_issuance', 'sub_account_wallet')),
    code         text NOT NULL CHECK (length(code) BETWEEN 1 AND 40 AND code !~ '[[:cntrl:]]'),
    name         text CHECK (length(name) BETWEEN 1 AND 200 AND name !~ '[[:cntrl:]]'),
    updated_by   text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX account_code_kind ON account_code (reseller_id, account_kind) NULLS NOT DISTINCT;

-- 5. Usage facts and their hourly rollup.
--
-- Every ledger transfer that moves a message's money, as facts of that message at the time the
-- transfer was posted: its leg (retail, wholesale, cost), its class and its amount. Opening a
-- reservation adds its amount to `pending`; resolving it moves the amount out of `pending` (a
-- negative pending fact) into `charged` (posted) or `refunded` (voided or expired). So the pending
-- facts of a period are the change in what is reserved, and over all time what is reserved now. A
-- message moves the same way, by its first priced leg (retail, or wholesale when retail is free):
-- `messages` is +1 or -1 on those facts, 0 on the others (the second leg, late charges, costs).
CREATE INDEX ledger_transfer_created_at ON ledger_transfer (created_at);
CREATE INDEX ledger_transfer_message_reference ON ledger_transfer (reference)
    WHERE code IN ('late_delivery', 'upstream_cost');
CREATE INDEX message_accepted_at ON message (accepted_at);

CREATE VIEW usage_money_fact AS
SELECT f.at, f.transfer_id, m.reseller_id, m.sub_account_id, m.country, m.id AS message_id, m.accepted_at,
       b.parts, f.leg, f.class, f.amount,
       CASE WHEN f.leg = CASE WHEN m.retail_reservation_id IS NOT NULL THEN 'retail' ELSE 'wholesale' END
            THEN f.moves ELSE 0 END AS messages
FROM (
    SELECT t.created_at AS at, t.id AS transfer_id, t.reference::uuid AS message_id,
           CASE t.code WHEN 'send_retail' THEN 'retail' ELSE 'wholesale' END AS leg,
           'pending' AS class, t.amount, 1 AS moves
    FROM ledger_transfer t
    WHERE t.kind = 'pending' AND t.code IN ('send_retail', 'send_wholesale')
    UNION ALL
    SELECT t.created_at, t.id, p.reference::uuid, CASE p.code WHEN 'send_retail' THEN 'retail' ELSE 'wholesale' END,
           x.class, x.amount, x.moves
    FROM ledger_transfer t
    JOIN ledger_transfer p ON p.id = t.pending_id
    CROSS JOIN LATERAL (VALUES
        (CASE t.kind WHEN 'post_pending' THEN 'charged' ELSE 'refunded' END, t.amount, 1),
        ('pending', -p.amount, -1)) AS x (class, amount, moves)
    WHERE t.kind IN ('post_pending', 'void_pending') AND p.code IN ('send_retail', 'send_wholesale')
    UNION ALL
    SELECT t.created_at, t.id, t.reference::uuid,
           CASE a.kind WHEN 'sub_account_wallet' THEN 'retail' ELSE 'wholesale' END, 'charged', t.amount, 0
    FROM ledger_transfer t JOIN ledger_account a ON a.id = t.debit_account_id
    WHERE t.code = 'late_delivery'
    UNION ALL
    SELECT t.created_at, t.id, t.reference::uuid, 'cost', 'charged', t.amount, 0
    FROM ledger_transfer t
    WHERE t.code = 'upstream_cost'
) f
JOIN message m ON m.id = f.message_id
JOIN message_batch b ON b.reseller_id = m.reseller_id AND b.id = m.batch_id;

-- The facts summed per UTC hour, sub-account, country and class, for hours that are sealed: every
-- transaction that could still add a fact to them has ended (see usage_seal). Rows of a sealed hour
-- never change; a report reads sealed hours here and everything else from usage_money_fact.
CREATE TABLE usage_money_hour (
    hour           timestamptz NOT NULL,
    reseller_id    uuid NOT NULL,
    sub_account_id uuid NOT NULL,
    country        text NOT NULL,
    class          text NOT NULL CHECK (class IN ('pending', 'charged', 'refunded')),
    messages       bigint NOT NULL,
    parts          bigint NOT NULL,
    retail         bigint NOT NULL,
    wholesale      bigint NOT NULL,
    upstream_cost  bigint NOT NULL,
    PRIMARY KEY (hour, reseller_id, sub_account_id, country, class)
);
CREATE INDEX usage_money_hour_reseller ON usage_money_hour (reseller_id, hour);
CREATE INDEX usage_money_hour_sub_account ON usage_money_hour (sub_account_id, hour);

-- Hours before `sealed_until` are in usage_money_hour (NULL: none yet). `candidate_at` and
-- `candidate_xmax` are a horizon being waited for (see usage_seal).
CREATE TABLE usage_rollup_state (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    sealed_until   timestamptz CHECK (sealed_until = date_trunc('hour', sealed_until, 'UTC')),
    candidate_at   timestamptz,
    candidate_xmax xid8,
    CHECK ((candidate_at IS NULL) = (candidate_xmax IS NULL))
);
INSERT INTO usage_rollup_state DEFAULT VALUES;

-- Seals at most `max_hours` more hours and returns the new `sealed_until` (NULL while nothing is).
--
-- A fact's time is the clock_timestamp() its transfer was appended at, and every function that
-- appends transfers (ledger_apply_transfers, ledger_reserve, ledger_post) locks accounts first, so the
-- transaction already has its id then. A call notes the time and the next transaction id to be
-- assigned (its snapshot's xmax) as a candidate; a later call that finds every transaction below
-- that id ended (its snapshot's xmin has reached it) knows every fact before the candidate time is
-- committed or gone, and seals the whole hours before it. Read-only sessions never hold it back; a
-- long write transaction does, for as long as it runs. Concurrent calls serialise on the state row.
CREATE FUNCTION usage_seal(max_hours integer DEFAULT 24) RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
    now_ts   timestamptz;
    now_xmin xid8;
    now_xmax xid8;
    st       usage_rollup_state;
    horizon  timestamptz;
    sealed   timestamptz;
    upto     timestamptz;
BEGIN
    -- The time first, then (in a later statement, so a later snapshot) the transaction ids: a transfer stamped before
    -- `now_ts` belongs to a transaction that had its id before then, so below `now_xmax`. Both before this call takes
    -- any lock (which would give it a transaction id of its own).
    now_ts := clock_timestamp();
    SELECT pg_snapshot_xmin(pg_current_snapshot()), pg_snapshot_xmax(pg_current_snapshot()) INTO now_xmin, now_xmax;
    SELECT * INTO st FROM usage_rollup_state FOR UPDATE;
    IF st.candidate_xmax IS NULL THEN
        UPDATE usage_rollup_state SET candidate_at = now_ts, candidate_xmax = now_xmax;
        RETURN st.sealed_until;
    END IF;
    IF now_xmin < st.candidate_xmax THEN
        RETURN st.sealed_until;
    END IF;
    horizon := date_trunc('hour', st.candidate_at, 'UTC');
    sealed := coalesce(st.sealed_until, date_trunc('hour', (SELECT min(created_at) FROM ledger_transfer), 'UTC'), horizon);
    upto := greatest(sealed, least(horizon, sealed + make_interval(hours => max_hours)));
    IF upto > sealed THEN
        INSERT INTO usage_money_hour (hour, reseller_id, sub_account_id, country, class, messages, parts, retail,
                                      wholesale, upstream_cost)
        SELECT date_trunc('hour', f.at, 'UTC'), f.reseller_id, f.sub_account_id, f.country, f.class,
               sum(f.messages), sum(f.messages * f.parts),
               coalesce(sum(f.amount) FILTER (WHERE f.leg = 'retail'), 0),
               coalesce(sum(f.amount) FILTER (WHERE f.leg = 'wholesale'), 0),
               coalesce(sum(f.amount) FILTER (WHERE f.leg = 'cost'), 0)
        FROM usage_money_fact f
        WHERE f.at >= sealed AND f.at < upto
        GROUP BY 1, 2, 3, 4, 5;
    END IF;
    -- A new candidate once this one is used up; kept while hours before it remain to be sealed.
    IF upto >= horizon THEN
        UPDATE usage_rollup_state SET sealed_until = upto, candidate_at = now_ts, candidate_xmax = now_xmax;
    ELSE
        UPDATE usage_rollup_state SET sealed_until = upto;
    END IF;
    RETURN upto;
END;
$$;
