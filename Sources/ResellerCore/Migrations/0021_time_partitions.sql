-- Time partitions (docs/partitioning.md): the two append-only histories that grow with traffic and that nothing
-- references, message_event and webhook_attempt, become tables partitioned by month on their timestamp, managed by
-- pg_partman (Debian's postgresql-15-partman): it keeps the current month and the next three made, keeps a default
-- partition that should stay empty, and detaches or drops months older than a table's retention, once one is set.
--
-- pg_partman is not a trusted extension: the role that migrates must be a superuser, or an administrator creates it
-- beforehand (`CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman;`), which makes the two lines below
-- no-ops.
CREATE SCHEMA IF NOT EXISTS partman;
CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman;
-- pg_partman 5 changed create_parent's arguments and the maintenance's rules; these calls are pg_partman 4's (Debian
-- 12 ships 4.7).
DO $$
DECLARE
    v_version text := (SELECT extversion FROM pg_extension WHERE extname = 'pg_partman');
BEGIN
    IF split_part(v_version, '.', 1) <> '4' THEN
        RAISE EXCEPTION 'pg_partman % is installed; sms-reseller needs pg_partman 4 (4.7 is Debian 12''s postgresql-15-partman)',
            v_version;
    END IF;
END
$$;
-- Where retention moves the months it detaches when a table is set to archive them (sms-reseller partitions
-- retention … --archive): tables that stay queryable until an operator dumps and drops them.
CREATE SCHEMA IF NOT EXISTS archive;

-- Months are cut in UTC whatever the server's time zone is; the maintenance job sets the same zone (it must: in
-- another zone pg_partman would compute bounds that overlap the ones made here).
SET LOCAL timezone = 'UTC';

-- Each table is rebuilt: renamed away, created again partitioned (the primary key gains the partition column, as
-- PostgreSQL requires), its months made from the oldest row's, its rows copied with their ids, its identity sequence
-- moved on past them, the old table dropped. This holds the table's lock for the copy: fine for this product's
-- installed base; docs/partitioning.md says how to partition a large table online instead.

ALTER TABLE message_event RENAME TO message_event_unpartitioned;
ALTER INDEX message_event_pkey RENAME TO message_event_unpartitioned_pkey;
ALTER TABLE message_event_unpartitioned RENAME CONSTRAINT message_event_detail_check TO message_event_unpartitioned_detail_check;
ALTER SEQUENCE message_event_seq_seq RENAME TO message_event_unpartitioned_seq_seq;

CREATE TABLE message_event (
    reseller_id uuid NOT NULL,
    message_id  uuid NOT NULL,
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    status      text NOT NULL,
    code        integer,
    detail      text CHECK (length(detail) <= 500),
    occurred_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, seq, occurred_at)
) PARTITION BY RANGE (occurred_at);

SELECT partman.create_parent('public.message_event', 'occurred_at', 'native', 'monthly', p_premake := 3,
    p_start_partition := date_trunc('month', coalesce((SELECT min(occurred_at) FROM message_event_unpartitioned), now()))::text,
    p_jobmon := false);
INSERT INTO message_event (reseller_id, message_id, seq, status, code, detail, occurred_at) OVERRIDING SYSTEM VALUE
    SELECT reseller_id, message_id, seq, status, code, detail, occurred_at FROM message_event_unpartitioned;
SELECT setval('message_event_seq_seq', max(seq)) FROM message_event_unpartitioned HAVING count(*) > 0;
DROP TABLE message_event_unpartitioned;

-- The trigger's look for an earlier BUFFERED report skips the months before the message's (a day of margin for a
-- service clock ahead of the database's); otherwise as in 0011.
CREATE OR REPLACE FUNCTION webhook_message_buffered() RETURNS trigger
    LANGUAGE plpgsql AS $$
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
CREATE TRIGGER message_event_buffered_webhook AFTER INSERT ON message_event
    FOR EACH ROW WHEN (NEW.status = 'report:buffered') EXECUTE FUNCTION webhook_message_buffered();

ALTER TABLE webhook_attempt RENAME TO webhook_attempt_unpartitioned;
ALTER INDEX webhook_attempt_pkey RENAME TO webhook_attempt_unpartitioned_pkey;
ALTER INDEX webhook_attempt_delivery RENAME TO webhook_attempt_unpartitioned_delivery;
ALTER TABLE webhook_attempt_unpartitioned
    RENAME CONSTRAINT webhook_attempt_delivery_id_fkey TO webhook_attempt_unpartitioned_delivery_id_fkey;
ALTER TABLE webhook_attempt_unpartitioned RENAME CONSTRAINT webhook_attempt_error_check TO webhook_attempt_unpartitioned_error_check;
ALTER SEQUENCE webhook_attempt_id_seq RENAME TO webhook_attempt_unpartitioned_id_seq;

CREATE TABLE webhook_attempt (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    delivery_id  uuid NOT NULL REFERENCES webhook_delivery (id) ON DELETE CASCADE,
    attempt      integer NOT NULL,
    attempted_at timestamptz NOT NULL,
    status_code  integer,
    latency_ms   integer NOT NULL,
    error        text CHECK (length(error) <= 500),
    PRIMARY KEY (id, attempted_at)
) PARTITION BY RANGE (attempted_at);
CREATE INDEX webhook_attempt_delivery ON webhook_attempt (delivery_id, id);

SELECT partman.create_parent('public.webhook_attempt', 'attempted_at', 'native', 'monthly', p_premake := 3,
    p_start_partition := date_trunc('month', coalesce((SELECT min(attempted_at) FROM webhook_attempt_unpartitioned), now()))::text,
    p_jobmon := false);
INSERT INTO webhook_attempt (id, delivery_id, attempt, attempted_at, status_code, latency_ms, error) OVERRIDING SYSTEM VALUE
    SELECT id, delivery_id, attempt, attempted_at, status_code, latency_ms, error FROM webhook_attempt_unpartitioned;
SELECT setval('webhook_attempt_id_seq', max(id)) FROM webhook_attempt_unpartitioned HAVING count(*) > 0;
DROP TABLE webhook_attempt_unpartitioned;

-- Months keep being made while no rows arrive (a quiet installation must not find its next month missing), and
-- webhook attempts are dropped after 90 days: their deliveries are purged 30 days after they finish (and give up
-- after 3), which deletes the attempts row by row; dropping a month drops what is left. Message events keep
-- every month until an operator sets a retention: they are each message's history.
UPDATE partman.part_config SET infinite_time_partitions = true
WHERE parent_table IN ('public.message_event', 'public.webhook_attempt');
UPDATE partman.part_config SET retention = '90 days', retention_keep_table = false
WHERE parent_table = 'public.webhook_attempt';
