-- Sends in doubt: a message whose upstream call may have reached the upstream without its answer
-- being recorded (a timeout, a lost connection, a crash) is not sent again blindly. The dispatcher
-- first looks for it in the upstream's report table, and sends again only when the table proves
-- that the upstream did not take it (docs/sending.md, "Sends in doubt").
--
-- `attempted_at` is when the claim that may have called the upstream was made: set by a claim whose
-- row was not in doubt (that claim sends); kept by a claim whose row was in doubt (that claim only
-- asks). While `possibly_sent` holds, it is the start of the only attempt in doubt: nothing is sent
-- again before the doubt is resolved. The proof that the report table reaches back far enough is
-- measured against it, so it must never be later than the real attempt.
ALTER TABLE message_outbox ADD COLUMN attempted_at timestamptz;
-- Rows already in doubt: their attempt is not known, but it came after the message's acceptance.
UPDATE message_outbox o SET attempted_at = m.accepted_at
FROM message m WHERE m.id = o.message_id AND o.possibly_sent;
