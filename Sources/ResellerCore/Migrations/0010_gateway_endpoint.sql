-- The 1601-compatible endpoint (/module/gateway.php): what its answers and options need.
--
-- The upstream's answers carry numeric ids (`OK 1234567`, `gatewayrapport.php?smsid=1234567`, the outbox id of a
-- scheduled send), and scripts written for it store and compare them as numbers. So every message gets a number of
-- its own next to its uuid, and every scheduled batch an outbox number. Both are unique across the platform; the
-- endpoint only ever answers about numbers of the authenticated sub-account.

CREATE SEQUENCE message_gateway_id_seq START 1000001;
-- Existing rows are numbered by the default; the send path takes numbers from the sequence itself (it answers
-- with them before the rows are written).
ALTER TABLE message ADD COLUMN gateway_id bigint NOT NULL DEFAULT nextval('message_gateway_id_seq');
ALTER SEQUENCE message_gateway_id_seq OWNED BY message.gateway_id;
CREATE UNIQUE INDEX message_gateway_id ON message (gateway_id);

CREATE SEQUENCE message_batch_outbox_id_seq START 5000001;
ALTER TABLE message_batch
    -- Scheduled batches only: what `verwijderbericht&id=` removes.
    ADD COLUMN outbox_id        bigint UNIQUE,
    -- The 1601 `delivery=ja`: whether the customer wants delivery notifications for these messages (old-style
    -- notifications are sent only then). Sends through the REST API always do.
    ADD COLUMN delivery_reports boolean NOT NULL DEFAULT true,
    -- The 1601 `logging`: `nee` keeps the messages out of the `action=rapport` table. They are stored, charged and
    -- listed by the REST API like any other (the ledger needs them).
    ADD COLUMN logging          boolean NOT NULL DEFAULT true;
ALTER SEQUENCE message_batch_outbox_id_seq OWNED BY message_batch.outbox_id;
