-- Callback tokens rotate, and stay out of the audit log.
--
-- `POST /upstream-connections/{id}/callback-token` makes a new token; the one it replaces keeps
-- working until `previous_callback_token_until` (a person has to change the callback URL at 1601),
-- then it is refused like any unknown token. One previous token at a time: a second rotation
-- replaces it. Tokens are random (two UUIDs' worth of bits), so the two columns never collide.
ALTER TABLE upstream_connection
    ADD COLUMN previous_callback_token text UNIQUE CHECK (previous_callback_token ~ '^[0-9a-f]{64}$'),
    ADD COLUMN previous_callback_token_until timestamptz,
    ADD CONSTRAINT upstream_connection_previous_callback_token_pair
        CHECK ((previous_callback_token IS NULL) = (previous_callback_token_until IS NULL));

-- Audit rows of connections carried the token (`callback_token` in `before` and `after`): anyone
-- who reads the audit log could settle that connection's messages. The audit log is append-only;
-- this one correction removes the key and nothing else.
ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
UPDATE audit_log
SET before = CASE WHEN jsonb_typeof(before) = 'object' THEN before - 'callback_token' ELSE before END,
    after = CASE WHEN jsonb_typeof(after) = 'object' THEN after - 'callback_token' ELSE after END
WHERE (jsonb_typeof(before) = 'object' AND before ? 'callback_token')
   OR (jsonb_typeof(after) = 'object' AND after ? 'callback_token');
ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only;
