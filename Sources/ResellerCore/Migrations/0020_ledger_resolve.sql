-- Resolves reservations set-based: a group of delivery reports settles all its messages with one
-- call (before, ledger_apply_transfers resolved them one by one: per reservation a read, two
-- updates of the same hot account rows, the reservation's state and an insert, 0.52 ms each).
--
-- Arrays are parallel, one element per reservation: the reservation, the id of the resolving
-- transfer, whether it is posted (true: its whole amount is charged) or voided, the code and who
-- resolves it. Same rules and error codes as ledger_apply_transfers' post_pending and void_pending:
-- an unknown id or a transfer that is not a reservation is LE002, one already resolved (or named
-- twice in the call) LE003, posting one whose timeout has passed LE005; DETAIL is the index of the
-- offending element. Reservations, then accounts, are locked in id order; each account is updated
-- once with its sums; the resolutions are appended in the order given. Low-balance crossings are
-- recorded as ledger_apply_transfers records them, with the last resolution that touched the account.
CREATE FUNCTION ledger_resolve(pending_ids uuid[], ids uuid[], posts boolean[], codes text[], created_bys text[])
RETURNS void
LANGUAGE plpgsql AS $$
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
