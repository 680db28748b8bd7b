-- Tariffs: three price layers, each a set of price lists whose prices change only by new versions.
--
--   upstream_cost  what 1601 charges the platform            platform rows (admin)
--   wholesale      what the platform charges a reseller      platform rows (admin)
--   retail         what a reseller charges a sub-account     tenant rows (reseller_id in every key)
--
-- Platform lists and tenant lists live in separate tables: under Citus the platform tables are
-- small reference tables and the retail tables are distributed by reseller_id.
--
-- A version is a complete, immutable snapshot of entries taking effect at effective_from. The
-- version of a list in force at T is the one with the latest effective_from <= T. Within a
-- version the entry with the longest prefix of the number prices it. Versions and entries are
-- append-only (triggers below); entries can only be written by the transaction that created
-- their version, and a version commits only with exactly entry_count entries.

CREATE TABLE platform_price_list (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    layer       text NOT NULL CHECK (layer IN ('upstream_cost', 'wholesale')),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description text CHECK (length(description) <= 1000),
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- For foreign keys that also pin the layer (a wholesale assignment must name a wholesale list).
    UNIQUE (layer, id)
);
CREATE TRIGGER platform_price_list_touch BEFORE UPDATE ON platform_price_list FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE platform_price_version (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    price_list_id  uuid NOT NULL REFERENCES platform_price_list (id),
    effective_from timestamptz NOT NULL,
    entry_count    integer NOT NULL CHECK (entry_count > 0),
    note           text CHECK (length(note) <= 1000),
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- Also the index of "the version in force at T".
    UNIQUE (price_list_id, effective_from)
);

CREATE TABLE platform_price_entry (
    version_id uuid NOT NULL REFERENCES platform_price_version (id),
    -- A calling code or a longer national range (44 vs 4479); digits, no leading zero, at most 15.
    prefix     text NOT NULL CHECK (prefix ~ '^[1-9][0-9]{0,14}$'),
    -- Per part, in minor units (1 credit = 10 000). Only sellable entries need one.
    price      bigint CHECK (price >= 0),
    status     text NOT NULL CHECK (status IN ('sellable', 'not_sellable', 'forbidden')),
    PRIMARY KEY (version_id, prefix),
    CHECK (status <> 'sellable' OR price IS NOT NULL)
);

CREATE TABLE retail_price_list (
    reseller_id uuid NOT NULL REFERENCES reseller (id),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description text CHECK (length(description) <= 1000),
    -- Whether versions may price below the wholesale price in force for the reseller (accepted with warnings).
    allow_loss  boolean NOT NULL DEFAULT false,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (reseller_id, id),
    UNIQUE (id)
);
CREATE TRIGGER retail_price_list_touch BEFORE UPDATE ON retail_price_list FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE retail_price_version (
    reseller_id    uuid NOT NULL,
    id             uuid NOT NULL DEFAULT gen_random_uuid(),
    price_list_id  uuid NOT NULL,
    effective_from timestamptz NOT NULL,
    entry_count    integer NOT NULL CHECK (entry_count > 0),
    note           text CHECK (length(note) <= 1000),
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (reseller_id, id),
    UNIQUE (id),
    UNIQUE (reseller_id, price_list_id, effective_from),
    FOREIGN KEY (reseller_id, price_list_id) REFERENCES retail_price_list (reseller_id, id)
);

CREATE TABLE retail_price_entry (
    reseller_id uuid NOT NULL,
    version_id  uuid NOT NULL,
    prefix      text NOT NULL CHECK (prefix ~ '^[1-9][0-9]{0,14}$'),
    price       bigint CHECK (price >= 0),
    status      text NOT NULL CHECK (status IN ('sellable', 'not_sellable', 'forbidden')),
    PRIMARY KEY (reseller_id, version_id, prefix),
    FOREIGN KEY (reseller_id, version_id) REFERENCES retail_price_version (reseller_id, id),
    CHECK (status <> 'sellable' OR price IS NOT NULL)
);

-- Versions and entries are history: never updated, never deleted.
CREATE FUNCTION price_history_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: prices change by a new version', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER platform_price_version_append_only BEFORE UPDATE OR DELETE ON platform_price_version FOR EACH ROW EXECUTE FUNCTION price_history_refuse_change();
CREATE TRIGGER platform_price_version_no_truncate BEFORE TRUNCATE ON platform_price_version FOR EACH STATEMENT EXECUTE FUNCTION price_history_refuse_change();
CREATE TRIGGER platform_price_entry_append_only BEFORE UPDATE OR DELETE ON platform_price_entry FOR EACH ROW EXECUTE FUNCTION price_history_refuse_change();
CREATE TRIGGER platform_price_entry_no_truncate BEFORE TRUNCATE ON platform_price_entry FOR EACH STATEMENT EXECUTE FUNCTION price_history_refuse_change();
CREATE TRIGGER retail_price_version_append_only BEFORE UPDATE OR DELETE ON retail_price_version FOR EACH ROW EXECUTE FUNCTION price_history_refuse_change();
CREATE TRIGGER retail_price_version_no_truncate BEFORE TRUNCATE ON retail_price_version FOR EACH STATEMENT EXECUTE FUNCTION price_history_refuse_change();
CREATE TRIGGER retail_price_entry_append_only BEFORE UPDATE OR DELETE ON retail_price_entry FOR EACH ROW EXECUTE FUNCTION price_history_refuse_change();
CREATE TRIGGER retail_price_entry_no_truncate BEFORE TRUNCATE ON retail_price_entry FOR EACH STATEMENT EXECUTE FUNCTION price_history_refuse_change();

-- A committed version is complete: entries may only be added by the transaction that created
-- the version (its row's xmin is this transaction).
CREATE FUNCTION platform_price_entry_same_transaction() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted i JOIN platform_price_version v ON v.id = i.version_id
               WHERE v.xmin <> pg_current_xact_id()::xid) THEN
        RAISE EXCEPTION 'entries of a committed price version cannot be added' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER platform_price_entry_complete AFTER INSERT ON platform_price_entry
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION platform_price_entry_same_transaction();

CREATE FUNCTION retail_price_entry_same_transaction() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted i JOIN retail_price_version v ON v.reseller_id = i.reseller_id AND v.id = i.version_id
               WHERE v.xmin <> pg_current_xact_id()::xid) THEN
        RAISE EXCEPTION 'entries of a committed price version cannot be added' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER retail_price_entry_complete AFTER INSERT ON retail_price_entry
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION retail_price_entry_same_transaction();

-- …and it commits with exactly the entries it announces.
CREATE FUNCTION platform_price_version_count_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM platform_price_entry WHERE version_id = NEW.id) <> NEW.entry_count THEN
        RAISE EXCEPTION 'price version % does not have its % entries', NEW.id, NEW.entry_count USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER platform_price_version_complete AFTER INSERT ON platform_price_version
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION platform_price_version_count_check();

CREATE FUNCTION retail_price_version_count_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM retail_price_entry WHERE reseller_id = NEW.reseller_id AND version_id = NEW.id) <> NEW.entry_count THEN
        RAISE EXCEPTION 'price version % does not have its % entries', NEW.id, NEW.entry_count USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER retail_price_version_complete AFTER INSERT ON retail_price_version
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION retail_price_version_count_check();

-- Which list applies. Assignments are current state (their history is in the audit log); a
-- message keeps the version ids it was priced with, so reassigning never changes an accepted price.

-- The platform's list per layer: the upstream cost list pricing uses, and the wholesale list of
-- every reseller without one of its own.
CREATE TABLE platform_price_default (
    layer         text PRIMARY KEY CHECK (layer IN ('upstream_cost', 'wholesale')),
    price_list_id uuid NOT NULL,
    assigned_by   text NOT NULL,
    assigned_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (layer, price_list_id) REFERENCES platform_price_list (layer, id)
);

CREATE TABLE reseller_wholesale_price_list (
    reseller_id   uuid PRIMARY KEY REFERENCES reseller (id),
    layer         text NOT NULL DEFAULT 'wholesale' CHECK (layer = 'wholesale'),
    price_list_id uuid NOT NULL,
    assigned_by   text NOT NULL,
    assigned_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (layer, price_list_id) REFERENCES platform_price_list (layer, id)
);
CREATE INDEX reseller_wholesale_price_list_list ON reseller_wholesale_price_list (price_list_id);

-- The retail list of every sub-account of the reseller without one of its own.
CREATE TABLE reseller_default_retail_price_list (
    reseller_id   uuid PRIMARY KEY REFERENCES reseller (id),
    price_list_id uuid NOT NULL,
    assigned_by   text NOT NULL,
    assigned_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (reseller_id, price_list_id) REFERENCES retail_price_list (reseller_id, id)
);

CREATE TABLE sub_account_retail_price_list (
    reseller_id    uuid NOT NULL,
    sub_account_id uuid NOT NULL,
    price_list_id  uuid NOT NULL,
    assigned_by    text NOT NULL,
    assigned_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (reseller_id, sub_account_id),
    FOREIGN KEY (reseller_id, sub_account_id) REFERENCES sub_account (reseller_id, id),
    -- The composite key makes assigning another reseller's list impossible.
    FOREIGN KEY (reseller_id, price_list_id) REFERENCES retail_price_list (reseller_id, id)
);
CREATE INDEX sub_account_retail_price_list_list ON sub_account_retail_price_list (reseller_id, price_list_id);

-- The one definition of each pricing rule; the repositories use only these.

CREATE FUNCTION effective_upstream_cost_price_list() RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT price_list_id FROM platform_price_default WHERE layer = 'upstream_cost'
$$;

CREATE FUNCTION effective_wholesale_price_list(p_reseller uuid) RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT price_list_id FROM reseller_wholesale_price_list WHERE reseller_id = p_reseller),
        (SELECT price_list_id FROM platform_price_default WHERE layer = 'wholesale'))
$$;

CREATE FUNCTION effective_retail_price_list(p_reseller uuid, p_sub_account uuid) RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT price_list_id FROM sub_account_retail_price_list WHERE reseller_id = p_reseller AND sub_account_id = p_sub_account),
        (SELECT price_list_id FROM reseller_default_retail_price_list WHERE reseller_id = p_reseller))
$$;

-- The version of a list in force at an instant: the latest effective_from <= it.
CREATE FUNCTION platform_price_version_at(p_list uuid, p_instant timestamptz) RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT id FROM platform_price_version
    WHERE price_list_id = p_list AND effective_from <= p_instant
    ORDER BY effective_from DESC LIMIT 1
$$;

CREATE FUNCTION retail_price_version_at(p_reseller uuid, p_list uuid, p_instant timestamptz) RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT id FROM retail_price_version
    WHERE reseller_id = p_reseller AND price_list_id = p_list AND effective_from <= p_instant
    ORDER BY effective_from DESC LIMIT 1
$$;

-- Every leading substring of a digit string: the prefixes that could price it.
CREATE FUNCTION price_prefixes(p_digits text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_agg(left(p_digits, n)) FROM generate_series(1, length(p_digits)) AS n
$$;

-- The entry of a version that prices a number (or any digit string): the longest matching prefix.
CREATE FUNCTION platform_price_match(p_version uuid, p_digits text) RETURNS SETOF platform_price_entry
LANGUAGE sql STABLE AS $$
    SELECT * FROM platform_price_entry
    WHERE version_id = p_version AND prefix = ANY (price_prefixes(p_digits))
    ORDER BY length(prefix) DESC LIMIT 1
$$;

CREATE FUNCTION retail_price_match(p_reseller uuid, p_version uuid, p_digits text) RETURNS SETOF retail_price_entry
LANGUAGE sql STABLE AS $$
    SELECT * FROM retail_price_entry
    WHERE reseller_id = p_reseller AND version_id = p_version AND prefix = ANY (price_prefixes(p_digits))
    ORDER BY length(prefix) DESC LIMIT 1
$$;
