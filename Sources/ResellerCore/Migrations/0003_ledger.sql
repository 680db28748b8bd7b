-- The credit ledger: double-entry, append-only, TigerBeetle's account/transfer shape.
-- Amounts are bigint minor units (1 credit = 10 000 units).
--
-- Every movement is a transfer from a debit account to a credit account. Balances live on the
-- account row as four running sums, changed only by ledger_apply_transfers() in the same
-- statement that appends the transfer, so `sum of postings = 0` holds by construction and the
-- CHECK on the account row is the last line of defence against an overdraft.

CREATE TABLE ledger_account (
    id                             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind                           text NOT NULL CHECK (kind IN (
                                       'platform_funding', 'platform_revenue', 'upstream_cost',
                                       'reseller_wallet', 'reseller_revenue', 'reseller_issuance',
                                       'sub_account_wallet')),
    reseller_id                    uuid REFERENCES reseller (id),
    sub_account_id                 uuid,
    debits_pending                 bigint NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
    debits_posted                  bigint NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_pending                bigint NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
    credits_posted                 bigint NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    -- Postpaid: how far below zero the available balance may go. NULL: not postpaid.
    credit_limit                   bigint CHECK (credit_limit >= 0),
    -- Wallets may not be overdrawn (beyond their credit limit); system accounts may.
    debits_must_not_exceed_credits boolean NOT NULL,
    low_balance_threshold          bigint CHECK (low_balance_threshold >= 0),
    -- Whether the available balance is below the threshold, so that only crossings make events.
    below_threshold                boolean NOT NULL DEFAULT false,
    created_at                     timestamptz NOT NULL DEFAULT now(),
    updated_at                     timestamptz NOT NULL DEFAULT now(),
    -- The platform's revenue is kept per reseller (platform_revenue carries the reseller it came from),
    -- so that sends of different tenants never wait on one shared row; reports sum it.
    CHECK (CASE
        WHEN kind IN ('platform_funding', 'upstream_cost') THEN reseller_id IS NULL AND sub_account_id IS NULL
        WHEN kind = 'sub_account_wallet' THEN reseller_id IS NOT NULL AND sub_account_id IS NOT NULL
        ELSE reseller_id IS NOT NULL AND sub_account_id IS NULL
    END),
    CONSTRAINT ledger_account_not_overdrawn CHECK (
        NOT debits_must_not_exceed_credits
        OR credits_posted + COALESCE(credit_limit, 0) - debits_posted - debits_pending >= 0),
    FOREIGN KEY (reseller_id, sub_account_id) REFERENCES sub_account (reseller_id, id)
);
CREATE UNIQUE INDEX ledger_account_owner ON ledger_account (kind, reseller_id, sub_account_id) NULLS NOT DISTINCT;
CREATE INDEX ledger_account_tenant ON ledger_account (reseller_id, sub_account_id);
CREATE TRIGGER ledger_account_touch BEFORE UPDATE ON ledger_account FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE ledger_transfer (
    id                uuid PRIMARY KEY,
    -- Commit-independent order of appends; statements and running balances follow it.
    seq               bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    debit_account_id  uuid NOT NULL REFERENCES ledger_account (id),
    credit_account_id uuid NOT NULL REFERENCES ledger_account (id),
    amount            bigint NOT NULL CHECK (amount >= 0),
    -- posted: single-phase. pending: a reservation. post_pending / void_pending: its resolution.
    kind              text NOT NULL CHECK (kind IN ('posted', 'pending', 'post_pending', 'void_pending')),
    -- Only for kind = pending: pending → posted | voided | expired, exactly once (trigger below).
    state             text CHECK (state IN ('pending', 'posted', 'voided', 'expired')),
    pending_id        uuid REFERENCES ledger_transfer (id),
    -- Transfers created together, which succeeded or failed together.
    linked_id         uuid,
    timeout_at        timestamptz,
    code              text NOT NULL CHECK (code ~ '^[a-z_]{1,40}$'),
    reseller_id       uuid REFERENCES reseller (id),
    sub_account_id    uuid,
    reference         text CHECK (length(reference) <= 200),
    note              text CHECK (length(note) <= 1000),
    created_by        text NOT NULL,
    request_id        text,
    -- Set by ledger_apply_transfers after it holds the accounts' locks (clock_timestamp()), so for
    -- any one account it follows the order in which its transfers were appended and committed.
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (debit_account_id <> credit_account_id),
    CHECK ((kind = 'pending') = (state IS NOT NULL)),
    CHECK ((kind IN ('post_pending', 'void_pending')) = (pending_id IS NOT NULL)),
    CHECK (kind = 'pending' OR timeout_at IS NULL)
);
-- Each reservation resolves at most once.
CREATE UNIQUE INDEX ledger_transfer_resolution ON ledger_transfer (pending_id) WHERE pending_id IS NOT NULL;
CREATE INDEX ledger_transfer_debit ON ledger_transfer (debit_account_id, seq);
CREATE INDEX ledger_transfer_credit ON ledger_transfer (credit_account_id, seq);
CREATE INDEX ledger_transfer_expiry ON ledger_transfer (timeout_at) WHERE state = 'pending' AND timeout_at IS NOT NULL;

-- Append-only, except a reservation's state, which moves once out of `pending`, and only inside
-- ledger_apply_transfers (which records the resolution in the same statement).
CREATE FUNCTION ledger_transfer_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('ledger.applying', true) = 'on'
       AND OLD.state = 'pending' AND NEW.state IN ('posted', 'voided', 'expired')
       AND to_jsonb(NEW) - 'state' = to_jsonb(OLD) - 'state' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'ledger_transfer is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER ledger_transfer_append_only BEFORE UPDATE OR DELETE ON ledger_transfer FOR EACH ROW EXECUTE FUNCTION ledger_transfer_guard();
CREATE TRIGGER ledger_transfer_no_truncate BEFORE TRUNCATE ON ledger_transfer FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

-- Balance events (low balance crossed, recovered), for the webhook sender.
CREATE TABLE ledger_event (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id     uuid NOT NULL REFERENCES ledger_account (id),
    reseller_id    uuid,
    sub_account_id uuid,
    kind           text NOT NULL CHECK (kind IN ('low_balance', 'balance_recovered')),
    available      bigint NOT NULL,
    threshold      bigint NOT NULL,
    transfer_id    uuid,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_event_tenant ON ledger_event (reseller_id, id);

-- Money-moving requests: the key, a hash of the request and the response, written in the
-- transaction that moved the money.
CREATE TABLE idempotency_record (
    scope        text NOT NULL,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    operation    text NOT NULL,
    request_hash bytea NOT NULL,
    status_code  integer NOT NULL,
    response     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_record_age ON idempotency_record (created_at);

-- The platform's own accounts, and every tenant's accounts as the tenant is created.
INSERT INTO ledger_account (kind, debits_must_not_exceed_credits)
VALUES ('platform_funding', false), ('upstream_cost', false);

CREATE FUNCTION ledger_open_reseller_accounts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_account (kind, reseller_id, debits_must_not_exceed_credits)
    VALUES ('reseller_wallet', NEW.id, true), ('reseller_revenue', NEW.id, false), ('reseller_issuance', NEW.id, false),
           ('platform_revenue', NEW.id, false);
    RETURN NULL;
END;
$$;
CREATE TRIGGER reseller_ledger_accounts AFTER INSERT ON reseller FOR EACH ROW EXECUTE FUNCTION ledger_open_reseller_accounts();

CREATE FUNCTION ledger_open_sub_account_wallet() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_account (kind, reseller_id, sub_account_id, debits_must_not_exceed_credits)
    VALUES ('sub_account_wallet', NEW.reseller_id, NEW.id, true);
    RETURN NULL;
END;
$$;
CREATE TRIGGER sub_account_ledger_wallet AFTER INSERT ON sub_account FOR EACH ROW EXECUTE FUNCTION ledger_open_sub_account_wallet();

INSERT INTO ledger_account (kind, reseller_id, debits_must_not_exceed_credits)
SELECT k.kind, r.id, k.kind = 'reseller_wallet'
FROM reseller r CROSS JOIN (VALUES ('reseller_wallet'), ('reseller_revenue'), ('reseller_issuance'), ('platform_revenue')) AS k (kind);
INSERT INTO ledger_account (kind, reseller_id, sub_account_id, debits_must_not_exceed_credits)
SELECT 'sub_account_wallet', reseller_id, id, true FROM sub_account;

-- Applies a list of transfers atomically: all succeed or none (the statement fails). With
-- `linked` (the default) they are recorded as one linked group; the expiry job passes false (and
-- `expire` on each void, which marks the reservation expired rather than voided).
--
-- Each element: {id, kind: posted|pending|post_pending|void_pending, debit_account_id,
-- credit_account_id, amount, pending_id, timeout_at, code, reseller_id, sub_account_id,
-- reference, note, created_by, request_id, ignore_credit_limit, expire}. For post/void, the accounts come from the
-- reservation and `amount` (post only) may be omitted to post the full amount.
-- Reservations, then accounts, are locked in id order, so concurrent calls cannot deadlock.
--
-- Failures raise SQLSTATE LE0xx with the element's index in DETAIL:
--   LE001 the debit account's available balance (plus its credit limit, unless
--         ignore_credit_limit) does not cover it
--   LE002 an account or reservation does not exist
--   LE003 the reservation is already resolved
--   LE004 posting more than was reserved
--   LE005 the reservation has expired
--   23505 on ledger_transfer_pkey: a transfer with this id exists
--   LE007 malformed element (zero amount, same account twice, unknown kind)
CREATE FUNCTION ledger_apply_transfers(transfers jsonb, linked boolean DEFAULT true) RETURNS SETOF ledger_transfer
LANGUAGE plpgsql AS $$
DECLARE
    t            record;
    p            ledger_transfer;
    acct         ledger_account;
    locked       bigint;
    watched      boolean;
    link_id      uuid := CASE WHEN linked AND jsonb_array_length(transfers) > 1 THEN gen_random_uuid() END;
    idx          integer := 0;
    debit_id     uuid;
    credit_id    uuid;
    amt          bigint;
    row_out      ledger_transfer;
    touched      uuid[] := '{}';
    touched_by   uuid[] := '{}';
    now_ts       timestamptz;
    pending_ids  uuid[];
    account_ids  uuid[];
BEGIN
    -- Lock the reservations being resolved, then every account involved, in id order. The ids go
    -- through arrays so that each lookup is an index probe whatever the tables' size.
    pending_ids := ARRAY(SELECT DISTINCT (e ->> 'pending_id')::uuid FROM jsonb_array_elements(transfers) e
                         WHERE e ->> 'pending_id' IS NOT NULL);
    IF cardinality(pending_ids) > 0 THEN
        PERFORM 1 FROM ledger_transfer WHERE id = ANY (pending_ids) ORDER BY id FOR UPDATE;
    END IF;
    account_ids := ARRAY(
        SELECT DISTINCT a FROM (
            SELECT (e ->> 'debit_account_id')::uuid FROM jsonb_array_elements(transfers) e
            UNION ALL SELECT (e ->> 'credit_account_id')::uuid FROM jsonb_array_elements(transfers) e
            UNION ALL SELECT x.debit_account_id FROM ledger_transfer x WHERE x.id = ANY (pending_ids)
            UNION ALL SELECT x.credit_account_id FROM ledger_transfer x WHERE x.id = ANY (pending_ids)
        ) AS ids (a)
        WHERE a IS NOT NULL);
    PERFORM 1 FROM ledger_account WHERE id = ANY (account_ids) ORDER BY id FOR UPDATE;
    GET DIAGNOSTICS locked = ROW_COUNT;
    now_ts := clock_timestamp();
    PERFORM set_config('ledger.applying', 'on', true);
    IF locked <> cardinality(account_ids) THEN
        RAISE EXCEPTION 'no account %', (SELECT a FROM unnest(account_ids) a WHERE NOT EXISTS (SELECT 1 FROM ledger_account WHERE id = a) LIMIT 1)
            USING ERRCODE = 'LE002', DETAIL = '0';
    END IF;

    FOR t IN SELECT * FROM jsonb_to_recordset(transfers) AS x (
        id uuid, kind text, debit_account_id uuid, credit_account_id uuid, amount bigint, pending_id uuid,
        timeout_at timestamptz, code text, reseller_id uuid, sub_account_id uuid, reference text, note text,
        created_by text, request_id text, ignore_credit_limit boolean, expire boolean)
    LOOP
        IF t.kind IN ('posted', 'pending') THEN
            IF t.amount IS NULL OR t.amount <= 0 OR t.debit_account_id = t.credit_account_id THEN
                RAISE EXCEPTION 'malformed transfer' USING ERRCODE = 'LE007', DETAIL = idx::text;
            END IF;
            debit_id := t.debit_account_id;
            credit_id := t.credit_account_id;
            amt := t.amount;
            -- Every account exists (checked when locked); the debit's funds are checked in its UPDATE.
            UPDATE ledger_account SET
                debits_posted = debits_posted + CASE WHEN t.kind = 'posted' THEN amt ELSE 0 END,
                debits_pending = debits_pending + CASE WHEN t.kind = 'pending' THEN amt ELSE 0 END
            WHERE ledger_account.id = debit_id
              AND (NOT debits_must_not_exceed_credits
                   OR credits_posted - debits_posted - debits_pending
                      + CASE WHEN COALESCE(t.ignore_credit_limit, false) THEN 0 ELSE COALESCE(credit_limit, 0) END >= amt)
            RETURNING low_balance_threshold IS NOT NULL INTO watched;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'exceeds credits of account %', debit_id USING ERRCODE = 'LE001', DETAIL = idx::text;
            END IF;
            UPDATE ledger_account SET
                credits_posted = credits_posted + CASE WHEN t.kind = 'posted' THEN amt ELSE 0 END,
                credits_pending = credits_pending + CASE WHEN t.kind = 'pending' THEN amt ELSE 0 END
            WHERE ledger_account.id = credit_id
            RETURNING watched OR low_balance_threshold IS NOT NULL INTO watched;
            INSERT INTO ledger_transfer (id, debit_account_id, credit_account_id, amount, kind, state, linked_id, timeout_at,
                                         code, reseller_id, sub_account_id, reference, note, created_by, request_id, created_at)
            VALUES (t.id, debit_id, credit_id, amt, t.kind, CASE WHEN t.kind = 'pending' THEN 'pending' END, link_id,
                    CASE WHEN t.kind = 'pending' THEN t.timeout_at END, t.code, t.reseller_id, t.sub_account_id,
                    t.reference, t.note, t.created_by, t.request_id, now_ts)
            RETURNING * INTO row_out;
        ELSIF t.kind IN ('post_pending', 'void_pending') THEN
            SELECT * INTO p FROM ledger_transfer WHERE ledger_transfer.id = t.pending_id AND ledger_transfer.kind = 'pending';
            IF NOT FOUND THEN
                RAISE EXCEPTION 'no reservation %', t.pending_id USING ERRCODE = 'LE002', DETAIL = idx::text;
            END IF;
            IF p.state <> 'pending' THEN
                RAISE EXCEPTION 'reservation % is already %', p.id, p.state USING ERRCODE = 'LE003', DETAIL = idx::text;
            END IF;
            IF t.kind = 'post_pending' AND p.timeout_at IS NOT NULL AND p.timeout_at <= now() THEN
                RAISE EXCEPTION 'reservation % has expired', p.id USING ERRCODE = 'LE005', DETAIL = idx::text;
            END IF;
            debit_id := p.debit_account_id;
            credit_id := p.credit_account_id;
            IF t.kind = 'post_pending' THEN
                amt := COALESCE(t.amount, p.amount);
                IF amt < 0 THEN
                    RAISE EXCEPTION 'malformed transfer' USING ERRCODE = 'LE007', DETAIL = idx::text;
                END IF;
                IF amt > p.amount THEN
                    RAISE EXCEPTION 'posting % of a reservation of %', amt, p.amount USING ERRCODE = 'LE004', DETAIL = idx::text;
                END IF;
                UPDATE ledger_account SET debits_pending = debits_pending - p.amount, debits_posted = debits_posted + amt WHERE ledger_account.id = debit_id
                RETURNING low_balance_threshold IS NOT NULL INTO watched;
                UPDATE ledger_account SET credits_pending = credits_pending - p.amount, credits_posted = credits_posted + amt WHERE ledger_account.id = credit_id
                RETURNING watched OR low_balance_threshold IS NOT NULL INTO watched;
                UPDATE ledger_transfer SET state = 'posted' WHERE ledger_transfer.id = p.id;
            ELSE
                amt := p.amount;
                UPDATE ledger_account SET debits_pending = debits_pending - p.amount WHERE ledger_account.id = debit_id
                RETURNING low_balance_threshold IS NOT NULL INTO watched;
                UPDATE ledger_account SET credits_pending = credits_pending - p.amount WHERE ledger_account.id = credit_id
                RETURNING watched OR low_balance_threshold IS NOT NULL INTO watched;
                UPDATE ledger_transfer SET state = CASE WHEN t.expire THEN 'expired' ELSE 'voided' END WHERE ledger_transfer.id = p.id;
            END IF;
            INSERT INTO ledger_transfer (id, debit_account_id, credit_account_id, amount, kind, pending_id, linked_id, code,
                                         reseller_id, sub_account_id, reference, note, created_by, request_id, created_at)
            VALUES (t.id, debit_id, credit_id, amt, t.kind, p.id, link_id, t.code, COALESCE(t.reseller_id, p.reseller_id),
                    COALESCE(t.sub_account_id, p.sub_account_id), t.reference, t.note, t.created_by, t.request_id, now_ts)
            RETURNING * INTO row_out;
        ELSE
            RAISE EXCEPTION 'unknown transfer kind %', t.kind USING ERRCODE = 'LE007', DETAIL = idx::text;
        END IF;
        IF watched THEN
            touched := touched || debit_id || credit_id;
            touched_by := touched_by || row_out.id || row_out.id;
        END IF;
        RETURN NEXT row_out;
        idx := idx + 1;
    END LOOP;

    PERFORM set_config('ledger.applying', 'off', true);
    -- Low-balance crossings, once per account and call (only accounts with a threshold were kept),
    -- each with the last transfer that touched the account.
    IF cardinality(touched) = 0 THEN
        RETURN;
    END IF;
    FOR acct IN SELECT * FROM ledger_account
                WHERE ledger_account.id = ANY (touched) AND low_balance_threshold IS NOT NULL
                  AND below_threshold <> (credits_posted - debits_posted - debits_pending < low_balance_threshold)
    LOOP
        UPDATE ledger_account SET below_threshold = NOT below_threshold WHERE ledger_account.id = acct.id;
        INSERT INTO ledger_event (account_id, reseller_id, sub_account_id, kind, available, threshold, transfer_id)
        VALUES (acct.id, acct.reseller_id, acct.sub_account_id,
                CASE WHEN acct.below_threshold THEN 'balance_recovered' ELSE 'low_balance' END,
                acct.credits_posted - acct.debits_posted - acct.debits_pending, acct.low_balance_threshold,
                (SELECT touched_by[i] FROM generate_subscripts(touched, 1) AS i WHERE touched[i] = acct.id ORDER BY i DESC LIMIT 1));
    END LOOP;
END;
$$;
