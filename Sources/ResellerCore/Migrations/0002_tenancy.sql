-- Tenancy and access: resellers, sub-accounts, API keys, sender names, the audit log.
-- Every tenant row carries reseller_id (the future distribution column) and its keys include it.

CREATE TABLE reseller (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    contact_email     text CHECK (length(contact_email) <= 320),
    refund_policy     text NOT NULL DEFAULT 'refund_undelivered' CHECK (refund_policy IN ('refund_undelivered', 'no_refund')),
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'blocked_payment', 'blocked', 'closed')),
    status_reason     text,
    status_changed_by text,
    status_changed_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reseller_status ON reseller (status, id);
CREATE TRIGGER reseller_touch BEFORE UPDATE ON reseller FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE sub_account (
    reseller_id         uuid NOT NULL REFERENCES reseller (id),
    id                  uuid NOT NULL DEFAULT gen_random_uuid(),
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    username            text NOT NULL CHECK (length(username) BETWEEN 3 AND 64),
    -- PBKDF2-HMAC-SHA256 over the lowercase SHA-1 hex of the password (so the upstream's
    -- "send the SHA-1 hex instead of the password" option verifies against the same hash).
    password_salt       bytea NOT NULL,
    password_iterations integer NOT NULL CHECK (password_iterations > 0),
    password_hash       bytea NOT NULL,
    default_sender      text,
    status              text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'blocked_payment', 'blocked', 'closed')),
    status_reason       text,
    status_changed_by   text,
    status_changed_at   timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (reseller_id, id),
    UNIQUE (id)
);
-- Usernames are global: the 1601-compatible endpoint authenticates by username alone.
CREATE UNIQUE INDEX sub_account_username ON sub_account (lower(username));
CREATE TRIGGER sub_account_touch BEFORE UPDATE ON sub_account FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- The one definition of a sub-account's effective status: a reseller that is not active
-- blocks all its sub-accounts in effect (with the reseller's code), without rewriting them.
CREATE FUNCTION effective_account_status(reseller_status text, sub_account_status text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN sub_account_status = 'closed' THEN 'closed'
        WHEN reseller_status = 'blocked_payment' THEN 'blocked_payment'
        WHEN reseller_status IN ('blocked', 'closed') THEN 'blocked'
        ELSE sub_account_status
    END
$$;

CREATE TABLE api_key (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_kind     text NOT NULL CHECK (owner_kind IN ('admin', 'reseller', 'sub_account')),
    reseller_id    uuid REFERENCES reseller (id),
    sub_account_id uuid,
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    prefix         text NOT NULL,
    secret_sha256  bytea NOT NULL UNIQUE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz,
    revoked_at     timestamptz,
    CHECK (
        (owner_kind = 'admin' AND reseller_id IS NULL AND sub_account_id IS NULL)
        OR (owner_kind = 'reseller' AND reseller_id IS NOT NULL AND sub_account_id IS NULL)
        OR (owner_kind = 'sub_account' AND reseller_id IS NOT NULL AND sub_account_id IS NOT NULL)
    ),
    FOREIGN KEY (reseller_id, sub_account_id) REFERENCES sub_account (reseller_id, id)
);
CREATE INDEX api_key_owner ON api_key (reseller_id, sub_account_id);

-- The admin's platform-wide list: `blocked` names are refused (117), `protected` names need an admin's approval.
CREATE TABLE sender_name_rule (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name_key   text NOT NULL UNIQUE,
    name       text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('blocked', 'protected')),
    reason     text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sender_name (
    reseller_id    uuid NOT NULL,
    id             uuid NOT NULL DEFAULT gen_random_uuid(),
    sub_account_id uuid NOT NULL,
    name           text NOT NULL,
    status         text NOT NULL CHECK (status IN ('pending', 'pending_admin', 'approved', 'rejected', 'revoked')),
    requires_admin boolean NOT NULL DEFAULT false,
    reason         text,
    decided_by     text,
    decided_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (reseller_id, id),
    UNIQUE (id),
    FOREIGN KEY (reseller_id, sub_account_id) REFERENCES sub_account (reseller_id, id)
);
-- One live request or approval per name and sub-account.
CREATE UNIQUE INDEX sender_name_live ON sender_name (sub_account_id, lower(name)) WHERE status IN ('pending', 'pending_admin', 'approved');
CREATE INDEX sender_name_status ON sender_name (reseller_id, status, id);
CREATE TRIGGER sender_name_touch BEFORE UPDATE ON sender_name FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    actor_role  text NOT NULL CHECK (actor_role IN ('admin', 'reseller', 'sub_account', 'system')),
    reseller_id uuid,
    action      text NOT NULL,
    target_type text NOT NULL,
    target_id   text NOT NULL,
    before      jsonb,
    after       jsonb,
    request_id  text
);
CREATE INDEX audit_log_tenant ON audit_log (reseller_id, id);

-- Append-only: history is never rewritten.
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
