-- GENERATED FILE, do not edit: `bash scripts/schema.sh` writes it, `bash scripts/schema.sh --check` (part of
-- scripts/test.sh) fails while it is out of date.
-- The schema after every migration in this folder, as pg_dump --schema-only --no-owner --no-privileges prints it
-- (less session settings and version lines). It is NOT applied: the numbered migrations are the applied history;
-- change the schema with a new migration, then run the command above.

--
-- PostgreSQL database dump
--

--
-- Name: archive; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA archive;

--
-- Name: partman; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA partman;

--
-- Name: pg_partman; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS pg_partman WITH SCHEMA partman;

--
-- Name: EXTENSION pg_partman; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON EXTENSION pg_partman IS 'Extension to manage partitioned tables by time or ID';

--
-- Name: audit_log_refuse_change(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.audit_log_refuse_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;

--
-- Name: effective_account_status(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.effective_account_status(reseller_status text, sub_account_status text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT CASE
        WHEN sub_account_status = 'closed' THEN 'closed'
        WHEN reseller_status = 'blocked_payment' THEN 'blocked_payment'
        WHEN reseller_status IN ('blocked', 'closed') THEN 'blocked'
        ELSE sub_account_status
    END
$$;

--
-- Name: effective_retail_price_list(uuid, uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.effective_retail_price_list(p_reseller uuid, p_sub_account uuid) RETURNS uuid
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN coalesce(
        (SELECT price_list_id FROM sub_account_retail_price_list WHERE reseller_id = p_reseller AND sub_account_id = p_sub_account),
        (SELECT price_list_id FROM reseller_default_retail_price_list WHERE reseller_id = p_reseller));
END;
$$;

--
-- Name: effective_upstream_connection(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.effective_upstream_connection(p_reseller uuid) RETURNS uuid
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN coalesce(
        (SELECT connection_id FROM reseller_upstream_connection WHERE reseller_id = p_reseller),
        (SELECT connection_id FROM upstream_connection_default));
END;
$$;

--
-- Name: effective_upstream_cost_price_list(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.effective_upstream_cost_price_list() RETURNS uuid
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN (SELECT price_list_id FROM platform_price_default WHERE layer = 'upstream_cost');
END;
$$;

--
-- Name: effective_wholesale_price_list(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.effective_wholesale_price_list(p_reseller uuid) RETURNS uuid
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN coalesce(
        (SELECT price_list_id FROM reseller_wholesale_price_list WHERE reseller_id = p_reseller),
        (SELECT price_list_id FROM platform_price_default WHERE layer = 'wholesale'));
END;
$$;

--
-- Name: invoice_guard(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.invoice_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF OLD.status <> 'draft' THEN
        RAISE EXCEPTION 'invoice % is %: it never changes (issue a credit note to correct it)', OLD.id, OLD.status
            USING ERRCODE = 'IV001';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$;

--
-- Name: invoice_no_truncate(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.invoice_no_truncate() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'invoices are never truncated' USING ERRCODE = 'IV001';
END;
$$;

--
-- Name: invoice_part_guard(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.invoice_part_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    parent_status text;
BEGIN
    SELECT status INTO parent_status FROM invoice
    WHERE id = CASE WHEN TG_OP = 'INSERT' THEN NEW.invoice_id ELSE OLD.invoice_id END;
    IF parent_status IS DISTINCT FROM 'draft' THEN
        RAISE EXCEPTION 'invoice % is %: its % rows never change',
            CASE WHEN TG_OP = 'INSERT' THEN NEW.invoice_id ELSE OLD.invoice_id END, parent_status, TG_TABLE_NAME
            USING ERRCODE = 'IV001';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.invoice_id <> OLD.invoice_id THEN
        RAISE EXCEPTION 'a % row cannot move to another invoice', TG_TABLE_NAME USING ERRCODE = 'IV001';
    END IF;
    RETURN NEW;
END;
$$;

--
-- Name: ledger_transfer; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ledger_transfer (
    id uuid NOT NULL,
    seq bigint NOT NULL,
    debit_account_id uuid NOT NULL,
    credit_account_id uuid NOT NULL,
    amount bigint NOT NULL,
    kind text NOT NULL,
    state text,
    pending_id uuid,
    linked_id uuid,
    timeout_at timestamp with time zone,
    code text NOT NULL,
    reseller_id uuid,
    sub_account_id uuid,
    reference text,
    note text,
    created_by text NOT NULL,
    request_id text,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    CONSTRAINT ledger_transfer_amount_check CHECK ((amount >= 0)),
    CONSTRAINT ledger_transfer_check CHECK ((debit_account_id <> credit_account_id)),
    CONSTRAINT ledger_transfer_check1 CHECK (((kind = 'pending'::text) = (state IS NOT NULL))),
    CONSTRAINT ledger_transfer_check2 CHECK (((kind = ANY (ARRAY['post_pending'::text, 'void_pending'::text])) = (pending_id IS NOT NULL))),
    CONSTRAINT ledger_transfer_check3 CHECK (((kind = 'pending'::text) OR (timeout_at IS NULL))),
    CONSTRAINT ledger_transfer_code_check CHECK ((code ~ '^[a-z_]{1,40}$'::text)),
    CONSTRAINT ledger_transfer_kind_check CHECK ((kind = ANY (ARRAY['posted'::text, 'pending'::text, 'post_pending'::text, 'void_pending'::text]))),
    CONSTRAINT ledger_transfer_note_check CHECK ((length(note) <= 1000)),
    CONSTRAINT ledger_transfer_reference_check CHECK ((length(reference) <= 200)),
    CONSTRAINT ledger_transfer_state_check CHECK ((state = ANY (ARRAY['pending'::text, 'posted'::text, 'voided'::text, 'expired'::text])))
);

--
-- Name: ledger_apply_transfers(jsonb, boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_apply_transfers(transfers jsonb, linked boolean DEFAULT true) RETURNS SETOF public.ledger_transfer
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: ledger_open_reseller_accounts(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_open_reseller_accounts() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO ledger_account (kind, reseller_id, debits_must_not_exceed_credits)
    VALUES ('reseller_wallet', NEW.id, true), ('reseller_revenue', NEW.id, false), ('reseller_issuance', NEW.id, false),
           ('platform_revenue', NEW.id, false);
    RETURN NULL;
END;
$$;

--
-- Name: ledger_open_sub_account_wallet(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_open_sub_account_wallet() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO ledger_account (kind, reseller_id, sub_account_id, debits_must_not_exceed_credits)
    VALUES ('sub_account_wallet', NEW.reseller_id, NEW.id, true);
    RETURN NULL;
END;
$$;

--
-- Name: ledger_open_upstream_accounts(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_open_upstream_accounts() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO ledger_account (kind, upstream_connection_id, debits_must_not_exceed_credits)
    VALUES ('upstream_balance', NEW.id, false), ('upstream_cost', NEW.id, false);
    RETURN NULL;
END;
$$;

--
-- Name: ledger_post(uuid[], uuid[], uuid[], bigint[], text[], uuid[], uuid[], text[], text[], timestamp with time zone[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_post(ids uuid[], debit_ids uuid[], credit_ids uuid[], amounts bigint[], codes text[], reseller_ids uuid[], sub_account_ids uuid[], refs text[], created_bys text[], created_ats timestamp with time zone[]) RETURNS void
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: ledger_reserve(uuid[], uuid[], uuid[], bigint[], uuid[], text[], uuid[], uuid[], text[], text[], text[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_reserve(ids uuid[], debit_ids uuid[], credit_ids uuid[], amounts bigint[], linked_ids uuid[], codes text[], reseller_ids uuid[], sub_account_ids uuid[], refs text[], created_bys text[], request_ids text[]) RETURNS void
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: ledger_resolve(uuid[], uuid[], boolean[], text[], text[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_resolve(pending_ids uuid[], ids uuid[], posts boolean[], codes text[], created_bys text[]) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    n           integer := cardinality(pending_ids);
    bad         record;
    account_ids uuid[];
    acct        ledger_account;
    now_ts      timestamptz;
BEGIN
    IF n = 0 THEN
        RETURN;
    END IF;
    IF cardinality(ids) <> n OR cardinality(posts) <> n OR cardinality(codes) <> n OR cardinality(created_bys) <> n
       OR array_position(pending_ids, NULL) IS NOT NULL OR array_position(ids, NULL) IS NOT NULL
       OR array_position(posts, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'malformed resolution' USING ERRCODE = 'LE007';
    END IF;
    PERFORM 1 FROM ledger_transfer WHERE id = ANY (pending_ids) ORDER BY id FOR UPDATE;

    SELECT u.i, u.p, x.id AS found, x.kind, x.state, x.timeout_at, u.post,
           count(*) OVER (PARTITION BY u.p ORDER BY u.i) AS seen
    INTO bad
    FROM unnest(pending_ids, posts) WITH ORDINALITY AS u (p, post, i)
    LEFT JOIN ledger_transfer x ON x.id = u.p
    ORDER BY (x.id IS NULL OR x.kind <> 'pending' OR x.state <> 'pending'
              OR (u.post AND x.timeout_at IS NOT NULL AND x.timeout_at <= now())
              OR count(*) OVER (PARTITION BY u.p ORDER BY u.i) > 1) DESC, u.i
    LIMIT 1;
    IF bad.found IS NULL OR bad.kind <> 'pending' THEN
        RAISE EXCEPTION 'no reservation %', bad.p USING ERRCODE = 'LE002', DETAIL = (bad.i - 1)::text;
    ELSIF bad.state <> 'pending' OR bad.seen > 1 THEN
        RAISE EXCEPTION 'reservation % is already %', bad.p, CASE WHEN bad.seen > 1 THEN 'resolved in this call' ELSE bad.state END
            USING ERRCODE = 'LE003', DETAIL = (bad.i - 1)::text;
    ELSIF bad.post AND bad.timeout_at IS NOT NULL AND bad.timeout_at <= now() THEN
        RAISE EXCEPTION 'reservation % has expired', bad.p USING ERRCODE = 'LE005', DETAIL = (bad.i - 1)::text;
    END IF;

    account_ids := ARRAY(
        SELECT DISTINCT a FROM ledger_transfer x
        CROSS JOIN LATERAL (VALUES (x.debit_account_id), (x.credit_account_id)) AS v (a)
        WHERE x.id = ANY (pending_ids) ORDER BY a);
    PERFORM 1 FROM ledger_account WHERE id = ANY (account_ids) ORDER BY id FOR UPDATE;
    now_ts := clock_timestamp();

    -- Posting moves a reservation's amount from pending to posted on both sides; voiding drops it.
    WITH r AS (
        SELECT x.debit_account_id AS d, x.credit_account_id AS c, x.amount AS a, u.post
        FROM unnest(pending_ids, posts) AS u (p, post) JOIN ledger_transfer x ON x.id = u.p
    ), sums AS (
        SELECT account, sum(dp)::bigint AS dp, sum(dd)::bigint AS dd, sum(cp)::bigint AS cp, sum(cc)::bigint AS cc
        FROM (SELECT d, a, CASE WHEN post THEN a ELSE 0 END, 0, 0 FROM r
              UNION ALL SELECT c, 0, 0, a, CASE WHEN post THEN a ELSE 0 END FROM r) AS m (account, dp, dd, cp, cc)
        GROUP BY account
    )
    UPDATE ledger_account l
    SET debits_pending = l.debits_pending - s.dp, debits_posted = l.debits_posted + s.dd,
        credits_pending = l.credits_pending - s.cp, credits_posted = l.credits_posted + s.cc
    FROM sums s WHERE l.id = s.account;

    PERFORM set_config('ledger.applying', 'on', true);
    UPDATE ledger_transfer x SET state = CASE WHEN u.post THEN 'posted' ELSE 'voided' END
    FROM unnest(pending_ids, posts) AS u (p, post) WHERE x.id = u.p;
    PERFORM set_config('ledger.applying', 'off', true);

    INSERT INTO ledger_transfer (id, debit_account_id, credit_account_id, amount, kind, pending_id, code,
                                 reseller_id, sub_account_id, created_by, created_at)
    SELECT u.id, x.debit_account_id, x.credit_account_id, x.amount,
           CASE WHEN u.post THEN 'post_pending' ELSE 'void_pending' END, x.id, u.code, x.reseller_id,
           x.sub_account_id, u.by, now_ts
    FROM unnest(pending_ids, ids, posts, codes, created_bys) WITH ORDINALITY AS u (p, id, post, code, by, i)
    JOIN ledger_transfer x ON x.id = u.p
    ORDER BY u.i;

    FOR acct IN SELECT * FROM ledger_account
                WHERE id = ANY (account_ids) AND low_balance_threshold IS NOT NULL
                  AND below_threshold <> (credits_posted - debits_posted - debits_pending < low_balance_threshold)
    LOOP
        UPDATE ledger_account SET below_threshold = NOT below_threshold WHERE id = acct.id;
        INSERT INTO ledger_event (account_id, reseller_id, sub_account_id, kind, available, threshold, transfer_id)
        VALUES (acct.id, acct.reseller_id, acct.sub_account_id,
                CASE WHEN acct.below_threshold THEN 'balance_recovered' ELSE 'low_balance' END,
                acct.credits_posted - acct.debits_posted - acct.debits_pending, acct.low_balance_threshold,
                (SELECT u.id FROM unnest(pending_ids, ids) WITH ORDINALITY AS u (p, id, i)
                 JOIN ledger_transfer x ON x.id = u.p
                 WHERE acct.id IN (x.debit_account_id, x.credit_account_id)
                 ORDER BY u.i DESC LIMIT 1));
    END LOOP;
END;
$$;

--
-- Name: ledger_transfer_guard(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_transfer_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('ledger.applying', true) = 'on'
       AND OLD.state = 'pending' AND NEW.state IN ('posted', 'voided', 'expired')
       AND to_jsonb(NEW) - 'state' = to_jsonb(OLD) - 'state' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'ledger_transfer is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;

--
-- Name: message_outbox_follow_default_connection(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.message_outbox_follow_default_connection() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: message_outbox_follow_reseller_connection(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.message_outbox_follow_reseller_connection() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    r uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.reseller_id ELSE NEW.reseller_id END;
BEGIN
    PERFORM 1 FROM reseller WHERE id = r FOR UPDATE;
    UPDATE message_outbox SET connection_id = effective_upstream_connection(r)
    WHERE reseller_id = r AND connection_id IS DISTINCT FROM effective_upstream_connection(r);
    RETURN NULL;
END;
$$;

--
-- Name: platform_price_entry_same_transaction(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.platform_price_entry_same_transaction() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted i JOIN platform_price_version v ON v.id = i.version_id
               WHERE v.xmin <> pg_current_xact_id()::xid) THEN
        RAISE EXCEPTION 'entries of a committed price version cannot be added' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$;

--
-- Name: platform_price_entry; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.platform_price_entry (
    version_id uuid NOT NULL,
    prefix text NOT NULL,
    price bigint,
    status text NOT NULL,
    CONSTRAINT platform_price_entry_check CHECK (((status <> 'sellable'::text) OR (price IS NOT NULL))),
    CONSTRAINT platform_price_entry_prefix_check CHECK ((prefix ~ '^[1-9][0-9]{0,14}$'::text)),
    CONSTRAINT platform_price_entry_price_check CHECK ((price >= 0)),
    CONSTRAINT platform_price_entry_status_check CHECK ((status = ANY (ARRAY['sellable'::text, 'not_sellable'::text, 'forbidden'::text])))
);

--
-- Name: platform_price_match(uuid, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.platform_price_match(p_version uuid, p_digits text) RETURNS SETOF public.platform_price_entry
    LANGUAGE sql STABLE
    AS $$
    SELECT * FROM platform_price_entry
    WHERE version_id = p_version AND prefix = ANY (price_prefixes(p_digits))
    ORDER BY length(prefix) DESC LIMIT 1
$$;

--
-- Name: platform_price_version_at(uuid, timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.platform_price_version_at(p_list uuid, p_instant timestamp with time zone) RETURNS uuid
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN (SELECT id FROM platform_price_version
            WHERE price_list_id = p_list AND effective_from <= p_instant
            ORDER BY effective_from DESC LIMIT 1);
END;
$$;

--
-- Name: platform_price_version_count_check(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.platform_price_version_count_check() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF (SELECT count(*) FROM platform_price_entry WHERE version_id = NEW.id) <> NEW.entry_count THEN
        RAISE EXCEPTION 'price version % does not have its % entries', NEW.id, NEW.entry_count USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;

--
-- Name: price_history_refuse_change(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.price_history_refuse_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: prices change by a new version', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$;

--
-- Name: price_prefixes(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.price_prefixes(p_digits text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT array_agg(left(p_digits, n)) FROM generate_series(1, length(p_digits)) AS n
$$;

--
-- Name: retail_price_entry_same_transaction(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.retail_price_entry_same_transaction() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted i JOIN retail_price_version v ON v.reseller_id = i.reseller_id AND v.id = i.version_id
               WHERE v.xmin <> pg_current_xact_id()::xid) THEN
        RAISE EXCEPTION 'entries of a committed price version cannot be added' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$;

--
-- Name: retail_price_entry; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.retail_price_entry (
    reseller_id uuid NOT NULL,
    version_id uuid NOT NULL,
    prefix text NOT NULL,
    price bigint,
    status text NOT NULL,
    CONSTRAINT retail_price_entry_check CHECK (((status <> 'sellable'::text) OR (price IS NOT NULL))),
    CONSTRAINT retail_price_entry_prefix_check CHECK ((prefix ~ '^[1-9][0-9]{0,14}$'::text)),
    CONSTRAINT retail_price_entry_price_check CHECK ((price >= 0)),
    CONSTRAINT retail_price_entry_status_check CHECK ((status = ANY (ARRAY['sellable'::text, 'not_sellable'::text, 'forbidden'::text])))
);

--
-- Name: retail_price_match(uuid, uuid, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.retail_price_match(p_reseller uuid, p_version uuid, p_digits text) RETURNS SETOF public.retail_price_entry
    LANGUAGE sql STABLE
    AS $$
    SELECT * FROM retail_price_entry
    WHERE reseller_id = p_reseller AND version_id = p_version AND prefix = ANY (price_prefixes(p_digits))
    ORDER BY length(prefix) DESC LIMIT 1
$$;

--
-- Name: retail_price_version_at(uuid, uuid, timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.retail_price_version_at(p_reseller uuid, p_list uuid, p_instant timestamp with time zone) RETURNS uuid
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN (SELECT id FROM retail_price_version
            WHERE reseller_id = p_reseller AND price_list_id = p_list AND effective_from <= p_instant
            ORDER BY effective_from DESC LIMIT 1);
END;
$$;

--
-- Name: retail_price_version_count_check(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.retail_price_version_count_check() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF (SELECT count(*) FROM retail_price_entry WHERE reseller_id = NEW.reseller_id AND version_id = NEW.id) <> NEW.entry_count THEN
        RAISE EXCEPTION 'price version % does not have its % entries', NEW.id, NEW.entry_count USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;

--
-- Name: touch_updated_at(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

--
-- Name: usage_seal(integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.usage_seal(max_hours integer DEFAULT 24) RETURNS timestamp with time zone
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: webhook_account_status_changed(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.webhook_account_status_changed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: webhook_emit(text, uuid, uuid, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.webhook_emit(p_type text, p_reseller uuid, p_sub_account uuid, p_payload jsonb) RETURNS uuid
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: message; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.message (
    reseller_id uuid NOT NULL,
    id uuid NOT NULL,
    sub_account_id uuid NOT NULL,
    batch_id uuid NOT NULL,
    "position" integer NOT NULL,
    recipient text NOT NULL,
    country text NOT NULL,
    retail_price bigint NOT NULL,
    wholesale_price bigint NOT NULL,
    upstream_cost bigint NOT NULL,
    retail_version_id uuid NOT NULL,
    wholesale_version_id uuid NOT NULL,
    upstream_cost_version_id uuid NOT NULL,
    retail_reservation_id uuid,
    wholesale_reservation_id uuid,
    status text NOT NULL,
    status_code integer,
    status_detail text,
    schedule_at timestamp with time zone,
    upstream_connection_id uuid,
    upstream_id text,
    accepted_at timestamp with time zone NOT NULL,
    status_at timestamp with time zone NOT NULL,
    submitted_at timestamp with time zone,
    settled_at timestamp with time zone,
    reported_at timestamp with time zone,
    next_poll_at timestamp with time zone,
    poll_attempts integer DEFAULT 0 NOT NULL,
    gateway_id bigint NOT NULL,
    upstream_cost_transfer_id uuid,
    CONSTRAINT message_check CHECK (((status <> ALL (ARRAY['submitted'::text, 'delivered'::text, 'not_delivered'::text, 'rejected'::text])) OR (upstream_id IS NOT NULL))),
    CONSTRAINT message_country_check CHECK ((country ~ '^[0-9]{1,7}$'::text)),
    CONSTRAINT message_poll_attempts_check CHECK ((poll_attempts >= 0)),
    CONSTRAINT message_position_check CHECK (("position" >= 0)),
    CONSTRAINT message_recipient_check CHECK ((recipient ~ '^[1-9][0-9]{6,14}$'::text)),
    CONSTRAINT message_retail_price_check CHECK ((retail_price >= 0)),
    CONSTRAINT message_status_check CHECK ((status = ANY (ARRAY['scheduled'::text, 'queued'::text, 'submitted'::text, 'delivered'::text, 'not_delivered'::text, 'rejected'::text, 'expired'::text, 'failed'::text, 'cancelled'::text]))),
    CONSTRAINT message_status_code_check CHECK (((status_code >= 100) AND (status_code <= 199))),
    CONSTRAINT message_status_detail_check CHECK ((length(status_detail) <= 500)),
    CONSTRAINT message_upstream_cost_check CHECK ((upstream_cost >= 0)),
    CONSTRAINT message_upstream_id_check CHECK ((length(upstream_id) <= 100)),
    CONSTRAINT message_wholesale_price_check CHECK ((wholesale_price >= 0))
);

--
-- Name: webhook_emit_message(public.message, text, text, timestamp with time zone, boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.webhook_emit_message(p_message public.message, p_previous_status text, p_gateway_status text, p_at timestamp with time zone, p_signed boolean) RETURNS uuid
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: webhook_emit_platform(text, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.webhook_emit_platform(p_type text, p_payload jsonb) RETURNS uuid
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

--
-- Name: webhook_gateway_status(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.webhook_gateway_status(p_status text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT CASE p_status
        WHEN 'submitted' THEN 'SUBMITTED'
        WHEN 'delivered' THEN 'DELIVERED'
        WHEN 'not_delivered' THEN 'NOT DELIVERED'
        WHEN 'expired' THEN 'NOT DELIVERED'
        WHEN 'rejected' THEN 'REJECTED'
        WHEN 'failed' THEN 'REJECTED'
    END
$$;

--
-- Name: webhook_ledger_event(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.webhook_ledger_event() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: webhook_message_buffered(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.webhook_message_buffered() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_message message;
BEGIN
    SELECT * INTO v_message FROM message m WHERE m.reseller_id = NEW.reseller_id AND m.id = NEW.message_id;
    IF v_message.status NOT IN ('queued', 'submitted')
       OR EXISTS (SELECT 1 FROM message_event e
                  WHERE e.message_id = NEW.message_id AND e.status = NEW.status AND e.seq < NEW.seq
                    AND e.occurred_at >= v_message.accepted_at - interval '1 day') THEN
        RETURN NULL;
    END IF;
    PERFORM webhook_emit_message(v_message, v_message.status, 'BUFFERED', NEW.occurred_at, false);
    RETURN NULL;
END
$$;

--
-- Name: webhook_message_status_changed(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.webhook_message_status_changed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM webhook_emit_message(NEW, OLD.status, webhook_gateway_status(NEW.status), NEW.status_at, true);
    RETURN NULL;
END
$$;

--
-- Name: webhook_money(bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.webhook_money(units bigint) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT (units::numeric / 10000)::numeric(24, 4)::text $$;

--
-- Name: webhook_sender_name_decided(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.webhook_sender_name_decided() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.status IN ('approved', 'rejected') AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM NEW.status) THEN
        PERFORM webhook_emit('sender_name.' || NEW.status, NEW.reseller_id, NEW.sub_account_id, jsonb_build_object(
            'senderNameId', NEW.id, 'subAccountId', NEW.sub_account_id, 'name', NEW.name, 'status', NEW.status,
            'reason', NEW.reason));
    END IF;
    RETURN NULL;
END
$$;

--
-- Name: webhook_wanted(text, uuid, uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.webhook_wanted(p_type text, p_reseller uuid, p_sub_account uuid) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT EXISTS (
        SELECT 1 FROM webhook_endpoint e
        WHERE e.reseller_id = p_reseller AND e.status = 'active' AND e.format = 'signed'
          AND (e.sub_account_id IS NULL OR e.sub_account_id = p_sub_account)
          AND (p_type = ANY (e.event_types) OR p_type = 'webhook.endpoint_disabled'))
$$;

--
-- Name: template_public_message_event; Type: TABLE; Schema: partman; Owner: -
--

CREATE TABLE partman.template_public_message_event (
    reseller_id uuid NOT NULL,
    message_id uuid NOT NULL,
    seq bigint NOT NULL,
    status text NOT NULL,
    code integer,
    detail text,
    occurred_at timestamp with time zone NOT NULL
);

--
-- Name: template_public_webhook_attempt; Type: TABLE; Schema: partman; Owner: -
--

CREATE TABLE partman.template_public_webhook_attempt (
    id bigint NOT NULL,
    delivery_id uuid NOT NULL,
    attempt integer NOT NULL,
    attempted_at timestamp with time zone NOT NULL,
    status_code integer,
    latency_ms integer NOT NULL,
    error text
);

--
-- Name: account_code; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.account_code (
    reseller_id uuid,
    account_kind text NOT NULL,
    code text NOT NULL,
    name text,
    updated_by text NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT account_code_account_kind_check CHECK ((account_kind = ANY (ARRAY['platform_funding'::text, 'platform_revenue'::text, 'upstream_balance'::text, 'upstream_cost'::text, 'reseller_wallet'::text, 'reseller_revenue'::text, 'reseller_issuance'::text, 'sub_account_wallet'::text]))),
    CONSTRAINT account_code_code_check CHECK ((((length(code) >= 1) AND (length(code) <= 40)) AND (code !~ '[[:cntrl:]]'::text))),
    CONSTRAINT account_code_name_check CHECK ((((length(name) >= 1) AND (length(name) <= 200)) AND (name !~ '[[:cntrl:]]'::text)))
);

--
-- Name: api_key; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.api_key (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    owner_kind text NOT NULL,
    reseller_id uuid,
    sub_account_id uuid,
    name text NOT NULL,
    prefix text NOT NULL,
    secret_sha256 bytea NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_used_at timestamp with time zone,
    revoked_at timestamp with time zone,
    CONSTRAINT api_key_check CHECK ((((owner_kind = 'admin'::text) AND (reseller_id IS NULL) AND (sub_account_id IS NULL)) OR ((owner_kind = 'reseller'::text) AND (reseller_id IS NOT NULL) AND (sub_account_id IS NULL)) OR ((owner_kind = 'sub_account'::text) AND (reseller_id IS NOT NULL) AND (sub_account_id IS NOT NULL)))),
    CONSTRAINT api_key_name_check CHECK (((length(name) >= 1) AND (length(name) <= 100))),
    CONSTRAINT api_key_owner_kind_check CHECK ((owner_kind = ANY (ARRAY['admin'::text, 'reseller'::text, 'sub_account'::text])))
);

--
-- Name: audit_log; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit_log (
    id bigint NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    actor text NOT NULL,
    actor_role text NOT NULL,
    reseller_id uuid,
    action text NOT NULL,
    target_type text NOT NULL,
    target_id text NOT NULL,
    before jsonb,
    after jsonb,
    request_id text,
    CONSTRAINT audit_log_actor_role_check CHECK ((actor_role = ANY (ARRAY['admin'::text, 'reseller'::text, 'sub_account'::text, 'system'::text])))
);

--
-- Name: audit_log_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.audit_log ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.audit_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: billing_profile; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.billing_profile (
    reseller_id uuid NOT NULL,
    sub_account_id uuid,
    legal_name text NOT NULL,
    address text[] NOT NULL,
    country_code text NOT NULL,
    vat_number text,
    company_number text,
    vat_regime text NOT NULL,
    vat_rate_bp integer NOT NULL,
    billing_mode text NOT NULL,
    credit_price bigint NOT NULL,
    updated_by text NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT billing_profile_address_check CHECK (((cardinality(address) >= 1) AND (cardinality(address) <= 6))),
    CONSTRAINT billing_profile_billing_mode_check CHECK ((billing_mode = ANY (ARRAY['prepaid'::text, 'postpaid'::text]))),
    CONSTRAINT billing_profile_check CHECK (((vat_regime = 'standard'::text) OR (vat_rate_bp = 0))),
    CONSTRAINT billing_profile_check1 CHECK (((vat_regime <> 'reverse_charge'::text) OR (vat_number IS NOT NULL))),
    CONSTRAINT billing_profile_company_number_check CHECK (((length(company_number) >= 1) AND (length(company_number) <= 40))),
    CONSTRAINT billing_profile_country_code_check CHECK ((country_code ~ '^[A-Z]{2}$'::text)),
    CONSTRAINT billing_profile_credit_price_check CHECK (((credit_price >= 0) AND (credit_price <= '100000000000000'::bigint))),
    CONSTRAINT billing_profile_legal_name_check CHECK (((length(legal_name) >= 1) AND (length(legal_name) <= 200))),
    CONSTRAINT billing_profile_vat_number_check CHECK (((length(vat_number) >= 1) AND (length(vat_number) <= 40))),
    CONSTRAINT billing_profile_vat_rate_bp_check CHECK (((vat_rate_bp >= 0) AND (vat_rate_bp <= 10000))),
    CONSTRAINT billing_profile_vat_regime_check CHECK ((vat_regime = ANY (ARRAY['standard'::text, 'reverse_charge'::text, 'exempt'::text])))
);

--
-- Name: contact; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.contact (
    reseller_id uuid NOT NULL,
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    sub_account_id uuid NOT NULL,
    number text NOT NULL,
    name text,
    reference text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT contact_name_check CHECK (((length(name) >= 1) AND (length(name) <= 200))),
    CONSTRAINT contact_number_check CHECK ((number ~ '^[1-9][0-9]{6,14}$'::text)),
    CONSTRAINT contact_reference_check CHECK (((length(reference) >= 1) AND (length(reference) <= 100)))
);

--
-- Name: contact_group; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.contact_group (
    reseller_id uuid NOT NULL,
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    sub_account_id uuid NOT NULL,
    name text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT contact_group_name_check CHECK ((((length(name) >= 1) AND (length(name) <= 100)) AND (strpos(name, ';'::text) = 0)))
);

--
-- Name: contact_group_member; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.contact_group_member (
    reseller_id uuid NOT NULL,
    sub_account_id uuid NOT NULL,
    group_id uuid NOT NULL,
    contact_id uuid NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: idempotency_record; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.idempotency_record (
    scope text NOT NULL,
    key text NOT NULL,
    operation text NOT NULL,
    request_hash bytea NOT NULL,
    status_code integer NOT NULL,
    response jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT idempotency_record_key_check CHECK (((length(key) >= 1) AND (length(key) <= 255)))
);

--
-- Name: invoice; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.invoice (
    id uuid NOT NULL,
    kind text NOT NULL,
    source text NOT NULL,
    status text NOT NULL,
    issuer_reseller_id uuid,
    customer_reseller_id uuid NOT NULL,
    customer_sub_account_id uuid,
    number text,
    issue_date date,
    due_date date,
    period_start date NOT NULL,
    period_end date NOT NULL,
    covered_from timestamp with time zone,
    covered_to timestamp with time zone,
    leg text,
    purchase_transfer_id uuid,
    credits bigint NOT NULL,
    currency text NOT NULL,
    currency_digits smallint NOT NULL,
    issuer jsonb NOT NULL,
    customer jsonb NOT NULL,
    payment_terms text,
    notes text[] DEFAULT '{}'::text[] NOT NULL,
    net_total bigint NOT NULL,
    vat_total bigint NOT NULL,
    total bigint NOT NULL,
    corrects_invoice_id uuid,
    correction_reason text,
    created_by text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    issued_by text,
    issued_at timestamp with time zone,
    voided_by text,
    voided_at timestamp with time zone,
    CONSTRAINT invoice_check CHECK ((total = (net_total + vat_total))),
    CONSTRAINT invoice_check1 CHECK (
CASE
    WHEN (issuer_reseller_id IS NULL) THEN (customer_sub_account_id IS NULL)
    ELSE ((issuer_reseller_id = customer_reseller_id) AND (customer_sub_account_id IS NOT NULL))
END),
    CONSTRAINT invoice_check2 CHECK (((status = 'issued'::text) = ((number IS NOT NULL) AND (issue_date IS NOT NULL) AND (due_date IS NOT NULL) AND (issued_by IS NOT NULL) AND (issued_at IS NOT NULL)))),
    CONSTRAINT invoice_check3 CHECK (((status = 'voided'::text) = ((voided_by IS NOT NULL) AND (voided_at IS NOT NULL)))),
    CONSTRAINT invoice_check4 CHECK ((period_end >= period_start)),
    CONSTRAINT invoice_check5 CHECK (((kind = 'credit_note'::text) = (source = 'correction'::text))),
    CONSTRAINT invoice_check6 CHECK (((kind = 'credit_note'::text) = ((corrects_invoice_id IS NOT NULL) AND (correction_reason IS NOT NULL)))),
    CONSTRAINT invoice_check7 CHECK (((source = 'usage'::text) = ((covered_from IS NOT NULL) AND (covered_to IS NOT NULL) AND (leg IS NOT NULL)))),
    CONSTRAINT invoice_check8 CHECK (((source = 'purchase'::text) = (purchase_transfer_id IS NOT NULL))),
    CONSTRAINT invoice_correction_reason_check CHECK (((length(correction_reason) >= 1) AND (length(correction_reason) <= 500))),
    CONSTRAINT invoice_currency_check CHECK ((currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT invoice_currency_digits_check CHECK (((currency_digits >= 0) AND (currency_digits <= 4))),
    CONSTRAINT invoice_kind_check CHECK ((kind = ANY (ARRAY['invoice'::text, 'credit_note'::text]))),
    CONSTRAINT invoice_leg_check CHECK ((leg = ANY (ARRAY['retail'::text, 'wholesale'::text]))),
    CONSTRAINT invoice_number_check CHECK (((length(number) >= 1) AND (length(number) <= 40))),
    CONSTRAINT invoice_source_check CHECK ((source = ANY (ARRAY['usage'::text, 'purchase'::text, 'correction'::text]))),
    CONSTRAINT invoice_status_check CHECK ((status = ANY (ARRAY['draft'::text, 'issued'::text, 'voided'::text])))
);

--
-- Name: invoice_counter; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.invoice_counter (
    issuer uuid NOT NULL,
    series text NOT NULL,
    year integer NOT NULL,
    last_number bigint NOT NULL,
    CONSTRAINT invoice_counter_last_number_check CHECK ((last_number >= 1)),
    CONSTRAINT invoice_counter_series_check CHECK ((series = ANY (ARRAY['invoice'::text, 'credit_note'::text]))),
    CONSTRAINT invoice_counter_year_check CHECK (((year >= 2000) AND (year <= 9999)))
);

--
-- Name: invoice_line; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.invoice_line (
    invoice_id uuid NOT NULL,
    "position" integer NOT NULL,
    description text NOT NULL,
    quantity numeric NOT NULL,
    unit text NOT NULL,
    unit_price numeric NOT NULL,
    net bigint NOT NULL,
    vat_rate_bp integer NOT NULL,
    vat_category text NOT NULL,
    credits bigint NOT NULL,
    country text,
    encoding text,
    corrects_position integer,
    CONSTRAINT invoice_line_country_check CHECK ((country ~ '^[0-9]{1,7}$'::text)),
    CONSTRAINT invoice_line_description_check CHECK (((length(description) >= 1) AND (length(description) <= 500))),
    CONSTRAINT invoice_line_encoding_check CHECK ((encoding = ANY (ARRAY['gsm7'::text, 'ucs2'::text]))),
    CONSTRAINT invoice_line_position_check CHECK (("position" >= 1)),
    CONSTRAINT invoice_line_unit_check CHECK ((unit = ANY (ARRAY['part'::text, 'credit'::text]))),
    CONSTRAINT invoice_line_vat_category_check CHECK ((vat_category = ANY (ARRAY['standard'::text, 'reverse_charge'::text, 'exempt'::text]))),
    CONSTRAINT invoice_line_vat_rate_bp_check CHECK (((vat_rate_bp >= 0) AND (vat_rate_bp <= 10000)))
);

--
-- Name: invoice_vat; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.invoice_vat (
    invoice_id uuid NOT NULL,
    vat_rate_bp integer NOT NULL,
    vat_category text NOT NULL,
    base bigint NOT NULL,
    vat bigint NOT NULL,
    CONSTRAINT invoice_vat_vat_category_check CHECK ((vat_category = ANY (ARRAY['standard'::text, 'reverse_charge'::text, 'exempt'::text]))),
    CONSTRAINT invoice_vat_vat_rate_bp_check CHECK (((vat_rate_bp >= 0) AND (vat_rate_bp <= 10000)))
);

--
-- Name: issuer_profile; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.issuer_profile (
    reseller_id uuid,
    legal_name text NOT NULL,
    address text[] NOT NULL,
    country_code text NOT NULL,
    vat_number text,
    company_number text,
    invoice_prefix text NOT NULL,
    credit_note_prefix text NOT NULL,
    payment_terms_days integer NOT NULL,
    currency text NOT NULL,
    time_zone text NOT NULL,
    updated_by text NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT issuer_profile_address_check CHECK (((cardinality(address) >= 1) AND (cardinality(address) <= 6))),
    CONSTRAINT issuer_profile_check CHECK ((invoice_prefix <> credit_note_prefix)),
    CONSTRAINT issuer_profile_company_number_check CHECK (((length(company_number) >= 1) AND (length(company_number) <= 40))),
    CONSTRAINT issuer_profile_country_code_check CHECK ((country_code ~ '^[A-Z]{2}$'::text)),
    CONSTRAINT issuer_profile_credit_note_prefix_check CHECK ((credit_note_prefix ~ '^[A-Z0-9]{1,10}$'::text)),
    CONSTRAINT issuer_profile_currency_check CHECK ((currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT issuer_profile_invoice_prefix_check CHECK ((invoice_prefix ~ '^[A-Z0-9]{1,10}$'::text)),
    CONSTRAINT issuer_profile_legal_name_check CHECK (((length(legal_name) >= 1) AND (length(legal_name) <= 200))),
    CONSTRAINT issuer_profile_payment_terms_days_check CHECK (((payment_terms_days >= 0) AND (payment_terms_days <= 365))),
    CONSTRAINT issuer_profile_time_zone_check CHECK (((length(time_zone) >= 1) AND (length(time_zone) <= 64))),
    CONSTRAINT issuer_profile_vat_number_check CHECK (((length(vat_number) >= 1) AND (length(vat_number) <= 40)))
);

--
-- Name: ledger_account; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ledger_account (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    kind text NOT NULL,
    reseller_id uuid,
    sub_account_id uuid,
    debits_pending bigint DEFAULT 0 NOT NULL,
    debits_posted bigint DEFAULT 0 NOT NULL,
    credits_pending bigint DEFAULT 0 NOT NULL,
    credits_posted bigint DEFAULT 0 NOT NULL,
    credit_limit bigint,
    debits_must_not_exceed_credits boolean NOT NULL,
    low_balance_threshold bigint,
    below_threshold boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    upstream_connection_id uuid,
    CONSTRAINT ledger_account_check CHECK (
CASE
    WHEN (kind = 'platform_funding'::text) THEN ((reseller_id IS NULL) AND (sub_account_id IS NULL) AND (upstream_connection_id IS NULL))
    WHEN (kind = ANY (ARRAY['upstream_balance'::text, 'upstream_cost'::text])) THEN ((reseller_id IS NULL) AND (sub_account_id IS NULL) AND (upstream_connection_id IS NOT NULL))
    WHEN (kind = 'sub_account_wallet'::text) THEN ((reseller_id IS NOT NULL) AND (sub_account_id IS NOT NULL) AND (upstream_connection_id IS NULL))
    ELSE ((reseller_id IS NOT NULL) AND (sub_account_id IS NULL) AND (upstream_connection_id IS NULL))
END),
    CONSTRAINT ledger_account_credit_limit_check CHECK ((credit_limit >= 0)),
    CONSTRAINT ledger_account_credits_pending_check CHECK ((credits_pending >= 0)),
    CONSTRAINT ledger_account_credits_posted_check CHECK ((credits_posted >= 0)),
    CONSTRAINT ledger_account_debits_pending_check CHECK ((debits_pending >= 0)),
    CONSTRAINT ledger_account_debits_posted_check CHECK ((debits_posted >= 0)),
    CONSTRAINT ledger_account_kind_check CHECK ((kind = ANY (ARRAY['platform_funding'::text, 'platform_revenue'::text, 'upstream_balance'::text, 'upstream_cost'::text, 'reseller_wallet'::text, 'reseller_revenue'::text, 'reseller_issuance'::text, 'sub_account_wallet'::text]))),
    CONSTRAINT ledger_account_low_balance_threshold_check CHECK ((low_balance_threshold >= 0)),
    CONSTRAINT ledger_account_not_overdrawn CHECK (((NOT debits_must_not_exceed_credits) OR ((((credits_posted + COALESCE(credit_limit, (0)::bigint)) - debits_posted) - debits_pending) >= 0)))
);

--
-- Name: ledger_event; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ledger_event (
    id bigint NOT NULL,
    account_id uuid NOT NULL,
    reseller_id uuid,
    sub_account_id uuid,
    kind text NOT NULL,
    available bigint NOT NULL,
    threshold bigint NOT NULL,
    transfer_id uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT ledger_event_kind_check CHECK ((kind = ANY (ARRAY['low_balance'::text, 'balance_recovered'::text])))
);

--
-- Name: ledger_event_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.ledger_event ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.ledger_event_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: ledger_transfer_seq_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.ledger_transfer ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.ledger_transfer_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: message_batch; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.message_batch (
    reseller_id uuid NOT NULL,
    id uuid NOT NULL,
    sub_account_id uuid NOT NULL,
    sender text NOT NULL,
    text text NOT NULL,
    encoding text NOT NULL,
    length integer NOT NULL,
    parts integer NOT NULL,
    long boolean NOT NULL,
    reference text,
    callback_url text,
    group_name text,
    schedule_at timestamp with time zone,
    recipient_count integer NOT NULL,
    message_count integer NOT NULL,
    retail_total bigint NOT NULL,
    wholesale_total bigint NOT NULL,
    created_by text NOT NULL,
    request_id text,
    accepted_at timestamp with time zone DEFAULT now() NOT NULL,
    outbox_id bigint,
    delivery_reports boolean DEFAULT true NOT NULL,
    logging boolean DEFAULT true NOT NULL,
    traceparent text,
    CONSTRAINT message_batch_callback_url_check CHECK ((length(callback_url) <= 2000)),
    CONSTRAINT message_batch_encoding_check CHECK ((encoding = ANY (ARRAY['gsm7'::text, 'ucs2'::text]))),
    CONSTRAINT message_batch_length_check CHECK ((length >= 0)),
    CONSTRAINT message_batch_message_count_check CHECK ((message_count >= 1)),
    CONSTRAINT message_batch_parts_check CHECK ((parts >= 1)),
    CONSTRAINT message_batch_recipient_count_check CHECK ((recipient_count >= 1)),
    CONSTRAINT message_batch_reference_check CHECK (((length(reference) >= 1) AND (length(reference) <= 75))),
    CONSTRAINT message_batch_retail_total_check CHECK ((retail_total >= 0)),
    CONSTRAINT message_batch_traceparent_check CHECK ((length(traceparent) <= 200)),
    CONSTRAINT message_batch_wholesale_total_check CHECK ((wholesale_total >= 0))
);

--
-- Name: message_batch_outbox_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.message_batch_outbox_id_seq
    START WITH 5000001
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: message_batch_outbox_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.message_batch_outbox_id_seq OWNED BY public.message_batch.outbox_id;

--
-- Name: message_event; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.message_event (
    reseller_id uuid NOT NULL,
    message_id uuid NOT NULL,
    seq bigint NOT NULL,
    status text NOT NULL,
    code integer,
    detail text,
    occurred_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT message_event_detail_check CHECK ((length(detail) <= 500))
)
PARTITION BY RANGE (occurred_at);

--
-- Name: message_event_default; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.message_event_default (
    reseller_id uuid NOT NULL,
    message_id uuid NOT NULL,
    seq bigint NOT NULL,
    status text NOT NULL,
    code integer,
    detail text,
    occurred_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT message_event_detail_check CHECK ((length(detail) <= 500))
);

--
-- Name: message_event_seq_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.message_event ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.message_event_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: message_gateway_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.message_gateway_id_seq
    START WITH 1000001
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: message_gateway_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.message_gateway_id_seq OWNED BY public.message.gateway_id;

--
-- Name: message_outbox; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.message_outbox (
    message_id uuid NOT NULL,
    reseller_id uuid NOT NULL,
    connection_id uuid,
    due_at timestamp with time zone NOT NULL,
    deadline_at timestamp with time zone NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    possibly_sent boolean DEFAULT false NOT NULL,
    leased_by text,
    last_error text,
    attempted_at timestamp with time zone,
    CONSTRAINT message_outbox_attempts_check CHECK ((attempts >= 0)),
    CONSTRAINT message_outbox_last_error_check CHECK ((length(last_error) <= 500))
);

--
-- Name: platform_price_default; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.platform_price_default (
    layer text NOT NULL,
    price_list_id uuid NOT NULL,
    assigned_by text NOT NULL,
    assigned_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT platform_price_default_layer_check CHECK ((layer = ANY (ARRAY['upstream_cost'::text, 'wholesale'::text])))
);

--
-- Name: platform_price_list; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.platform_price_list (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    layer text NOT NULL,
    name text NOT NULL,
    description text,
    created_by text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT platform_price_list_description_check CHECK ((length(description) <= 1000)),
    CONSTRAINT platform_price_list_layer_check CHECK ((layer = ANY (ARRAY['upstream_cost'::text, 'wholesale'::text]))),
    CONSTRAINT platform_price_list_name_check CHECK (((length(name) >= 1) AND (length(name) <= 200)))
);

--
-- Name: platform_price_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.platform_price_version (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    price_list_id uuid NOT NULL,
    effective_from timestamp with time zone NOT NULL,
    entry_count integer NOT NULL,
    note text,
    created_by text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT platform_price_version_entry_count_check CHECK ((entry_count > 0)),
    CONSTRAINT platform_price_version_note_check CHECK ((length(note) <= 1000))
);

--
-- Name: refund_policy; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.refund_policy (
    reseller_id uuid NOT NULL,
    sub_account_id uuid,
    layer text NOT NULL,
    charged_states text[] NOT NULL,
    updated_by text NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT refund_policy_charged_states_check CHECK ((charged_states <@ ARRAY['delivered'::text, 'not_delivered'::text, 'rejected'::text, 'expired'::text])),
    CONSTRAINT refund_policy_check CHECK (((layer = 'retail'::text) OR (sub_account_id IS NULL))),
    CONSTRAINT refund_policy_layer_check CHECK ((layer = ANY (ARRAY['retail'::text, 'wholesale'::text])))
);

--
-- Name: reseller; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.reseller (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    contact_email text,
    refund_policy text DEFAULT 'refund_undelivered'::text NOT NULL,
    status text DEFAULT 'active'::text NOT NULL,
    status_reason text,
    status_changed_by text,
    status_changed_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT reseller_contact_email_check CHECK ((length(contact_email) <= 320)),
    CONSTRAINT reseller_name_check CHECK (((length(name) >= 1) AND (length(name) <= 200))),
    CONSTRAINT reseller_refund_policy_check CHECK ((refund_policy = ANY (ARRAY['refund_undelivered'::text, 'no_refund'::text]))),
    CONSTRAINT reseller_status_check CHECK ((status = ANY (ARRAY['active'::text, 'blocked_payment'::text, 'blocked'::text, 'closed'::text])))
);

--
-- Name: reseller_default_retail_price_list; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.reseller_default_retail_price_list (
    reseller_id uuid NOT NULL,
    price_list_id uuid NOT NULL,
    assigned_by text NOT NULL,
    assigned_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: reseller_upstream_connection; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.reseller_upstream_connection (
    reseller_id uuid NOT NULL,
    connection_id uuid NOT NULL,
    assigned_by text NOT NULL,
    assigned_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: reseller_wholesale_price_list; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.reseller_wholesale_price_list (
    reseller_id uuid NOT NULL,
    layer text DEFAULT 'wholesale'::text NOT NULL,
    price_list_id uuid NOT NULL,
    assigned_by text NOT NULL,
    assigned_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT reseller_wholesale_price_list_layer_check CHECK ((layer = 'wholesale'::text))
);

--
-- Name: retail_price_list; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.retail_price_list (
    reseller_id uuid NOT NULL,
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    description text,
    allow_loss boolean DEFAULT false NOT NULL,
    created_by text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT retail_price_list_description_check CHECK ((length(description) <= 1000)),
    CONSTRAINT retail_price_list_name_check CHECK (((length(name) >= 1) AND (length(name) <= 200)))
);

--
-- Name: retail_price_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.retail_price_version (
    reseller_id uuid NOT NULL,
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    price_list_id uuid NOT NULL,
    effective_from timestamp with time zone NOT NULL,
    entry_count integer NOT NULL,
    note text,
    created_by text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT retail_price_version_entry_count_check CHECK ((entry_count > 0)),
    CONSTRAINT retail_price_version_note_check CHECK ((length(note) <= 1000))
);

--
-- Name: schema_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL,
    duration_ms integer NOT NULL
);

--
-- Name: sender_name; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sender_name (
    reseller_id uuid NOT NULL,
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    sub_account_id uuid NOT NULL,
    name text NOT NULL,
    status text NOT NULL,
    requires_admin boolean DEFAULT false NOT NULL,
    reason text,
    decided_by text,
    decided_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT sender_name_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'pending_admin'::text, 'approved'::text, 'rejected'::text, 'revoked'::text])))
);

--
-- Name: sender_name_rule; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sender_name_rule (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name_key text NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    reason text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT sender_name_rule_kind_check CHECK ((kind = ANY (ARRAY['blocked'::text, 'protected'::text])))
);

--
-- Name: sub_account; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sub_account (
    reseller_id uuid NOT NULL,
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    username text NOT NULL,
    password_salt bytea NOT NULL,
    password_iterations integer NOT NULL,
    password_hash bytea NOT NULL,
    default_sender text,
    status text DEFAULT 'active'::text NOT NULL,
    status_reason text,
    status_changed_by text,
    status_changed_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT sub_account_name_check CHECK (((length(name) >= 1) AND (length(name) <= 200))),
    CONSTRAINT sub_account_password_iterations_check CHECK ((password_iterations > 0)),
    CONSTRAINT sub_account_status_check CHECK ((status = ANY (ARRAY['active'::text, 'blocked_payment'::text, 'blocked'::text, 'closed'::text]))),
    CONSTRAINT sub_account_username_check CHECK (((length(username) >= 3) AND (length(username) <= 64)))
);

--
-- Name: sub_account_retail_price_list; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sub_account_retail_price_list (
    reseller_id uuid NOT NULL,
    sub_account_id uuid NOT NULL,
    price_list_id uuid NOT NULL,
    assigned_by text NOT NULL,
    assigned_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: transfer_payment; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.transfer_payment (
    transfer_id uuid NOT NULL,
    amount_paid bigint NOT NULL,
    currency text NOT NULL,
    CONSTRAINT transfer_payment_amount_paid_check CHECK ((amount_paid >= 0)),
    CONSTRAINT transfer_payment_currency_check CHECK ((currency ~ '^[A-Z]{3}$'::text))
);

--
-- Name: unmatched_delivery_report; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.unmatched_delivery_report (
    id bigint NOT NULL,
    connection_id uuid NOT NULL,
    sms_id text NOT NULL,
    status text NOT NULL,
    reported_at timestamp with time zone,
    reference text,
    reason text NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT unmatched_delivery_report_reference_check CHECK ((length(reference) <= 200)),
    CONSTRAINT unmatched_delivery_report_sms_id_check CHECK ((length(sms_id) <= 100))
);

--
-- Name: unmatched_delivery_report_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.unmatched_delivery_report ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.unmatched_delivery_report_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: upstream_connection; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.upstream_connection (
    id uuid NOT NULL,
    name text NOT NULL,
    base_url text NOT NULL,
    username text NOT NULL,
    password_secret bytea NOT NULL,
    password_changed_at timestamp with time zone DEFAULT now() NOT NULL,
    gsm_single_part integer DEFAULT 160 NOT NULL,
    gsm_concatenated_part integer DEFAULT 153 NOT NULL,
    ucs2_single_part integer DEFAULT 70 NOT NULL,
    ucs2_concatenated_part integer DEFAULT 67 NOT NULL,
    maximum_parts integer DEFAULT 3 NOT NULL,
    concurrency integer DEFAULT 4 NOT NULL,
    rate_limit_per_second integer DEFAULT 20 NOT NULL,
    request_timeout_ms integer DEFAULT 15000 NOT NULL,
    status text DEFAULT 'active'::text NOT NULL,
    pause_reason text,
    pause_code integer,
    paused_at timestamp with time zone,
    paused_by text,
    created_by text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    single_part_countries text[] DEFAULT '{}'::text[] NOT NULL,
    callback_token text DEFAULT replace(((gen_random_uuid())::text || (gen_random_uuid())::text), '-'::text, ''::text) NOT NULL,
    previous_callback_token text,
    previous_callback_token_until timestamp with time zone,
    CONSTRAINT upstream_connection_base_url_check CHECK (((base_url ~ '^https?://[^/?#@[:space:]]+(/[^?#[:space:]]*)?$'::text) AND (length(base_url) <= 2000))),
    CONSTRAINT upstream_connection_callback_token_check CHECK ((callback_token ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT upstream_connection_check CHECK (((gsm_concatenated_part <= gsm_single_part) AND (ucs2_concatenated_part <= ucs2_single_part))),
    CONSTRAINT upstream_connection_check1 CHECK ((((status = 'active'::text) AND (pause_reason IS NULL) AND (pause_code IS NULL) AND (paused_at IS NULL) AND (paused_by IS NULL)) OR ((status = 'paused'::text) AND (pause_reason IS NOT NULL) AND (paused_at IS NOT NULL) AND (paused_by IS NOT NULL)))),
    CONSTRAINT upstream_connection_concurrency_check CHECK (((concurrency >= 1) AND (concurrency <= 64))),
    CONSTRAINT upstream_connection_gsm_concatenated_part_check CHECK (((gsm_concatenated_part >= 2) AND (gsm_concatenated_part <= 153))),
    CONSTRAINT upstream_connection_gsm_single_part_check CHECK (((gsm_single_part >= 2) AND (gsm_single_part <= 160))),
    CONSTRAINT upstream_connection_maximum_parts_check CHECK (((maximum_parts >= 1) AND (maximum_parts <= 255))),
    CONSTRAINT upstream_connection_name_check CHECK (((length(name) >= 1) AND (length(name) <= 100))),
    CONSTRAINT upstream_connection_password_secret_check CHECK ((length(password_secret) >= 2)),
    CONSTRAINT upstream_connection_pause_code_check CHECK (((pause_code >= 100) AND (pause_code <= 199))),
    CONSTRAINT upstream_connection_pause_reason_check CHECK (((length(pause_reason) >= 1) AND (length(pause_reason) <= 500))),
    CONSTRAINT upstream_connection_previous_callback_token_check CHECK ((previous_callback_token ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT upstream_connection_previous_callback_token_pair CHECK (((previous_callback_token IS NULL) = (previous_callback_token_until IS NULL))),
    CONSTRAINT upstream_connection_rate_limit_per_second_check CHECK (((rate_limit_per_second >= 1) AND (rate_limit_per_second <= 10000))),
    CONSTRAINT upstream_connection_request_timeout_ms_check CHECK (((request_timeout_ms >= 1000) AND (request_timeout_ms <= 120000))),
    CONSTRAINT upstream_connection_single_part_countries_check CHECK ((cardinality(single_part_countries) <= 1000)),
    CONSTRAINT upstream_connection_status_check CHECK ((status = ANY (ARRAY['active'::text, 'paused'::text]))),
    CONSTRAINT upstream_connection_ucs2_concatenated_part_check CHECK (((ucs2_concatenated_part >= 2) AND (ucs2_concatenated_part <= 67))),
    CONSTRAINT upstream_connection_ucs2_single_part_check CHECK (((ucs2_single_part >= 2) AND (ucs2_single_part <= 70))),
    CONSTRAINT upstream_connection_username_check CHECK (((length(username) >= 1) AND (length(username) <= 200)))
);

--
-- Name: upstream_connection_default; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.upstream_connection_default (
    singleton boolean DEFAULT true NOT NULL,
    connection_id uuid NOT NULL,
    assigned_by text NOT NULL,
    assigned_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT upstream_connection_default_singleton_check CHECK (singleton)
);

--
-- Name: upstream_credit_snapshot; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.upstream_credit_snapshot (
    id uuid NOT NULL,
    connection_id uuid NOT NULL,
    run_id uuid NOT NULL,
    asked_at timestamp with time zone NOT NULL,
    answered_at timestamp with time zone NOT NULL,
    taken_at timestamp with time zone NOT NULL,
    upstream_answer text NOT NULL,
    upstream_credits bigint NOT NULL,
    ledger_balance bigint NOT NULL,
    in_flight_messages integer NOT NULL,
    in_flight_cost bigint NOT NULL,
    recorded_during bigint NOT NULL,
    exact boolean NOT NULL,
    difference bigint NOT NULL,
    uncertainty bigint NOT NULL,
    baseline_snapshot_id uuid NOT NULL,
    drift bigint NOT NULL,
    previous_snapshot_id uuid,
    purchases_since_previous bigint DEFAULT 0 NOT NULL,
    CONSTRAINT upstream_credit_snapshot_in_flight_cost_check CHECK ((in_flight_cost >= 0)),
    CONSTRAINT upstream_credit_snapshot_in_flight_messages_check CHECK ((in_flight_messages >= 0)),
    CONSTRAINT upstream_credit_snapshot_recorded_during_check CHECK ((recorded_during >= 0)),
    CONSTRAINT upstream_credit_snapshot_uncertainty_check CHECK ((uncertainty >= 0)),
    CONSTRAINT upstream_credit_snapshot_upstream_answer_check CHECK ((length(upstream_answer) <= 100))
);

--
-- Name: upstream_credit_snapshot_purchase; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.upstream_credit_snapshot_purchase (
    purchase_id uuid NOT NULL,
    snapshot_id uuid NOT NULL
);

--
-- Name: upstream_purchase; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.upstream_purchase (
    id uuid NOT NULL,
    connection_id uuid NOT NULL,
    credits bigint NOT NULL,
    amount_paid bigint NOT NULL,
    currency text NOT NULL,
    invoice_reference text NOT NULL,
    note text,
    transfer_id uuid NOT NULL,
    created_by text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT upstream_purchase_amount_paid_check CHECK ((amount_paid >= 0)),
    CONSTRAINT upstream_purchase_credits_check CHECK ((credits > 0)),
    CONSTRAINT upstream_purchase_currency_check CHECK ((currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT upstream_purchase_invoice_reference_check CHECK (((length(invoice_reference) >= 1) AND (length(invoice_reference) <= 200))),
    CONSTRAINT upstream_purchase_note_check CHECK ((length(note) <= 1000))
);

--
-- Name: upstream_reconciliation_day; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.upstream_reconciliation_day (
    connection_id uuid NOT NULL,
    day date NOT NULL,
    run_id uuid NOT NULL,
    checked_at timestamp with time zone NOT NULL,
    covered_from timestamp with time zone,
    covered_until timestamp with time zone NOT NULL,
    complete boolean NOT NULL,
    rows_listed integer NOT NULL,
    messages_compared integer NOT NULL,
    matched integer NOT NULL,
    unknown_upstream integer NOT NULL,
    listed_twice integer NOT NULL,
    missing_upstream integer NOT NULL,
    other_upstream_id integer NOT NULL,
    in_flight integer NOT NULL,
    differences jsonb NOT NULL
);

--
-- Name: upstream_reconciliation_run; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.upstream_reconciliation_run (
    id uuid NOT NULL,
    connection_id uuid NOT NULL,
    trigger text NOT NULL,
    started_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    outcome text NOT NULL,
    error text,
    created_by text NOT NULL,
    CONSTRAINT upstream_reconciliation_run_error_check CHECK ((length(error) <= 1000)),
    CONSTRAINT upstream_reconciliation_run_outcome_check CHECK ((outcome = ANY (ARRAY['ok'::text, 'partial'::text, 'failed'::text]))),
    CONSTRAINT upstream_reconciliation_run_trigger_check CHECK ((trigger = ANY (ARRAY['schedule'::text, 'admin'::text])))
);

--
-- Name: upstream_reconciliation_state; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.upstream_reconciliation_state (
    connection_id uuid NOT NULL,
    next_run_at timestamp with time zone DEFAULT now() NOT NULL,
    running_by text,
    running_until timestamp with time zone,
    baseline_snapshot_id uuid,
    drift_alerted boolean DEFAULT false NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: usage_money_fact; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.usage_money_fact AS
 SELECT f.at,
    f.transfer_id,
    m.reseller_id,
    m.sub_account_id,
    m.country,
    m.id AS message_id,
    m.accepted_at,
    b.parts,
    f.leg,
    f.class,
    f.amount,
        CASE
            WHEN (f.leg =
            CASE
                WHEN (m.retail_reservation_id IS NOT NULL) THEN 'retail'::text
                ELSE 'wholesale'::text
            END) THEN f.moves
            ELSE 0
        END AS messages
   FROM ((( SELECT t.created_at AS at,
            t.id AS transfer_id,
            (t.reference)::uuid AS message_id,
                CASE t.code
                    WHEN 'send_retail'::text THEN 'retail'::text
                    ELSE 'wholesale'::text
                END AS leg,
            'pending'::text AS class,
            t.amount,
            1 AS moves
           FROM public.ledger_transfer t
          WHERE ((t.kind = 'pending'::text) AND (t.code = ANY (ARRAY['send_retail'::text, 'send_wholesale'::text])))
        UNION ALL
         SELECT t.created_at,
            t.id,
            (p.reference)::uuid AS reference,
                CASE p.code
                    WHEN 'send_retail'::text THEN 'retail'::text
                    ELSE 'wholesale'::text
                END AS "case",
            x.class,
            x.amount,
            x.moves
           FROM ((public.ledger_transfer t
             JOIN public.ledger_transfer p ON ((p.id = t.pending_id)))
             CROSS JOIN LATERAL ( VALUES (
                        CASE t.kind
                            WHEN 'post_pending'::text THEN 'charged'::text
                            ELSE 'refunded'::text
                        END,t.amount,1), ('pending'::text,(- p.amount),'-1'::integer)) x(class, amount, moves))
          WHERE ((t.kind = ANY (ARRAY['post_pending'::text, 'void_pending'::text])) AND (p.code = ANY (ARRAY['send_retail'::text, 'send_wholesale'::text])))
        UNION ALL
         SELECT t.created_at,
            t.id,
            (t.reference)::uuid AS reference,
                CASE a.kind
                    WHEN 'sub_account_wallet'::text THEN 'retail'::text
                    ELSE 'wholesale'::text
                END AS "case",
            'charged'::text,
            t.amount,
            0
           FROM (public.ledger_transfer t
             JOIN public.ledger_account a ON ((a.id = t.debit_account_id)))
          WHERE (t.code = 'late_delivery'::text)
        UNION ALL
         SELECT t.created_at,
            t.id,
            (t.reference)::uuid AS reference,
            'cost'::text,
            'charged'::text,
            t.amount,
            0
           FROM public.ledger_transfer t
          WHERE (t.code = 'upstream_cost'::text)) f
     JOIN public.message m ON ((m.id = f.message_id)))
     JOIN public.message_batch b ON (((b.reseller_id = m.reseller_id) AND (b.id = m.batch_id))));

--
-- Name: usage_money_hour; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.usage_money_hour (
    hour timestamp with time zone NOT NULL,
    reseller_id uuid NOT NULL,
    sub_account_id uuid NOT NULL,
    country text NOT NULL,
    class text NOT NULL,
    messages bigint NOT NULL,
    parts bigint NOT NULL,
    retail bigint NOT NULL,
    wholesale bigint NOT NULL,
    upstream_cost bigint NOT NULL,
    CONSTRAINT usage_money_hour_class_check CHECK ((class = ANY (ARRAY['pending'::text, 'charged'::text, 'refunded'::text])))
);

--
-- Name: usage_rollup_state; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.usage_rollup_state (
    singleton boolean DEFAULT true NOT NULL,
    sealed_until timestamp with time zone,
    candidate_at timestamp with time zone,
    candidate_xmax xid8,
    CONSTRAINT usage_rollup_state_check CHECK (((candidate_at IS NULL) = (candidate_xmax IS NULL))),
    CONSTRAINT usage_rollup_state_sealed_until_check CHECK ((sealed_until = date_trunc('hour'::text, sealed_until, 'UTC'::text))),
    CONSTRAINT usage_rollup_state_singleton_check CHECK (singleton)
);

--
-- Name: webhook_attempt; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.webhook_attempt (
    id bigint NOT NULL,
    delivery_id uuid NOT NULL,
    attempt integer NOT NULL,
    attempted_at timestamp with time zone NOT NULL,
    status_code integer,
    latency_ms integer NOT NULL,
    error text,
    CONSTRAINT webhook_attempt_error_check CHECK ((length(error) <= 500))
)
PARTITION BY RANGE (attempted_at);

--
-- Name: webhook_attempt_default; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.webhook_attempt_default (
    id bigint NOT NULL,
    delivery_id uuid NOT NULL,
    attempt integer NOT NULL,
    attempted_at timestamp with time zone NOT NULL,
    status_code integer,
    latency_ms integer NOT NULL,
    error text,
    CONSTRAINT webhook_attempt_error_check CHECK ((length(error) <= 500))
);

--
-- Name: webhook_attempt_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.webhook_attempt ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.webhook_attempt_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: webhook_delivery; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.webhook_delivery (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    reseller_id uuid,
    endpoint_id uuid,
    event_id uuid NOT NULL,
    state text DEFAULT 'pending'::text NOT NULL,
    due_at timestamp with time zone DEFAULT now() NOT NULL,
    leased_by text,
    attempts integer DEFAULT 0 NOT NULL,
    last_status_code integer,
    last_latency_ms integer,
    last_error text,
    give_up_at timestamp with time zone DEFAULT (now() + '3 days'::interval) NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    url text,
    message_id uuid,
    CONSTRAINT webhook_delivery_attempts_check CHECK ((attempts >= 0)),
    CONSTRAINT webhook_delivery_last_error_check CHECK ((length(last_error) <= 500)),
    CONSTRAINT webhook_delivery_state_check CHECK ((state = ANY (ARRAY['pending'::text, 'delivered'::text, 'failed'::text]))),
    CONSTRAINT webhook_delivery_target CHECK ((((endpoint_id IS NULL) = (url IS NOT NULL)) AND ((url IS NULL) = (message_id IS NULL)))),
    CONSTRAINT webhook_delivery_url_check CHECK ((length(url) <= 2000))
);

--
-- Name: webhook_endpoint; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.webhook_endpoint (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    reseller_id uuid,
    sub_account_id uuid,
    url text NOT NULL,
    event_types text[] NOT NULL,
    description text,
    secret text NOT NULL,
    previous_secret text,
    previous_secret_expires_at timestamp with time zone,
    status text DEFAULT 'active'::text NOT NULL,
    status_reason text,
    failing_since timestamp with time zone,
    created_by text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    format text DEFAULT 'signed'::text NOT NULL,
    CONSTRAINT webhook_endpoint_1601_types CHECK (((format = 'signed'::text) OR (event_types = ARRAY['message.status_changed'::text]))),
    CONSTRAINT webhook_endpoint_check CHECK (((previous_secret IS NULL) = (previous_secret_expires_at IS NULL))),
    CONSTRAINT webhook_endpoint_description_check CHECK ((length(description) <= 200)),
    CONSTRAINT webhook_endpoint_event_types_check CHECK (((cardinality(event_types) > 0) AND (event_types <@ ARRAY['message.status_changed'::text, 'balance.low'::text, 'balance.recovered'::text, 'account.blocked'::text, 'account.unblocked'::text, 'sender_name.approved'::text, 'sender_name.rejected'::text, 'webhook.endpoint_disabled'::text, 'upstream.credit_drift'::text, 'upstream.credit_drift_recovered'::text, 'upstream.reconciliation_mismatch'::text]))),
    CONSTRAINT webhook_endpoint_format_check CHECK ((format = ANY (ARRAY['signed'::text, '1601'::text]))),
    CONSTRAINT webhook_endpoint_platform_events CHECK (
CASE
    WHEN (reseller_id IS NULL) THEN ((sub_account_id IS NULL) AND (format = 'signed'::text) AND (event_types <@ ARRAY['upstream.credit_drift'::text, 'upstream.credit_drift_recovered'::text, 'upstream.reconciliation_mismatch'::text]))
    ELSE (NOT (event_types && ARRAY['upstream.credit_drift'::text, 'upstream.credit_drift_recovered'::text, 'upstream.reconciliation_mismatch'::text]))
END),
    CONSTRAINT webhook_endpoint_secret_check CHECK ((length(secret) >= 32)),
    CONSTRAINT webhook_endpoint_status_check CHECK ((status = ANY (ARRAY['active'::text, 'disabled'::text]))),
    CONSTRAINT webhook_endpoint_status_reason_check CHECK ((length(status_reason) <= 500)),
    CONSTRAINT webhook_endpoint_url_check CHECK (((length(url) >= 8) AND (length(url) <= 2000)))
);

--
-- Name: webhook_event; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.webhook_event (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    type text NOT NULL,
    reseller_id uuid,
    sub_account_id uuid,
    payload jsonb NOT NULL,
    occurred_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    legacy_only boolean DEFAULT false NOT NULL,
    CONSTRAINT webhook_event_platform CHECK (((reseller_id IS NULL) = (type ~~ 'upstream.%'::text)))
);

--
-- Name: webhook_requeue; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.webhook_requeue (
    id bigint NOT NULL,
    endpoint_id uuid NOT NULL,
    kind text NOT NULL,
    called_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT webhook_requeue_kind_check CHECK ((kind = ANY (ARRAY['replay'::text, 'redeliver'::text])))
);

--
-- Name: webhook_requeue_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.webhook_requeue ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.webhook_requeue_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: webhook_settings; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.webhook_settings (
    id boolean DEFAULT true NOT NULL,
    allowed_ranges cidr[] DEFAULT '{}'::cidr[] NOT NULL,
    updated_by text,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT webhook_settings_id_check CHECK (id)
);

--
-- Name: message_event_default; Type: TABLE ATTACH; Schema: public; Owner: -
--

ALTER TABLE ONLY public.message_event ATTACH PARTITION public.message_event_default DEFAULT;

--
-- Name: webhook_attempt_default; Type: TABLE ATTACH; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_attempt ATTACH PARTITION public.webhook_attempt_default DEFAULT;

--
-- Name: message gateway_id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.message ALTER COLUMN gateway_id SET DEFAULT nextval('public.message_gateway_id_seq'::regclass);

--
-- Name: api_key api_key_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_key
    ADD CONSTRAINT api_key_pkey PRIMARY KEY (id);

--
-- Name: api_key api_key_secret_sha256_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_key
    ADD CONSTRAINT api_key_secret_sha256_key UNIQUE (secret_sha256);

--
-- Name: audit_log audit_log_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id);

--
-- Name: contact_group_member contact_group_member_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.contact_group_member
    ADD CONSTRAINT contact_group_member_pkey PRIMARY KEY (reseller_id, group_id, contact_id);

--
-- Name: contact_group contact_group_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.contact_group
    ADD CONSTRAINT contact_group_pkey PRIMARY KEY (reseller_id, id);

--
-- Name: contact_group contact_group_reseller_id_sub_account_id_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.contact_group
    ADD CONSTRAINT contact_group_reseller_id_sub_account_id_id_key UNIQUE (reseller_id, sub_account_id, id);

--
-- Name: contact contact_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.contact
    ADD CONSTRAINT contact_pkey PRIMARY KEY (reseller_id, id);

--
-- Name: contact contact_reseller_id_sub_account_id_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.contact
    ADD CONSTRAINT contact_reseller_id_sub_account_id_id_key UNIQUE (reseller_id, sub_account_id, id);

--
-- Name: contact contact_reseller_id_sub_account_id_number_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.contact
    ADD CONSTRAINT contact_reseller_id_sub_account_id_number_key UNIQUE (reseller_id, sub_account_id, number);

--
-- Name: idempotency_record idempotency_record_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.idempotency_record
    ADD CONSTRAINT idempotency_record_pkey PRIMARY KEY (scope, key);

--
-- Name: invoice_counter invoice_counter_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.invoice_counter
    ADD CONSTRAINT invoice_counter_pkey PRIMARY KEY (issuer, series, year);

--
-- Name: invoice_line invoice_line_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.invoice_line
    ADD CONSTRAINT invoice_line_pkey PRIMARY KEY (invoice_id, "position");

--
-- Name: invoice invoice_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.invoice
    ADD CONSTRAINT invoice_pkey PRIMARY KEY (id);

--
-- Name: invoice_vat invoice_vat_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.invoice_vat
    ADD CONSTRAINT invoice_vat_pkey PRIMARY KEY (invoice_id, vat_category, vat_rate_bp);

--
-- Name: ledger_account ledger_account_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ledger_account
    ADD CONSTRAINT ledger_account_pkey PRIMARY KEY (id);

--
-- Name: ledger_event ledger_event_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ledger_event
    ADD CONSTRAINT ledger_event_pkey PRIMARY KEY (id);

--
-- Name: ledger_transfer ledger_transfer_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ledger_transfer
    ADD CONSTRAINT ledger_transfer_pkey PRIMARY KEY (id);

--
-- Name: ledger_transfer ledger_transfer_seq_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ledger_transfer
    ADD CONSTRAINT ledger_transfer_seq_key UNIQUE (seq);

--
-- Name: message_batch message_batch_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.message_batch
    ADD CONSTRAINT message_batch_id_key UNIQUE (id);

--
-- Name: message_batch message_batch_outbox_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.message_batch
    ADD CONSTRAINT message_batch_outbox_id_key UNIQUE (outbox_id);

--
-- Name: message_batch message_batch_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.message_batch
    ADD CONSTRAINT message_batch_pkey PRIMARY KEY (reseller_id, id);

--
-- Name: message_event message_event_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.message_event
    ADD CONSTRAINT message_event_pkey PRIMARY KEY (message_id, seq, occurred_at);

--
-- Name: message_event_default message_event_default_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.message_event_default
    ADD CONSTRAINT message_event_default_pkey PRIMARY KEY (message_id, seq, occurred_at);

--
-- Name: message message_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.message
    ADD CONSTRAINT message_id_key UNIQUE (id);

--
-- Name: message_outbox message_outbox_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.message_outbox
    ADD CONSTRAINT message_outbox_pkey PRIMARY KEY (message_id);

--
-- Name: message message_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.message
    ADD CONSTRAINT message_pkey PRIMARY KEY (reseller_id, id);

--
-- Name: platform_price_default platform_price_default_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platform_price_default
    ADD CONSTRAINT platform_price_default_pkey PRIMARY KEY (layer);

--
-- Name: platform_price_entry platform_price_entry_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platform_price_entry
    ADD CONSTRAINT platform_price_entry_pkey PRIMARY KEY (version_id, prefix);

--
-- Name: platform_price_list platform_price_list_layer_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platform_price_list
    ADD CONSTRAINT platform_price_list_layer_id_key UNIQUE (layer, id);

--
-- Name: platform_price_list platform_price_list_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platform_price_list
    ADD CONSTRAINT platform_price_list_pkey PRIMARY KEY (id);

--
-- Name: platform_price_version platform_price_version_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platform_price_version
    ADD CONSTRAINT platform_price_version_pkey PRIMARY KEY (id);

--
-- Name: platform_price_version platform_price_version_price_list_id_effective_from_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platform_price_version
    ADD CONSTRAINT platform_price_version_price_list_id_effective_from_key UNIQUE (price_list_id, effective_from);

--
-- Name: reseller_default_retail_price_list reseller_default_retail_price_list_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.reseller_default_retail_price_list
    ADD CONSTRAINT reseller_default_retail_price_list_pkey PRIMARY KEY (reseller_id);

--
-- Name: reseller reseller_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.reseller
    ADD CONSTRAINT reseller_pkey PRIMARY KEY (id);

--
-- Name: reseller_upstream_connection reseller_upstream_connection_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.reseller_upstream_connection
    ADD CONSTRAINT reseller_upstream_connection_pkey PRIMARY KEY (reseller_id);

--
-- Name: reseller_wholesale_price_list reseller_wholesale_price_list_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.reseller_wholesale_price_list
    ADD CONSTRAINT reseller_wholesale_price_list_pkey PRIMARY KEY (reseller_id);

--
-- Name: retail_price_entry retail_price_entry_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.retail_price_entry
    ADD CONSTRAINT retail_price_entry_pkey PRIMARY KEY (reseller_id, version_id, prefix);

--
-- Name: retail_price_list retail_price_list_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.retail_price_list
    ADD CONSTRAINT retail_price_list_id_key UNIQUE (id);

--
-- Name: retail_price_list retail_price_list_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.retail_price_list
    ADD CONSTRAINT retail_price_list_pkey PRIMARY KEY (reseller_id, id);

--
-- Name: retail_price_version retail_price_version_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.retail_price_version
    ADD CONSTRAINT retail_price_version_id_key UNIQUE (id);

--
-- Name: retail_price_version retail_price_version_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.retail_price_version
    ADD CONSTRAINT retail_price_version_pkey PRIMARY KEY (reseller_id, id);

--
-- Name: retail_price_version retail_price_version_reseller_id_price_list_id_effective_fr_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.retail_price_version
    ADD CONSTRAINT retail_price_version_reseller_id_price_list_id_effective_fr_key UNIQUE (reseller_id, price_list_id, effective_from);

--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);

--
-- Name: sender_name sender_name_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sender_name
    ADD CONSTRAINT sender_name_id_key UNIQUE (id);

--
-- Name: sender_name sender_name_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sender_name
    ADD CONSTRAINT sender_name_pkey PRIMARY KEY (reseller_id, id);

--
-- Name: sender_name_rule sender_name_rule_name_key_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sender_name_rule
    ADD CONSTRAINT sender_name_rule_name_key_key UNIQUE (name_key);

--
-- Name: sender_name_rule sender_name_rule_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sender_name_rule
    ADD CONSTRAINT sender_name_rule_pkey PRIMARY KEY (id);

--
-- Name: sub_account sub_account_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sub_account
    ADD CONSTRAINT sub_account_id_key UNIQUE (id);

--
-- Name: sub_account sub_account_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sub_account
    ADD CONSTRAINT sub_account_pkey PRIMARY KEY (reseller_id, id);

--
-- Name: sub_account_retail_price_list sub_account_retail_price_list_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sub_account_retail_price_list
    ADD CONSTRAINT sub_account_retail_price_list_pkey PRIMARY KEY (reseller_id, sub_account_id);

--
-- Name: transfer_payment transfer_payment_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.transfer_payment
    ADD CONSTRAINT transfer_payment_pkey PRIMARY KEY (transfer_id);

--
-- Name: unmatched_delivery_report unmatched_delivery_report_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.unmatched_delivery_report
    ADD CONSTRAINT unmatched_delivery_report_pkey PRIMARY KEY (id);

--
-- Name: upstream_connection upstream_connection_callback_token_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_connection
    ADD CONSTRAINT upstream_connection_callback_token_key UNIQUE (callback_token);

--
-- Name: upstream_connection_default upstream_connection_default_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_connection_default
    ADD CONSTRAINT upstream_connection_default_pkey PRIMARY KEY (singleton);

--
-- Name: upstream_connection upstream_connection_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_connection
    ADD CONSTRAINT upstream_connection_pkey PRIMARY KEY (id);

--
-- Name: upstream_connection upstream_connection_previous_callback_token_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_connection
    ADD CONSTRAINT upstream_connection_previous_callback_token_key UNIQUE (previous_callback_token);

--
-- Name: upstream_credit_snapshot upstream_credit_snapshot_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_credit_snapshot
    ADD CONSTRAINT upstream_credit_snapshot_pkey PRIMARY KEY (id);

--
-- Name: upstream_credit_snapshot_purchase upstream_credit_snapshot_purchase_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_credit_snapshot_purchase
    ADD CONSTRAINT upstream_credit_snapshot_purchase_pkey PRIMARY KEY (purchase_id);

--
-- Name: upstream_purchase upstream_purchase_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_purchase
    ADD CONSTRAINT upstream_purchase_pkey PRIMARY KEY (id);

--
-- Name: upstream_purchase upstream_purchase_transfer_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_purchase
    ADD CONSTRAINT upstream_purchase_transfer_id_key UNIQUE (transfer_id);

--
-- Name: upstream_reconciliation_day upstream_reconciliation_day_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_reconciliation_day
    ADD CONSTRAINT upstream_reconciliation_day_pkey PRIMARY KEY (connection_id, day);

--
-- Name: upstream_reconciliation_run upstream_reconciliation_run_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_reconciliation_run
    ADD CONSTRAINT upstream_reconciliation_run_pkey PRIMARY KEY (id);

--
-- Name: upstream_reconciliation_state upstream_reconciliation_state_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_reconciliation_state
    ADD CONSTRAINT upstream_reconciliation_state_pkey PRIMARY KEY (connection_id);

--
-- Name: usage_money_hour usage_money_hour_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.usage_money_hour
    ADD CONSTRAINT usage_money_hour_pkey PRIMARY KEY (hour, reseller_id, sub_account_id, country, class);

--
-- Name: usage_rollup_state usage_rollup_state_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.usage_rollup_state
    ADD CONSTRAINT usage_rollup_state_pkey PRIMARY KEY (singleton);

--
-- Name: webhook_attempt webhook_attempt_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_attempt
    ADD CONSTRAINT webhook_attempt_pkey PRIMARY KEY (id, attempted_at);

--
-- Name: webhook_attempt_default webhook_attempt_default_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_attempt_default
    ADD CONSTRAINT webhook_attempt_default_pkey PRIMARY KEY (id, attempted_at);

--
-- Name: webhook_delivery webhook_delivery_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_delivery
    ADD CONSTRAINT webhook_delivery_pkey PRIMARY KEY (id);

--
-- Name: webhook_endpoint webhook_endpoint_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_endpoint
    ADD CONSTRAINT webhook_endpoint_pkey PRIMARY KEY (id);

--
-- Name: webhook_endpoint webhook_endpoint_reseller_id_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_endpoint
    ADD CONSTRAINT webhook_endpoint_reseller_id_id_key UNIQUE (reseller_id, id);

--
-- Name: webhook_event webhook_event_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_event
    ADD CONSTRAINT webhook_event_pkey PRIMARY KEY (id);

--
-- Name: webhook_requeue webhook_requeue_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_requeue
    ADD CONSTRAINT webhook_requeue_pkey PRIMARY KEY (id);

--
-- Name: webhook_settings webhook_settings_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_settings
    ADD CONSTRAINT webhook_settings_pkey PRIMARY KEY (id);

--
-- Name: account_code_kind; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX account_code_kind ON public.account_code USING btree (reseller_id, account_kind) NULLS NOT DISTINCT;

--
-- Name: api_key_owner; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX api_key_owner ON public.api_key USING btree (reseller_id, sub_account_id);

--
-- Name: audit_log_tenant; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX audit_log_tenant ON public.audit_log USING btree (reseller_id, id);

--
-- Name: billing_profile_customer; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX billing_profile_customer ON public.billing_profile USING btree (reseller_id, sub_account_id) NULLS NOT DISTINCT;

--
-- Name: contact_group_member_contact; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX contact_group_member_contact ON public.contact_group_member USING btree (reseller_id, contact_id);

--
-- Name: contact_group_name; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX contact_group_name ON public.contact_group USING btree (reseller_id, sub_account_id, lower(name));

--
-- Name: idempotency_record_age; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idempotency_record_age ON public.idempotency_record USING btree (created_at);

--
-- Name: invoice_by_customer; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX invoice_by_customer ON public.invoice USING btree (customer_reseller_id, customer_sub_account_id, created_at, id);

--
-- Name: invoice_by_issuer; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX invoice_by_issuer ON public.invoice USING btree (issuer_reseller_id, created_at, id);

--
-- Name: invoice_corrections; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX invoice_corrections ON public.invoice USING btree (corrects_invoice_id) WHERE (corrects_invoice_id IS NOT NULL);

--
-- Name: invoice_number; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX invoice_number ON public.invoice USING btree (issuer_reseller_id, number) NULLS NOT DISTINCT WHERE (number IS NOT NULL);

--
-- Name: invoice_purchase_once; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX invoice_purchase_once ON public.invoice USING btree (purchase_transfer_id) WHERE ((source = 'purchase'::text) AND (status <> 'voided'::text));

--
-- Name: invoice_usage_once; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX invoice_usage_once ON public.invoice USING btree (customer_reseller_id, customer_sub_account_id, period_start) NULLS NOT DISTINCT WHERE ((source = 'usage'::text) AND (status <> 'voided'::text));

--
-- Name: issuer_profile_issuer; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX issuer_profile_issuer ON public.issuer_profile USING btree (reseller_id) NULLS NOT DISTINCT;

--
-- Name: ledger_account_owner; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ledger_account_owner ON public.ledger_account USING btree (kind, reseller_id, sub_account_id, upstream_connection_id) NULLS NOT DISTINCT;

--
-- Name: ledger_account_tenant; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ledger_account_tenant ON public.ledger_account USING btree (reseller_id, sub_account_id);

--
-- Name: ledger_event_tenant; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ledger_event_tenant ON public.ledger_event USING btree (reseller_id, id);

--
-- Name: ledger_transfer_created_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ledger_transfer_created_at ON public.ledger_transfer USING btree (created_at);

--
-- Name: ledger_transfer_credit; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ledger_transfer_credit ON public.ledger_transfer USING btree (credit_account_id, seq);

--
-- Name: ledger_transfer_debit; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ledger_transfer_debit ON public.ledger_transfer USING btree (debit_account_id, seq);

--
-- Name: ledger_transfer_expiry; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ledger_transfer_expiry ON public.ledger_transfer USING btree (timeout_at) WHERE ((state = 'pending'::text) AND (timeout_at IS NOT NULL));

--
-- Name: ledger_transfer_message_reference; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ledger_transfer_message_reference ON public.ledger_transfer USING btree (reference) WHERE (code = ANY (ARRAY['late_delivery'::text, 'upstream_cost'::text]));

--
-- Name: ledger_transfer_resolution; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ledger_transfer_resolution ON public.ledger_transfer USING btree (pending_id) WHERE (pending_id IS NOT NULL);

--
-- Name: message_accepted_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX message_accepted_at ON public.message USING btree (accepted_at);

--
-- Name: message_awaiting_report; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX message_awaiting_report ON public.message USING btree (submitted_at) WHERE (status = 'submitted'::text);

--
-- Name: message_batch_position; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX message_batch_position ON public.message USING btree (batch_id, "position");

--
-- Name: message_batch_sub_account; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX message_batch_sub_account ON public.message_batch USING btree (sub_account_id, accepted_at DESC, id DESC);

--
-- Name: message_gateway_id; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX message_gateway_id ON public.message USING btree (gateway_id);

--
-- Name: message_outbox_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX message_outbox_due ON public.message_outbox USING btree (connection_id, due_at);

--
-- Name: message_outbox_reseller; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX message_outbox_reseller ON public.message_outbox USING btree (reseller_id);

--
-- Name: message_recipient; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX message_recipient ON public.message USING btree (sub_account_id, recipient);

--
-- Name: message_scheduled; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX message_scheduled ON public.message USING btree (sub_account_id) WHERE (status = 'scheduled'::text);

--
-- Name: message_sub_account; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX message_sub_account ON public.message USING btree (sub_account_id, accepted_at DESC, id DESC);

--
-- Name: message_upstream_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX message_upstream_id ON public.message USING btree (upstream_id) WHERE (upstream_id IS NOT NULL);

--
-- Name: refund_policy_owner; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX refund_policy_owner ON public.refund_policy USING btree (reseller_id, layer, sub_account_id) NULLS NOT DISTINCT;

--
-- Name: reseller_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX reseller_status ON public.reseller USING btree (status, id);

--
-- Name: reseller_upstream_connection_connection; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX reseller_upstream_connection_connection ON public.reseller_upstream_connection USING btree (connection_id);

--
-- Name: reseller_wholesale_price_list_list; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX reseller_wholesale_price_list_list ON public.reseller_wholesale_price_list USING btree (price_list_id);

--
-- Name: sender_name_live; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX sender_name_live ON public.sender_name USING btree (sub_account_id, lower(name)) WHERE (status = ANY (ARRAY['pending'::text, 'pending_admin'::text, 'approved'::text]));

--
-- Name: sender_name_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX sender_name_status ON public.sender_name USING btree (reseller_id, status, id);

--
-- Name: sub_account_retail_price_list_list; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX sub_account_retail_price_list_list ON public.sub_account_retail_price_list USING btree (reseller_id, price_list_id);

--
-- Name: sub_account_username; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX sub_account_username ON public.sub_account USING btree (lower(username));

--
-- Name: unmatched_delivery_report_received; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX unmatched_delivery_report_received ON public.unmatched_delivery_report USING btree (received_at);

--
-- Name: upstream_connection_name; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX upstream_connection_name ON public.upstream_connection USING btree (lower(name));

--
-- Name: upstream_credit_snapshot_connection; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX upstream_credit_snapshot_connection ON public.upstream_credit_snapshot USING btree (connection_id, taken_at DESC, id DESC);

--
-- Name: upstream_credit_snapshot_purchase_snapshot; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX upstream_credit_snapshot_purchase_snapshot ON public.upstream_credit_snapshot_purchase USING btree (snapshot_id);

--
-- Name: upstream_purchase_connection; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX upstream_purchase_connection ON public.upstream_purchase USING btree (connection_id, created_at DESC, id DESC);

--
-- Name: upstream_purchase_invoice; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX upstream_purchase_invoice ON public.upstream_purchase USING btree (connection_id, invoice_reference);

--
-- Name: upstream_reconciliation_run_connection; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX upstream_reconciliation_run_connection ON public.upstream_reconciliation_run USING btree (connection_id, started_at DESC);

--
-- Name: usage_money_hour_reseller; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX usage_money_hour_reseller ON public.usage_money_hour USING btree (reseller_id, hour);

--
-- Name: usage_money_hour_sub_account; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX usage_money_hour_sub_account ON public.usage_money_hour USING btree (sub_account_id, hour);

--
-- Name: webhook_attempt_delivery; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_attempt_delivery ON ONLY public.webhook_attempt USING btree (delivery_id, id);

--
-- Name: webhook_attempt_default_delivery_id_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_attempt_default_delivery_id_id_idx ON public.webhook_attempt_default USING btree (delivery_id, id);

--
-- Name: webhook_delivery_callback_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_delivery_callback_due ON public.webhook_delivery USING btree (due_at) WHERE ((state = 'pending'::text) AND (endpoint_id IS NULL));

--
-- Name: webhook_delivery_endpoint; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_delivery_endpoint ON public.webhook_delivery USING btree (endpoint_id, created_at DESC);

--
-- Name: webhook_delivery_endpoint_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_delivery_endpoint_due ON public.webhook_delivery USING btree (endpoint_id, due_at) WHERE (state = 'pending'::text);

--
-- Name: webhook_delivery_event; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_delivery_event ON public.webhook_delivery USING btree (event_id);

--
-- Name: webhook_delivery_finished; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_delivery_finished ON public.webhook_delivery USING btree (finished_at) WHERE (state <> 'pending'::text);

--
-- Name: webhook_delivery_in_flight; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_delivery_in_flight ON public.webhook_delivery USING btree (endpoint_id) WHERE ((state = 'pending'::text) AND (leased_by IS NOT NULL));

--
-- Name: webhook_endpoint_owner; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_endpoint_owner ON public.webhook_endpoint USING btree (reseller_id, sub_account_id) WHERE (status = 'active'::text);

--
-- Name: webhook_endpoint_platform; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_endpoint_platform ON public.webhook_endpoint USING btree (created_at) WHERE (reseller_id IS NULL);

--
-- Name: webhook_event_age; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_event_age ON public.webhook_event USING btree (occurred_at);

--
-- Name: webhook_event_owner; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_event_owner ON public.webhook_event USING btree (reseller_id, occurred_at);

--
-- Name: webhook_event_platform; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_event_platform ON public.webhook_event USING btree (occurred_at) WHERE (reseller_id IS NULL);

--
-- Name: webhook_requeue_endpoint; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_requeue_endpoint ON public.webhook_requeue USING btree (endpoint_id, kind, called_at);

--
-- Name: message_event_default_pkey; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.message_event_pkey ATTACH PARTITION public.message_event_default_pkey;

--
-- Name: webhook_attempt_default_delivery_id_id_idx; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.webhook_attempt_delivery ATTACH PARTITION public.webhook_attempt_default_delivery_id_id_idx;

--
-- Name: webhook_attempt_default_pkey; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.webhook_attempt_pkey ATTACH PARTITION public.webhook_attempt_default_pkey;

--
-- Name: audit_log audit_log_append_only; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_log_append_only BEFORE DELETE OR UPDATE ON public.audit_log FOR EACH ROW EXECUTE FUNCTION public.audit_log_refuse_change();

--
-- Name: audit_log audit_log_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON public.audit_log FOR EACH STATEMENT EXECUTE FUNCTION public.audit_log_refuse_change();

--
-- Name: contact_group contact_group_touch; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER contact_group_touch BEFORE UPDATE ON public.contact_group FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();

--
-- Name: contact contact_touch; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER contact_touch BEFORE UPDATE ON public.contact FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();

--
-- Name: invoice invoice_immutable; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER invoice_immutable BEFORE DELETE OR UPDATE ON public.invoice FOR EACH ROW EXECUTE FUNCTION public.invoice_guard();

--
-- Name: invoice_line invoice_line_immutable; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER invoice_line_immutable BEFORE INSERT OR DELETE OR UPDATE ON public.invoice_line FOR EACH ROW EXECUTE FUNCTION public.invoice_part_guard();

--
-- Name: invoice_line invoice_line_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER invoice_line_no_truncate BEFORE TRUNCATE ON public.invoice_line FOR EACH STATEMENT EXECUTE FUNCTION public.invoice_no_truncate();

--
-- Name: invoice invoice_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER invoice_no_truncate BEFORE TRUNCATE ON public.invoice FOR EACH STATEMENT EXECUTE FUNCTION public.invoice_no_truncate();

--
-- Name: invoice_vat invoice_vat_immutable; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER invoice_vat_immutable BEFORE INSERT OR DELETE OR UPDATE ON public.invoice_vat FOR EACH ROW EXECUTE FUNCTION public.invoice_part_guard();

--
-- Name: invoice_vat invoice_vat_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER invoice_vat_no_truncate BEFORE TRUNCATE ON public.invoice_vat FOR EACH STATEMENT EXECUTE FUNCTION public.invoice_no_truncate();

--
-- Name: ledger_account ledger_account_touch; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER ledger_account_touch BEFORE UPDATE ON public.ledger_account FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();

--
-- Name: ledger_event ledger_event_webhook; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER ledger_event_webhook AFTER INSERT ON public.ledger_event FOR EACH ROW EXECUTE FUNCTION public.webhook_ledger_event();

--
-- Name: ledger_transfer ledger_transfer_append_only; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER ledger_transfer_append_only BEFORE DELETE OR UPDATE ON public.ledger_transfer FOR EACH ROW EXECUTE FUNCTION public.ledger_transfer_guard();

--
-- Name: ledger_transfer ledger_transfer_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER ledger_transfer_no_truncate BEFORE TRUNCATE ON public.ledger_transfer FOR EACH STATEMENT EXECUTE FUNCTION public.audit_log_refuse_change();

--
-- Name: message_event message_event_buffered_webhook; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER message_event_buffered_webhook AFTER INSERT ON public.message_event FOR EACH ROW WHEN ((new.status = 'report:buffered'::text)) EXECUTE FUNCTION public.webhook_message_buffered();

--
-- Name: upstream_connection_default message_outbox_default_connection; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER message_outbox_default_connection AFTER INSERT OR DELETE OR UPDATE ON public.upstream_connection_default FOR EACH STATEMENT EXECUTE FUNCTION public.message_outbox_follow_default_connection();

--
-- Name: reseller_upstream_connection message_outbox_reseller_connection; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER message_outbox_reseller_connection AFTER INSERT OR DELETE OR UPDATE ON public.reseller_upstream_connection FOR EACH ROW EXECUTE FUNCTION public.message_outbox_follow_reseller_connection();

--
-- Name: message message_webhook; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER message_webhook AFTER UPDATE OF status ON public.message FOR EACH ROW WHEN ((old.status IS DISTINCT FROM new.status)) EXECUTE FUNCTION public.webhook_message_status_changed();

--
-- Name: platform_price_entry platform_price_entry_append_only; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER platform_price_entry_append_only BEFORE DELETE OR UPDATE ON public.platform_price_entry FOR EACH ROW EXECUTE FUNCTION public.price_history_refuse_change();

--
-- Name: platform_price_entry platform_price_entry_complete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER platform_price_entry_complete AFTER INSERT ON public.platform_price_entry REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION public.platform_price_entry_same_transaction();

--
-- Name: platform_price_entry platform_price_entry_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER platform_price_entry_no_truncate BEFORE TRUNCATE ON public.platform_price_entry FOR EACH STATEMENT EXECUTE FUNCTION public.price_history_refuse_change();

--
-- Name: platform_price_list platform_price_list_touch; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER platform_price_list_touch BEFORE UPDATE ON public.platform_price_list FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();

--
-- Name: platform_price_version platform_price_version_append_only; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER platform_price_version_append_only BEFORE DELETE OR UPDATE ON public.platform_price_version FOR EACH ROW EXECUTE FUNCTION public.price_history_refuse_change();

--
-- Name: platform_price_version platform_price_version_complete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE CONSTRAINT TRIGGER platform_price_version_complete AFTER INSERT ON public.platform_price_version DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.platform_price_version_count_check();

--
-- Name: platform_price_version platform_price_version_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER platform_price_version_no_truncate BEFORE TRUNCATE ON public.platform_price_version FOR EACH STATEMENT EXECUTE FUNCTION public.price_history_refuse_change();

--
-- Name: reseller reseller_ledger_accounts; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER reseller_ledger_accounts AFTER INSERT ON public.reseller FOR EACH ROW EXECUTE FUNCTION public.ledger_open_reseller_accounts();

--
-- Name: reseller reseller_touch; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER reseller_touch BEFORE UPDATE ON public.reseller FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();

--
-- Name: reseller reseller_webhook; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER reseller_webhook AFTER UPDATE OF status ON public.reseller FOR EACH ROW WHEN ((old.status IS DISTINCT FROM new.status)) EXECUTE FUNCTION public.webhook_account_status_changed();

--
-- Name: retail_price_entry retail_price_entry_append_only; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER retail_price_entry_append_only BEFORE DELETE OR UPDATE ON public.retail_price_entry FOR EACH ROW EXECUTE FUNCTION public.price_history_refuse_change();

--
-- Name: retail_price_entry retail_price_entry_complete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER retail_price_entry_complete AFTER INSERT ON public.retail_price_entry REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION public.retail_price_entry_same_transaction();

--
-- Name: retail_price_entry retail_price_entry_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER retail_price_entry_no_truncate BEFORE TRUNCATE ON public.retail_price_entry FOR EACH STATEMENT EXECUTE FUNCTION public.price_history_refuse_change();

--
-- Name: retail_price_list retail_price_list_touch; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER retail_price_list_touch BEFORE UPDATE ON public.retail_price_list FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();

--
-- Name: retail_price_version retail_price_version_append_only; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER retail_price_version_append_only BEFORE DELETE OR UPDATE ON public.retail_price_version FOR EACH ROW EXECUTE FUNCTION public.price_history_refuse_change();

--
-- Name: retail_price_version retail_price_version_complete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE CONSTRAINT TRIGGER retail_price_version_complete AFTER INSERT ON public.retail_price_version DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.retail_price_version_count_check();

--
-- Name: retail_price_version retail_price_version_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER retail_price_version_no_truncate BEFORE TRUNCATE ON public.retail_price_version FOR EACH STATEMENT EXECUTE FUNCTION public.price_history_refuse_change();

--
-- Name: sender_name sender_name_touch; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER sender_name_touch BEFORE UPDATE ON public.sender_name FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();

--
-- Name: sender_name sender_name_webhook; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER sender_name_webhook AFTER INSERT OR UPDATE OF status ON public.sender_name FOR EACH ROW EXECUTE FUNCTION public.webhook_sender_name_decided();

--
-- Name: sub_account sub_account_ledger_wallet; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER sub_account_ledger_wallet AFTER INSERT ON public.sub_account FOR EACH ROW EXECUTE FUNCTION public.ledger_open_sub_account_wallet();

--
-- Name: sub_account sub_account_touch; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER sub_account_touch BEFORE UPDATE ON public.sub_account FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();

--
-- Name: sub_account sub_account_webhook; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER sub_account_webhook AFTER UPDATE OF status ON public.sub_account FOR EACH ROW WHEN ((old.status IS DISTINCT FROM new.status)) EXECUTE FUNCTION public.webhook_account_status_changed();

--
-- Name: upstream_connection upstream_connection_ledger_accounts; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER upstream_connection_ledger_accounts AFTER INSERT ON public.upstream_connection FOR EACH ROW EXECUTE FUNCTION public.ledger_open_upstream_accounts();

--
-- Name: upstream_connection upstream_connection_touch; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER upstream_connection_touch BEFORE UPDATE ON public.upstream_connection FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();

--
-- Name: webhook_endpoint webhook_endpoint_touch; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER webhook_endpoint_touch BEFORE UPDATE ON public.webhook_endpoint FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();

--
-- Name: account_code account_code_reseller_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.account_code
    ADD CONSTRAINT account_code_reseller_id_fkey FOREIGN KEY (reseller_id) REFERENCES public.reseller(id);

--
-- Name: api_key api_key_reseller_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_key
    ADD CONSTRAINT api_key_reseller_id_fkey FOREIGN KEY (reseller_id) REFERENCES public.reseller(id);

--
-- Name: api_key api_key_reseller_id_sub_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_key
    ADD CONSTRAINT api_key_reseller_id_sub_account_id_fkey FOREIGN KEY (reseller_id, sub_account_id) REFERENCES public.sub_account(reseller_id, id);

--
-- Name: billing_profile billing_profile_reseller_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.billing_profile
    ADD CONSTRAINT billing_profile_reseller_id_fkey FOREIGN KEY (reseller_id) REFERENCES public.reseller(id);

--
-- Name: billing_profile billing_profile_reseller_id_sub_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.billing_profile
    ADD CONSTRAINT billing_profile_reseller_id_sub_account_id_fkey FOREIGN KEY (reseller_id, sub_account_id) REFERENCES public.sub_account(reseller_id, id);

--
-- Name: contact_group_member contact_group_member_reseller_id_sub_account_id_contact_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.contact_group_member
    ADD CONSTRAINT contact_group_member_reseller_id_sub_account_id_contact_id_fkey FOREIGN KEY (reseller_id, sub_account_id, contact_id) REFERENCES public.contact(reseller_id, sub_account_id, id) ON DELETE CASCADE;

--
-- Name: contact_group_member contact_group_member_reseller_id_sub_account_id_group_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.contact_group_member
    ADD CONSTRAINT contact_group_member_reseller_id_sub_account_id_group_id_fkey FOREIGN KEY (reseller_id, sub_account_id, group_id) REFERENCES public.contact_group(reseller_id, sub_account_id, id) ON DELETE CASCADE;

--
-- Name: contact_group contact_group_reseller_id_sub_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.contact_group
    ADD CONSTRAINT contact_group_reseller_id_sub_account_id_fkey FOREIGN KEY (reseller_id, sub_account_id) REFERENCES public.sub_account(reseller_id, id);

--
-- Name: contact contact_reseller_id_sub_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.contact
    ADD CONSTRAINT contact_reseller_id_sub_account_id_fkey FOREIGN KEY (reseller_id, sub_account_id) REFERENCES public.sub_account(reseller_id, id);

--
-- Name: invoice invoice_corrects_invoice_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.invoice
    ADD CONSTRAINT invoice_corrects_invoice_id_fkey FOREIGN KEY (corrects_invoice_id) REFERENCES public.invoice(id);

--
-- Name: invoice invoice_customer_reseller_id_customer_sub_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.invoice
    ADD CONSTRAINT invoice_customer_reseller_id_customer_sub_account_id_fkey FOREIGN KEY (customer_reseller_id, customer_sub_account_id) REFERENCES public.sub_account(reseller_id, id);

--
-- Name: invoice invoice_customer_reseller_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.invoice
    ADD CONSTRAINT invoice_customer_reseller_id_fkey FOREIGN KEY (customer_reseller_id) REFERENCES public.reseller(id);

--
-- Name: invoice invoice_issuer_reseller_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.invoice
    ADD CONSTRAINT invoice_issuer_reseller_id_fkey FOREIGN KEY (issuer_reseller_id) REFERENCES public.reseller(id);

--
-- Name: invoice_line invoice_line_invoice_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.invoice_line
    ADD CONSTRAINT invoice_line_invoice_id_fkey FOREIGN KEY (invoice_id) REFERENCES public.invoice(id);

--
-- Name: invoice invoice_purchase_transfer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.invoice
    ADD CONSTRAINT invoice_purchase_transfer_id_fkey FOREIGN KEY (purchase_transfer_id) REFERENCES public.ledger_transfer(id);

--
-- Name: invoice_vat invoice_vat_invoice_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.invoice_vat
    ADD CONSTRAINT invoice_vat_invoice_id_fkey FOREIGN KEY (invoice_id) REFERENCES public.invoice(id);

--
-- Name: issuer_profile issuer_profile_reseller_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.issuer_profile
    ADD CONSTRAINT issuer_profile_reseller_id_fkey FOREIGN KEY (reseller_id) REFERENCES public.reseller(id);

--
-- Name: ledger_account ledger_account_reseller_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ledger_account
    ADD CONSTRAINT ledger_account_reseller_id_fkey FOREIGN KEY (reseller_id) REFERENCES public.reseller(id);

--
-- Name: ledger_account ledger_account_reseller_id_sub_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ledger_account
    ADD CONSTRAINT ledger_account_reseller_id_sub_account_id_fkey FOREIGN KEY (reseller_id, sub_account_id) REFERENCES public.sub_account(reseller_id, id);

--
-- Name: ledger_account ledger_account_upstream_connection_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ledger_account
    ADD CONSTRAINT ledger_account_upstream_connection_id_fkey FOREIGN KEY (upstream_connection_id) REFERENCES public.upstream_connection(id);

--
-- Name: ledger_event ledger_event_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ledger_event
    ADD CONSTRAINT ledger_event_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.ledger_account(id);

--
-- Name: ledger_transfer ledger_transfer_credit_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ledger_transfer
    ADD CONSTRAINT ledger_transfer_credit_account_id_fkey FOREIGN KEY (credit_account_id) REFERENCES public.ledger_account(id);

--
-- Name: ledger_transfer ledger_transfer_debit_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ledger_transfer
    ADD CONSTRAINT ledger_transfer_debit_account_id_fkey FOREIGN KEY (debit_account_id) REFERENCES public.ledger_account(id);

--
-- Name: ledger_transfer ledger_transfer_pending_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ledger_transfer
    ADD CONSTRAINT ledger_transfer_pending_id_fkey FOREIGN KEY (pending_id) REFERENCES public.ledger_transfer(id);

--
-- Name: ledger_transfer ledger_transfer_reseller_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ledger_transfer
    ADD CONSTRAINT ledger_transfer_reseller_id_fkey FOREIGN KEY (reseller_id) REFERENCES public.reseller(id);

--
-- Name: message_batch message_batch_reseller_id_sub_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.message_batch
    ADD CONSTRAINT message_batch_reseller_id_sub_account_id_fkey FOREIGN KEY (reseller_id, sub_account_id) REFERENCES public.sub_account(reseller_id, id);

--
-- Name: message_outbox message_outbox_message_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.message_outbox
    ADD CONSTRAINT message_outbox_message_id_fkey FOREIGN KEY (message_id) REFERENCES public.message(id);

--
-- Name: message message_reseller_id_batch_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.message
    ADD CONSTRAINT message_reseller_id_batch_id_fkey FOREIGN KEY (reseller_id, batch_id) REFERENCES public.message_batch(reseller_id, id);

--
-- Name: message message_retail_reservation_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.message
    ADD CONSTRAINT message_retail_reservation_id_fkey FOREIGN KEY (retail_reservation_id) REFERENCES public.ledger_transfer(id);

--
-- Name: message message_upstream_cost_transfer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.message
    ADD CONSTRAINT message_upstream_cost_transfer_id_fkey FOREIGN KEY (upstream_cost_transfer_id) REFERENCES public.ledger_transfer(id);

--
-- Name: message message_wholesale_reservation_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.message
    ADD CONSTRAINT message_wholesale_reservation_id_fkey FOREIGN KEY (wholesale_reservation_id) REFERENCES public.ledger_transfer(id);

--
-- Name: platform_price_default platform_price_default_layer_price_list_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platform_price_default
    ADD CONSTRAINT platform_price_default_layer_price_list_id_fkey FOREIGN KEY (layer, price_list_id) REFERENCES public.platform_price_list(layer, id);

--
-- Name: platform_price_entry platform_price_entry_version_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platform_price_entry
    ADD CONSTRAINT platform_price_entry_version_id_fkey FOREIGN KEY (version_id) REFERENCES public.platform_price_version(id);

--
-- Name: platform_price_version platform_price_version_price_list_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platform_price_version
    ADD CONSTRAINT platform_price_version_price_list_id_fkey FOREIGN KEY (price_list_id) REFERENCES public.platform_price_list(id);

--
-- Name: refund_policy refund_policy_reseller_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.refund_policy
    ADD CONSTRAINT refund_policy_reseller_id_fkey FOREIGN KEY (reseller_id) REFERENCES public.reseller(id);

--
-- Name: refund_policy refund_policy_reseller_id_sub_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.refund_policy
    ADD CONSTRAINT refund_policy_reseller_id_sub_account_id_fkey FOREIGN KEY (reseller_id, sub_account_id) REFERENCES public.sub_account(reseller_id, id);

--
-- Name: reseller_default_retail_price_list reseller_default_retail_price_li_reseller_id_price_list_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.reseller_default_retail_price_list
    ADD CONSTRAINT reseller_default_retail_price_li_reseller_id_price_list_id_fkey FOREIGN KEY (reseller_id, price_list_id) REFERENCES public.retail_price_list(reseller_id, id);

--
-- Name: reseller_default_retail_price_list reseller_default_retail_price_list_reseller_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.reseller_default_retail_price_list
    ADD CONSTRAINT reseller_default_retail_price_list_reseller_id_fkey FOREIGN KEY (reseller_id) REFERENCES public.reseller(id);

--
-- Name: reseller_upstream_connection reseller_upstream_connection_connection_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.reseller_upstream_connection
    ADD CONSTRAINT reseller_upstream_connection_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES public.upstream_connection(id);

--
-- Name: reseller_upstream_connection reseller_upstream_connection_reseller_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.reseller_upstream_connection
    ADD CONSTRAINT reseller_upstream_connection_reseller_id_fkey FOREIGN KEY (reseller_id) REFERENCES public.reseller(id);

--
-- Name: reseller_wholesale_price_list reseller_wholesale_price_list_layer_price_list_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.reseller_wholesale_price_list
    ADD CONSTRAINT reseller_wholesale_price_list_layer_price_list_id_fkey FOREIGN KEY (layer, price_list_id) REFERENCES public.platform_price_list(layer, id);

--
-- Name: reseller_wholesale_price_list reseller_wholesale_price_list_reseller_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.reseller_wholesale_price_list
    ADD CONSTRAINT reseller_wholesale_price_list_reseller_id_fkey FOREIGN KEY (reseller_id) REFERENCES public.reseller(id);

--
-- Name: retail_price_entry retail_price_entry_reseller_id_version_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.retail_price_entry
    ADD CONSTRAINT retail_price_entry_reseller_id_version_id_fkey FOREIGN KEY (reseller_id, version_id) REFERENCES public.retail_price_version(reseller_id, id);

--
-- Name: retail_price_list retail_price_list_reseller_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.retail_price_list
    ADD CONSTRAINT retail_price_list_reseller_id_fkey FOREIGN KEY (reseller_id) REFERENCES public.reseller(id);

--
-- Name: retail_price_version retail_price_version_reseller_id_price_list_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.retail_price_version
    ADD CONSTRAINT retail_price_version_reseller_id_price_list_id_fkey FOREIGN KEY (reseller_id, price_list_id) REFERENCES public.retail_price_list(reseller_id, id);

--
-- Name: sender_name sender_name_reseller_id_sub_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sender_name
    ADD CONSTRAINT sender_name_reseller_id_sub_account_id_fkey FOREIGN KEY (reseller_id, sub_account_id) REFERENCES public.sub_account(reseller_id, id);

--
-- Name: sub_account sub_account_reseller_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sub_account
    ADD CONSTRAINT sub_account_reseller_id_fkey FOREIGN KEY (reseller_id) REFERENCES public.reseller(id);

--
-- Name: sub_account_retail_price_list sub_account_retail_price_list_reseller_id_price_list_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sub_account_retail_price_list
    ADD CONSTRAINT sub_account_retail_price_list_reseller_id_price_list_id_fkey FOREIGN KEY (reseller_id, price_list_id) REFERENCES public.retail_price_list(reseller_id, id);

--
-- Name: sub_account_retail_price_list sub_account_retail_price_list_reseller_id_sub_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sub_account_retail_price_list
    ADD CONSTRAINT sub_account_retail_price_list_reseller_id_sub_account_id_fkey FOREIGN KEY (reseller_id, sub_account_id) REFERENCES public.sub_account(reseller_id, id);

--
-- Name: transfer_payment transfer_payment_transfer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.transfer_payment
    ADD CONSTRAINT transfer_payment_transfer_id_fkey FOREIGN KEY (transfer_id) REFERENCES public.ledger_transfer(id);

--
-- Name: upstream_connection_default upstream_connection_default_connection_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_connection_default
    ADD CONSTRAINT upstream_connection_default_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES public.upstream_connection(id);

--
-- Name: upstream_credit_snapshot upstream_credit_snapshot_connection_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_credit_snapshot
    ADD CONSTRAINT upstream_credit_snapshot_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES public.upstream_connection(id);

--
-- Name: upstream_credit_snapshot_purchase upstream_credit_snapshot_purchase_purchase_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_credit_snapshot_purchase
    ADD CONSTRAINT upstream_credit_snapshot_purchase_purchase_id_fkey FOREIGN KEY (purchase_id) REFERENCES public.upstream_purchase(id);

--
-- Name: upstream_credit_snapshot_purchase upstream_credit_snapshot_purchase_snapshot_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_credit_snapshot_purchase
    ADD CONSTRAINT upstream_credit_snapshot_purchase_snapshot_id_fkey FOREIGN KEY (snapshot_id) REFERENCES public.upstream_credit_snapshot(id);

--
-- Name: upstream_credit_snapshot upstream_credit_snapshot_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_credit_snapshot
    ADD CONSTRAINT upstream_credit_snapshot_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.upstream_reconciliation_run(id);

--
-- Name: upstream_purchase upstream_purchase_connection_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_purchase
    ADD CONSTRAINT upstream_purchase_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES public.upstream_connection(id);

--
-- Name: upstream_purchase upstream_purchase_transfer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_purchase
    ADD CONSTRAINT upstream_purchase_transfer_id_fkey FOREIGN KEY (transfer_id) REFERENCES public.ledger_transfer(id);

--
-- Name: upstream_reconciliation_day upstream_reconciliation_day_connection_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_reconciliation_day
    ADD CONSTRAINT upstream_reconciliation_day_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES public.upstream_connection(id);

--
-- Name: upstream_reconciliation_day upstream_reconciliation_day_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_reconciliation_day
    ADD CONSTRAINT upstream_reconciliation_day_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.upstream_reconciliation_run(id);

--
-- Name: upstream_reconciliation_run upstream_reconciliation_run_connection_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_reconciliation_run
    ADD CONSTRAINT upstream_reconciliation_run_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES public.upstream_connection(id);

--
-- Name: upstream_reconciliation_state upstream_reconciliation_state_baseline; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_reconciliation_state
    ADD CONSTRAINT upstream_reconciliation_state_baseline FOREIGN KEY (baseline_snapshot_id) REFERENCES public.upstream_credit_snapshot(id);

--
-- Name: upstream_reconciliation_state upstream_reconciliation_state_connection_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_reconciliation_state
    ADD CONSTRAINT upstream_reconciliation_state_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES public.upstream_connection(id);

--
-- Name: webhook_attempt webhook_attempt_delivery_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.webhook_attempt
    ADD CONSTRAINT webhook_attempt_delivery_id_fkey FOREIGN KEY (delivery_id) REFERENCES public.webhook_delivery(id) ON DELETE CASCADE;

--
-- Name: webhook_delivery webhook_delivery_event_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_delivery
    ADD CONSTRAINT webhook_delivery_event_id_fkey FOREIGN KEY (event_id) REFERENCES public.webhook_event(id);

--
-- Name: webhook_endpoint webhook_endpoint_reseller_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_endpoint
    ADD CONSTRAINT webhook_endpoint_reseller_id_fkey FOREIGN KEY (reseller_id) REFERENCES public.reseller(id);

--
-- Name: webhook_endpoint webhook_endpoint_reseller_id_sub_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_endpoint
    ADD CONSTRAINT webhook_endpoint_reseller_id_sub_account_id_fkey FOREIGN KEY (reseller_id, sub_account_id) REFERENCES public.sub_account(reseller_id, id);

--
-- Name: webhook_requeue webhook_requeue_endpoint_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_requeue
    ADD CONSTRAINT webhook_requeue_endpoint_id_fkey FOREIGN KEY (endpoint_id) REFERENCES public.webhook_endpoint(id) ON DELETE CASCADE;

--
-- PostgreSQL database dump complete
--

