-- Synthetic finance data for scripts/bench-finance.sh: one month of campaign traffic with the ledger transfers the
-- real service writes for it, in a database that `sms-reseller migrate` has just created (and nothing else).
--   psql -X -v ON_ERROR_STOP=1 -v messages=10000000 -v month=2026-11-01 -f scripts/bench-finance-data.sql DBNAME
-- Needs a superuser (the bulk part runs with session_replication_role = replica, so that foreign keys are not checked
-- row by row: the rows are consistent by construction). Set-based throughout; takes about an hour for 10 000 000.
--
-- What it makes:
--   * one upstream connection (the platform default), 100 resellers with 100 sub-accounts each (the ledger accounts
--     come from the product's own triggers);
--   * `messages` messages accepted in the month starting at `month` (UTC), sent as campaigns: message_batch rows of
--     1-300 recipients (about 100 on average), accepted at random times weighted to business hours and weekdays,
--     busier sub-accounts sending more; each batch's messages share accepted_at, sender and parts (1-3); recipients
--     in 10 calling codes (85 % in the sub-account's main country); per-part prices retail > wholesale > upstream cost;
--   * before the month: a top-up per reseller, a credit transfer per sub-account and an upstream purchase, enough to
--     pay for the month;
--   * per message the transfers the service writes, appended in time order (so `seq` follows `created_at`, as it does
--     in the service): the retail and the wholesale reservation at acceptance (`pending`, codes send_retail and
--     send_wholesale, linked, reference the message id), the `upstream_cost` posting seconds later (reference the
--     message id, message.upstream_cost_transfer_id), and 1-30 minutes after acceptance both reservations posted
--     (95 %, message_delivered) or voided (5 %, message_not_delivered) by `system:delivery-reports`, the reservations'
--     `state` set to match; a few resolutions fall after the month's end;
--   * the accounts' running sums from the transfers, VACUUM ANALYZE, and the usage rollup sealed through the month
--     and the day after (usage_seal called until sealed_until reaches it).
\set ON_ERROR_STOP 1
\if :{?messages}
\else
\set messages 10000000
\endif
\if :{?month}
\else
\set month 2026-11-01
\endif

SET client_min_messages = warning;
SET bench.month = :'month';
SET synchronous_commit = off;
SET maintenance_work_mem = '2GB';
SET work_mem = '1GB';
-- Serial plans: rows are generated in the order they are inserted in (the heap stays in time order, as in service).
SET max_parallel_workers_per_gather = 0;
SELECT setseed(0.20261101) \g /dev/null

DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;

-- A version 7 (time-ordered) UUID for an instant, as the service makes its ids (UUID.timeOrdered).
CREATE FUNCTION bench.uuid7(ts timestamptz) RETURNS uuid
LANGUAGE sql VOLATILE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
        PLACING substring(int8send(floor(extract(epoch FROM ts) * 1000)::bigint) FROM 3) FROM 1 FOR 6), 52, 1), 53, 1),
        'hex')::uuid
$$;

CREATE TABLE bench.param AS
SELECT (:'month')::date::timestamp AT TIME ZONE 'UTC' AS month_start,
       ((:'month')::date + interval '1 month')::timestamp AT TIME ZONE 'UTC' AS month_end,
       (:messages)::bigint AS messages;

-- ---------------------------------------------------------------------------------------------------------------
-- Tenants, with the product's triggers on (they open the ledger accounts).

INSERT INTO upstream_connection (id, name, base_url, username, password_secret, created_by, created_at)
SELECT gen_random_uuid(), 'Bench 1601', 'http://127.0.0.1:9', 'bench', '\x0062656e6368'::bytea, 'bench',
       month_start - interval '60 days'
FROM bench.param;
INSERT INTO upstream_connection_default (connection_id, assigned_by) SELECT id, 'bench' FROM upstream_connection;

INSERT INTO reseller (name, contact_email, created_at)
SELECT format('Bench reseller %s', lpad(r::text, 3, '0')), format('billing@reseller%s.example', r),
       p.month_start - interval '60 days' + r * interval '1 minute'
FROM bench.param p, generate_series(1, 100) r;

INSERT INTO sub_account (reseller_id, name, username, password_salt, password_iterations, password_hash, created_at)
SELECT r.id, format('%s customer %s', r.name, s), format('bench-%s-%s', right(r.name, 3), s), '\x00'::bytea, 1,
       '\x00'::bytea, r.created_at + s * interval '1 minute'
FROM reseller r, generate_series(1, 100) s;

-- ---------------------------------------------------------------------------------------------------------------
-- Generation parameters.

-- Calling codes: share of recipients, upstream cost and platform wholesale per part (minor units), national digits.
CREATE TABLE bench.country (i int, code text, weight float8, cost bigint, wholesale bigint, digits int);
INSERT INTO bench.country VALUES
    (1, '31', 40, 400, 550, 9), (2, '32', 8, 450, 600, 9), (3, '49', 12, 550, 720, 10), (4, '33', 8, 500, 680, 9),
    (5, '44', 8, 300, 420, 10), (6, '1', 5, 80, 150, 10), (7, '34', 5, 520, 700, 9), (8, '39', 4, 560, 740, 10),
    (9, '48', 5, 250, 380, 9), (10, '91', 5, 180, 290, 10);
CREATE TABLE bench.countries AS
SELECT array_agg(lo ORDER BY i) AS lows, array_agg(code ORDER BY i) AS codes, array_agg(cost ORDER BY i) AS costs,
       array_agg(wholesale ORDER BY i) AS wholesales, array_agg(digits ORDER BY i) AS digits,
       array_agg(gen_random_uuid() ORDER BY i) AS cost_versions, array_agg(gen_random_uuid() ORDER BY i) AS wholesale_versions,
       array_agg(gen_random_uuid() ORDER BY i) AS retail_versions
FROM (SELECT *, (sum(weight) OVER (ORDER BY i) - weight) / sum(weight) OVER () AS lo FROM bench.country) c;

-- The month's hours, weighted: business hours (UTC) busiest, weekends at a third.
CREATE TABLE bench.slots AS
WITH h AS (
    SELECT h AS start,
           (ARRAY[1, 1, 1, 1, 1, 2, 4, 8, 10, 10, 10, 10, 9, 10, 10, 10, 9, 7, 5, 4, 3, 2, 2, 1])[extract(hour FROM h AT TIME ZONE 'UTC')::int + 1]
           * CASE WHEN extract(isodow FROM h AT TIME ZONE 'UTC') >= 6 THEN 0.35 ELSE 1 END AS weight
    FROM bench.param p, generate_series(p.month_start, p.month_end - interval '1 hour', interval '1 hour') h
)
SELECT array_agg(lo ORDER BY start) AS lows, array_agg(start ORDER BY start) AS starts
FROM (SELECT start, (sum(weight) OVER (ORDER BY start) - weight) / sum(weight) OVER () AS lo FROM h) x;

-- Sub-accounts in a random order of activity (n = 1 sends most), with their accounts, API key, main country and
-- prices: the reseller's wholesale factor, the sub-account's retail markup on it.
CREATE TABLE bench.sub AS
WITH r AS (
    SELECT r.id AS reseller_id, 0.95 + 0.1 * random() AS wholesale_factor,
           (SELECT id FROM ledger_account WHERE kind = 'reseller_wallet' AND reseller_id = r.id) AS reseller_wallet,
           (SELECT id FROM ledger_account WHERE kind = 'reseller_revenue' AND reseller_id = r.id) AS revenue,
           (SELECT id FROM ledger_account WHERE kind = 'reseller_issuance' AND reseller_id = r.id) AS issuance,
           (SELECT id FROM ledger_account WHERE kind = 'platform_revenue' AND reseller_id = r.id) AS platform_revenue
    FROM reseller r
)
SELECT row_number() OVER (ORDER BY random()) AS n, s.reseller_id, s.id AS sub_account_id, a.id AS wallet,
       r.reseller_wallet, r.revenue, r.issuance, r.platform_revenue, r.wholesale_factor,
       1.15 + 0.5 * random() AS markup, 'key:' || gen_random_uuid() AS actor,
       width_bucket(random(), (SELECT lows FROM bench.countries)) AS main_country,
       upper(substr(md5(s.id::text), 1, 3 + (random() * 8)::int)) AS sender
FROM sub_account s
JOIN r ON r.reseller_id = s.reseller_id
JOIN ledger_account a ON a.kind = 'sub_account_wallet' AND a.sub_account_id = s.id;
CREATE UNIQUE INDEX ON bench.sub (n);
CREATE UNIQUE INDEX ON bench.sub (sub_account_id);

CREATE TABLE bench.upstream AS
SELECT c.id AS connection_id, b.id AS balance, k.id AS cost
FROM upstream_connection c
JOIN ledger_account b ON b.kind = 'upstream_balance' AND b.upstream_connection_id = c.id
JOIN ledger_account k ON k.kind = 'upstream_cost' AND k.upstream_connection_id = c.id;

-- Batches (campaigns), in acceptance order, with the offset of their first message. Sizes 1 + 300·u² (mean ~100);
-- enough are drawn, the last one kept is cut so that the messages add up exactly.
CREATE UNLOGGED TABLE bench.batch AS
WITH raw AS (
    SELECT g, 1 + floor(power(random(), 2) * 300)::int AS size,
           1 + floor(power(random(), 1.5) * 10000)::int AS sub_n,
           s.starts[width_bucket(random(), s.lows)] + random() * interval '1 hour' AS accepted_at,
           random() AS parts_draw, random() AS encoding_draw, random() AS length_draw
    FROM bench.param p, bench.slots s, generate_series(1, (p.messages * 1.3 / 100)::bigint + 20) g
), drawn AS (
    SELECT *, sum(size) OVER (ORDER BY g ROWS UNBOUNDED PRECEDING) - size AS before FROM raw
), kept AS (
    SELECT d.g, least(d.size, p.messages - d.before)::int AS size, d.size AS recipient_count, d.sub_n, d.accepted_at,
           d.parts_draw, d.encoding_draw, d.length_draw
    FROM drawn d, bench.param p WHERE d.before < p.messages
)
SELECT row_number() OVER (ORDER BY b.accepted_at, b.g) AS n, bench.uuid7(b.accepted_at) AS id, b.size,
       b.recipient_count, sum(b.size) OVER (ORDER BY b.accepted_at, b.g ROWS UNBOUNDED PRECEDING) - b.size AS first_message,
       b.accepted_at, CASE WHEN b.parts_draw < 0.70 THEN 1 WHEN b.parts_draw < 0.92 THEN 2 ELSE 3 END AS parts,
       CASE WHEN b.encoding_draw < 0.9 THEN 'gsm7' ELSE 'ucs2' END AS encoding, b.length_draw,
       s.reseller_id, s.sub_account_id, s.wallet, s.reseller_wallet, s.revenue, s.issuance, s.platform_revenue,
       s.wholesale_factor, s.markup, s.actor, s.main_country, s.sender
FROM kept b
JOIN bench.sub s ON s.n = b.sub_n
ORDER BY b.accepted_at, b.g;
DO $$
BEGIN
    IF (SELECT sum(size) FROM bench.batch) <> (SELECT messages FROM bench.param) THEN
        RAISE EXCEPTION 'drew too few batches: % messages of %', (SELECT sum(size) FROM bench.batch), (SELECT messages FROM bench.param);
    END IF;
END $$;

-- ---------------------------------------------------------------------------------------------------------------
-- The bulk: no row-by-row foreign key checks (the product's triggers are not needed past this point either).
SET session_replication_role = replica;

-- Messages, in acceptance order. Upstream cost posted 2 s + position/20 s after acceptance (the dispatcher's pace),
-- settled 1-30 minutes after acceptance.
INSERT INTO message (reseller_id, id, sub_account_id, batch_id, position, recipient, country, retail_price,
                     wholesale_price, upstream_cost, retail_version_id, wholesale_version_id, upstream_cost_version_id,
                     retail_reservation_id, wholesale_reservation_id, status, upstream_connection_id, upstream_id,
                     accepted_at, status_at, submitted_at, settled_at, reported_at, gateway_id, upstream_cost_transfer_id)
SELECT x.reseller_id, bench.uuid7(x.accepted_at), x.sub_account_id, x.batch_id, x.position,
       c.codes[x.ci] || lpad(floor(random() * power(10, c.digits[x.ci]))::bigint::text, c.digits[x.ci], '0'),
       c.codes[x.ci],
       x.parts * (round(round(c.wholesales[x.ci] * x.wholesale_factor) * x.markup / 5) * 5)::bigint,
       x.parts * round(c.wholesales[x.ci] * x.wholesale_factor)::bigint,
       x.parts * c.costs[x.ci],
       c.retail_versions[x.ci], c.wholesale_versions[x.ci], c.cost_versions[x.ci],
       bench.uuid7(x.accepted_at), bench.uuid7(x.accepted_at),
       CASE WHEN x.delivered THEN 'delivered' ELSE 'not_delivered' END, u.connection_id,
       (100000000 + x.number)::text,
       x.accepted_at, x.settled_at, x.submitted_at, x.settled_at, x.settled_at, 1000000 + x.number,
       bench.uuid7(x.submitted_at)
FROM (
    SELECT b.reseller_id, b.sub_account_id, b.id AS batch_id, b.parts, b.wholesale_factor, b.markup, b.accepted_at,
           m.position, b.first_message + m.position + 1 AS number,
           CASE WHEN random() < 0.85 THEN b.main_country ELSE width_bucket(random(), (SELECT lows FROM bench.countries)) END AS ci,
           random() < 0.95 AS delivered,
           b.accepted_at + (2 + m.position / 20.0 + random()) * interval '1 second' AS submitted_at,
           b.accepted_at + (60 + random() * 1740) * interval '1 second' AS settled_at
    FROM bench.batch b CROSS JOIN LATERAL generate_series(0, b.size - 1) AS m (position)
) x
CROSS JOIN bench.countries c
CROSS JOIN bench.upstream u;
SELECT setval('message_gateway_id_seq', (SELECT max(gateway_id) FROM message));

-- Batches, with their totals.
INSERT INTO message_batch (reseller_id, id, sub_account_id, sender, text, encoding, length, parts, long, reference,
                           recipient_count, message_count, retail_total, wholesale_total, created_by, request_id,
                           accepted_at)
SELECT b.reseller_id, b.id, b.sub_account_id, b.sender, left(t.text, t.length), b.encoding, t.length, b.parts,
       b.parts > 1, 'campaign-' || b.n, b.recipient_count, b.size, m.retail, m.wholesale, b.actor, b.id::text,
       b.accepted_at
FROM bench.batch b
JOIN (SELECT batch_id, sum(retail_price) AS retail, sum(wholesale_price) AS wholesale FROM message GROUP BY batch_id) m
  ON m.batch_id = b.id
CROSS JOIN LATERAL (
    SELECT repeat('Dear customer, our autumn offer is here: 20% off everything until Sunday. Reply STOP to opt out. ', 5) AS text,
           CASE WHEN b.encoding = 'gsm7'
                THEN (ARRAY[20, 161, 307])[b.parts] + floor(b.length_draw * (ARRAY[140, 145, 152])[b.parts])::int
                ELSE (ARRAY[10, 71, 135])[b.parts] + floor(b.length_draw * (ARRAY[60, 63, 66])[b.parts])::int
           END AS length
) t
ORDER BY b.n;

-- ---------------------------------------------------------------------------------------------------------------
-- The ledger. Money in first (before the month): a top-up per reseller covering its wholesale, a credit transfer per
-- sub-account covering its retail, each with a fifth to spare, rounded up to 100 credits; an upstream purchase.
CREATE TABLE bench.funding AS
WITH subs AS (
    SELECT s.*, coalesce(m.retail, 0) AS retail, coalesce(m.wholesale, 0) AS wholesale
    FROM bench.sub s
    LEFT JOIN (SELECT sub_account_id, sum(retail_price) AS retail, sum(wholesale_price) AS wholesale
               FROM message GROUP BY sub_account_id) m ON m.sub_account_id = s.sub_account_id
), credits AS (
    SELECT 1 AS step, reseller_id::text AS ord, NULL::uuid AS sub_account_id, reseller_id,
           (SELECT id FROM ledger_account WHERE kind = 'platform_funding') AS debit, reseller_wallet AS credit,
           (ceil(sum(wholesale) * 1.2 / 1000000) + 1)::bigint * 1000000 AS amount, 'top_up' AS code,
           'invoice bench-' || left(reseller_id::text, 8) AS reference, 'key:admin-bench' AS created_by
    FROM subs GROUP BY reseller_id, reseller_wallet
    UNION ALL
    SELECT 2, sub_account_id::text, sub_account_id, reseller_id, issuance, wallet,
           (ceil(retail * 1.2 / 1000000) + 1)::bigint * 1000000, 'credit_transfer', NULL, 'key:reseller-bench'
    FROM subs
    UNION ALL
    SELECT 0, '', NULL, NULL, (SELECT id FROM ledger_account WHERE kind = 'platform_funding'), u.balance,
           (ceil((SELECT sum(upstream_cost) FROM message) * 1.1 / 1000000) + 1)::bigint * 1000000, 'upstream_purchase',
           'bench upstream invoice 1', 'key:admin-bench'
    FROM bench.upstream u
)
SELECT c.*, p.month_start - interval '3 days' + row_number() OVER (ORDER BY step, ord) * interval '10 seconds' AS created_at
FROM credits c, bench.param p;
ALTER TABLE bench.funding ADD COLUMN id uuid;
UPDATE bench.funding SET id = bench.uuid7(created_at);

INSERT INTO ledger_transfer (id, debit_account_id, credit_account_id, amount, kind, code, reseller_id, sub_account_id,
                             reference, created_by, created_at)
SELECT id, debit, credit, amount, 'posted', code, reseller_id, sub_account_id, reference, created_by, created_at
FROM bench.funding ORDER BY created_at;
INSERT INTO upstream_purchase (id, connection_id, credits, amount_paid, currency, invoice_reference, transfer_id,
                               created_by, created_at)
SELECT gen_random_uuid(), u.connection_id, f.amount, f.amount * 9 / 10, 'EUR', f.reference, f.id, f.created_by,
       f.created_at
FROM bench.funding f, bench.upstream u WHERE f.code = 'upstream_purchase';

-- A message's transfers (its two reservations, its upstream cost, its two resolutions) that fall in [lo, hi), in
-- time order; called day by day below, so that `seq` follows `created_at` over the whole month.
CREATE FUNCTION bench.append_transfers(lo timestamptz, hi timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    appended bigint;
BEGIN
    INSERT INTO ledger_transfer (id, debit_account_id, credit_account_id, amount, kind, state, pending_id, linked_id,
                                 code, reseller_id, sub_account_id, reference, created_by, request_id, created_at)
    SELECT e.transfer_id, e.debit, e.credit, e.amount, e.kind, e.state, e.pending_id, e.linked_id, e.code, m.reseller_id,
           m.sub_account_id, e.reference, e.created_by, e.request_id, e.at
    FROM message m
    JOIN bench.sub s ON s.sub_account_id = m.sub_account_id
    CROSS JOIN bench.upstream u
    CROSS JOIN LATERAL (SELECT bench.uuid7(m.accepted_at) AS link, m.status = 'delivered' AS delivered) l
    CROSS JOIN LATERAL (VALUES
        (1, m.accepted_at, m.retail_reservation_id, s.wallet, s.revenue, m.retail_price, 'pending',
         CASE WHEN l.delivered THEN 'posted' ELSE 'voided' END, NULL::uuid, l.link, 'send_retail', m.id::text,
         s.actor, m.batch_id::text),
        (2, m.accepted_at, m.wholesale_reservation_id, s.reseller_wallet, s.platform_revenue, m.wholesale_price,
         'pending', CASE WHEN l.delivered THEN 'posted' ELSE 'voided' END, NULL::uuid, l.link, 'send_wholesale',
         m.id::text, s.actor, m.batch_id::text),
        (3, m.submitted_at, m.upstream_cost_transfer_id, u.balance, u.cost, m.upstream_cost, 'posted', NULL, NULL,
         NULL, 'upstream_cost', m.id::text, 'system:dispatcher', NULL),
        (4, m.settled_at, NULL, s.wallet, s.revenue, m.retail_price,
         CASE WHEN l.delivered THEN 'post_pending' ELSE 'void_pending' END, NULL, m.retail_reservation_id, NULL,
         'message_' || m.status, NULL, 'system:delivery-reports', NULL),
        (5, m.settled_at, NULL, s.reseller_wallet, s.platform_revenue, m.wholesale_price,
         CASE WHEN l.delivered THEN 'post_pending' ELSE 'void_pending' END, NULL, m.wholesale_reservation_id, NULL,
         'message_' || m.status, NULL, 'system:delivery-reports', NULL)
    ) AS v (leg, at, id, debit, credit, amount, kind, state, pending_id, linked_id, code, reference, created_by, request_id)
    CROSS JOIN LATERAL (SELECT coalesce(v.id, bench.uuid7(v.at)) AS transfer_id, v.*) e
    WHERE m.accepted_at >= lo - interval '1 hour' AND m.accepted_at < hi AND e.at >= lo AND e.at < hi
    ORDER BY e.at, m.accepted_at, m.id, e.leg;
    GET DIAGNOSTICS appended = ROW_COUNT;
    RETURN appended;
END;
$$;

SELECT format('SELECT bench.append_transfers(%L, %L) AS "transfers %s"', d, d + interval '1 day', to_char(d, 'YYYY-MM-DD'))
FROM bench.param p, generate_series(p.month_start, p.month_end + interval '1 day', interval '1 day') d
\gexec

-- Balances: every account's four running sums from its transfers.
WITH sums AS (
    SELECT x.account,
           sum(t.amount) FILTER (WHERE x.side = 'd' AND t.kind IN ('posted', 'post_pending')) AS debits_posted,
           sum(t.amount) FILTER (WHERE x.side = 'd' AND t.kind = 'pending' AND t.state = 'pending') AS debits_pending,
           sum(t.amount) FILTER (WHERE x.side = 'c' AND t.kind IN ('posted', 'post_pending')) AS credits_posted,
           sum(t.amount) FILTER (WHERE x.side = 'c' AND t.kind = 'pending' AND t.state = 'pending') AS credits_pending
    FROM ledger_transfer t
    CROSS JOIN LATERAL (VALUES ('d', t.debit_account_id), ('c', t.credit_account_id)) AS x (side, account)
    GROUP BY x.account
)
UPDATE ledger_account a
SET debits_posted = coalesce(s.debits_posted, 0), debits_pending = coalesce(s.debits_pending, 0),
    credits_posted = coalesce(s.credits_posted, 0), credits_pending = coalesce(s.credits_pending, 0)
FROM sums s WHERE s.account = a.id;

RESET session_replication_role;
DROP SCHEMA bench CASCADE;

VACUUM (ANALYZE) ledger_transfer;
VACUUM (ANALYZE) message;
VACUUM (ANALYZE) message_batch;
VACUUM (ANALYZE) ledger_account;
ANALYZE;

-- The rollup, as the service's UsageRollupService does it (24 hours per call), until the month and the day after are
-- sealed: the first call only sets a candidate horizon, each later one seals up to 24 hours before it.
SELECT 'SELECT usage_seal(24)'
FROM generate_series(1, (SELECT ceil(extract(epoch FROM now() - min(created_at)) / 86400)::int + 5 FROM ledger_transfer))
\gexec
DO $$
BEGIN
    IF NOT coalesce((SELECT sealed_until >= current_setting('bench.month')::date + interval '1 month 1 day' FROM usage_rollup_state), false) THEN
        RAISE EXCEPTION 'the usage rollup is sealed until % only', (SELECT sealed_until FROM usage_rollup_state);
    END IF;
END $$;
VACUUM (ANALYZE) usage_money_hour;
