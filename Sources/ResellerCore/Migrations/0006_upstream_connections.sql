-- Upstream connections: the 1601 gateway accounts the platform sends through (an admin resource).
--
-- A reseller sends through its assigned connection, else through the platform default; with
-- neither, its messages stay queued. A connection is `active` or `paused`: account-level gateway
-- errors (100 101 104 108 115 116) pause it automatically (actor `system:dispatcher`), an admin
-- pauses and resumes it by hand. Connections are platform rows: under Citus a small reference table.

CREATE TABLE upstream_connection (
    id                     uuid PRIMARY KEY,
    name                   text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- Scheme, host, optional port and path prefix; never credentials, a query or a fragment.
    base_url               text NOT NULL CHECK (base_url ~ '^https?://[^/?#@[:space:]]+(/[^?#[:space:]]*)?$' AND length(base_url) <= 2000),
    username               text NOT NULL CHECK (length(username) BETWEEN 1 AND 200),
    -- The password as UpstreamCredentialCipher stores it: byte 0x00 then the UTF-8 password (no key
    -- configured), or 0x01, an 8-byte key id, then AES-256-GCM (nonce, ciphertext, tag) with the
    -- connection id as associated data. The API never returns it.
    password_secret        bytea NOT NULL CHECK (length(password_secret) >= 2),
    password_changed_at    timestamptz NOT NULL DEFAULT now(),
    -- Segmentation (SMSCore.SegmentationPolicy). A concatenated part is never larger than a single
    -- one and holds at least 2 units, so an escape pair or a surrogate pair always fits.
    gsm_single_part        integer NOT NULL DEFAULT 160 CHECK (gsm_single_part BETWEEN 2 AND 160),
    gsm_concatenated_part  integer NOT NULL DEFAULT 153 CHECK (gsm_concatenated_part BETWEEN 2 AND 153),
    ucs2_single_part       integer NOT NULL DEFAULT 70 CHECK (ucs2_single_part BETWEEN 2 AND 70),
    ucs2_concatenated_part integer NOT NULL DEFAULT 67 CHECK (ucs2_concatenated_part BETWEEN 2 AND 67),
    -- The concatenation header counts parts in one byte.
    maximum_parts          integer NOT NULL DEFAULT 3 CHECK (maximum_parts BETWEEN 1 AND 255),
    -- Calls in flight at most, and calls started per second at most, over all instances.
    concurrency            integer NOT NULL DEFAULT 4 CHECK (concurrency BETWEEN 1 AND 64),
    rate_limit_per_second  integer NOT NULL DEFAULT 20 CHECK (rate_limit_per_second BETWEEN 1 AND 10000),
    request_timeout_ms     integer NOT NULL DEFAULT 15000 CHECK (request_timeout_ms BETWEEN 1000 AND 120000),
    status                 text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused')),
    pause_reason           text CHECK (length(pause_reason) BETWEEN 1 AND 500),
    -- The 1601 error code that paused it, when one did.
    pause_code             integer CHECK (pause_code BETWEEN 100 AND 199),
    paused_at              timestamptz,
    paused_by              text,
    created_by             text NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CHECK (gsm_concatenated_part <= gsm_single_part AND ucs2_concatenated_part <= ucs2_single_part),
    CHECK (
        (status = 'active' AND pause_reason IS NULL AND pause_code IS NULL AND paused_at IS NULL AND paused_by IS NULL)
        OR (status = 'paused' AND pause_reason IS NOT NULL AND paused_at IS NOT NULL AND paused_by IS NOT NULL)
    )
);
CREATE UNIQUE INDEX upstream_connection_name ON upstream_connection (lower(name));
CREATE TRIGGER upstream_connection_touch BEFORE UPDATE ON upstream_connection FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- The platform default: exactly one row or none (the single-row key makes "set" an atomic upsert).
CREATE TABLE upstream_connection_default (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    connection_id uuid NOT NULL REFERENCES upstream_connection (id),
    assigned_by   text NOT NULL,
    assigned_at   timestamptz NOT NULL DEFAULT now()
);

-- A reseller's own connection; without a row the platform default applies. Current state only:
-- the history is in the audit log.
CREATE TABLE reseller_upstream_connection (
    reseller_id   uuid PRIMARY KEY REFERENCES reseller (id),
    connection_id uuid NOT NULL REFERENCES upstream_connection (id),
    assigned_by   text NOT NULL,
    assigned_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reseller_upstream_connection_connection ON reseller_upstream_connection (connection_id);

-- The one definition of "which connection sends for this reseller": its own, else the default.
CREATE FUNCTION effective_upstream_connection(p_reseller uuid) RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT connection_id FROM reseller_upstream_connection WHERE reseller_id = p_reseller),
        (SELECT connection_id FROM upstream_connection_default))
$$;
