-- Invoicing (docs/invoices.md): issuers' legal profiles, customers' billing profiles, the money paid for
-- top-ups and credit transfers, and invoices and credit notes with gap-free numbers that never change once
-- issued.

-- 1. Issuers. The platform (reseller_id NULL) and each reseller that invoices its own customers.
CREATE TABLE issuer_profile (
    reseller_id        uuid REFERENCES reseller (id),
    legal_name         text NOT NULL CHECK (length(legal_name) BETWEEN 1 AND 200),
    address            text[] NOT NULL CHECK (cardinality(address) BETWEEN 1 AND 6),
    country_code       text NOT NULL CHECK (country_code ~ '^[A-Z]{2}$'),
    vat_number         text CHECK (length(vat_number) BETWEEN 1 AND 40),
    company_number     text CHECK (length(company_number) BETWEEN 1 AND 40),
    invoice_prefix     text NOT NULL CHECK (invoice_prefix ~ '^[A-Z0-9]{1,10}$'),
    credit_note_prefix text NOT NULL CHECK (credit_note_prefix ~ '^[A-Z0-9]{1,10}$'),
    payment_terms_days integer NOT NULL CHECK (payment_terms_days BETWEEN 0 AND 365),
    currency           text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    time_zone          text NOT NULL CHECK (length(time_zone) BETWEEN 1 AND 64),
    updated_by         text NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (invoice_prefix <> credit_note_prefix)
);
CREATE UNIQUE INDEX issuer_profile_issuer ON issuer_profile (reseller_id) NULLS NOT DISTINCT;

-- 2. Customers. One profile per customer relation: a reseller as the platform's customer
-- (sub_account_id NULL), a sub-account as its reseller's. `credit_price` is the price of one credit in
-- the issuer's currency, in 1/100 000 000 of its major unit; `vat_rate_bp` in hundredths of a percent.
CREATE TABLE billing_profile (
    reseller_id    uuid NOT NULL REFERENCES reseller (id),
    sub_account_id uuid,
    legal_name     text NOT NULL CHECK (length(legal_name) BETWEEN 1 AND 200),
    address        text[] NOT NULL CHECK (cardinality(address) BETWEEN 1 AND 6),
    country_code   text NOT NULL CHECK (country_code ~ '^[A-Z]{2}$'),
    vat_number     text CHECK (length(vat_number) BETWEEN 1 AND 40),
    company_number text CHECK (length(company_number) BETWEEN 1 AND 40),
    vat_regime     text NOT NULL CHECK (vat_regime IN ('standard', 'reverse_charge', 'exempt')),
    vat_rate_bp    integer NOT NULL CHECK (vat_rate_bp BETWEEN 0 AND 10000),
    billing_mode   text NOT NULL CHECK (billing_mode IN ('prepaid', 'postpaid')),
    credit_price   bigint NOT NULL CHECK (credit_price BETWEEN 0 AND 100000000000000),
    updated_by     text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (reseller_id, sub_account_id) REFERENCES sub_account (reseller_id, id),
    CHECK (vat_regime = 'standard' OR vat_rate_bp = 0),
    CHECK (vat_regime <> 'reverse_charge' OR vat_number IS NOT NULL)
);
CREATE UNIQUE INDEX billing_profile_customer ON billing_profile (reseller_id, sub_account_id) NULLS NOT DISTINCT;

-- 3. What a top-up or a credit transfer was paid, in money (1/10 000 of `currency`). A prepaid
-- customer's purchase invoice uses it.
CREATE TABLE transfer_payment (
    transfer_id uuid PRIMARY KEY REFERENCES ledger_transfer (id),
    amount_paid bigint NOT NULL CHECK (amount_paid >= 0),
    currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$')
);

-- 4. Number counters, one row per issuer, series and year (the nil uuid is the platform). A number is
-- taken by incrementing the row in the transaction that issues the document, so a rollback gives it
-- back: sequences would leave gaps.
CREATE TABLE invoice_counter (
    issuer      uuid NOT NULL,
    series      text NOT NULL CHECK (series IN ('invoice', 'credit_note')),
    year        integer NOT NULL CHECK (year BETWEEN 2000 AND 9999),
    last_number bigint NOT NULL CHECK (last_number >= 1),
    PRIMARY KEY (issuer, series, year)
);

-- 5. Documents. Amounts are in the currency's minor unit (`currency_digits` decimals); parties are
-- copies taken when the document was written.
CREATE TABLE invoice (
    id                      uuid PRIMARY KEY,
    kind                    text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    source                  text NOT NULL CHECK (source IN ('usage', 'purchase', 'correction')),
    status                  text NOT NULL CHECK (status IN ('draft', 'issued', 'voided')),
    issuer_reseller_id      uuid REFERENCES reseller (id),
    customer_reseller_id    uuid NOT NULL REFERENCES reseller (id),
    customer_sub_account_id uuid,
    number                  text CHECK (length(number) BETWEEN 1 AND 40),
    issue_date              date,
    due_date                date,
    period_start            date NOT NULL,
    period_end              date NOT NULL,
    covered_from            timestamptz,
    covered_to              timestamptz,
    leg                     text CHECK (leg IN ('retail', 'wholesale')),
    purchase_transfer_id    uuid REFERENCES ledger_transfer (id),
    credits                 bigint NOT NULL,
    currency                text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    currency_digits         smallint NOT NULL CHECK (currency_digits BETWEEN 0 AND 4),
    issuer                  jsonb NOT NULL,
    customer                jsonb NOT NULL,
    payment_terms           text,
    notes                   text[] NOT NULL DEFAULT '{}',
    net_total               bigint NOT NULL,
    vat_total               bigint NOT NULL,
    total                   bigint NOT NULL CHECK (total = net_total + vat_total),
    corrects_invoice_id     uuid REFERENCES invoice (id),
    correction_reason       text CHECK (length(correction_reason) BETWEEN 1 AND 500),
    created_by              text NOT NULL,
    created_at              timestamptz NOT NULL DEFAULT now(),
    issued_by               text,
    issued_at               timestamptz,
    voided_by               text,
    voided_at               timestamptz,
    FOREIGN KEY (customer_reseller_id, customer_sub_account_id) REFERENCES sub_account (reseller_id, id),
    -- The platform invoices resellers; a reseller invoices its own sub-accounts.
    CHECK (CASE WHEN issuer_reseller_id IS NULL THEN customer_sub_account_id IS NULL
                ELSE issuer_reseller_id = customer_reseller_id AND customer_sub_account_id IS NOT NULL END),
    CHECK ((status = 'issued') = (number IS NOT NULL AND issue_date IS NOT NULL AND due_date IS NOT NULL
                                  AND issued_by IS NOT NULL AND issued_at IS NOT NULL)),
    CHECK ((status = 'voided') = (voided_by IS NOT NULL AND voided_at IS NOT NULL)),
    CHECK (period_end >= period_start),
    CHECK ((kind = 'credit_note') = (source = 'correction')),
    CHECK ((kind = 'credit_note') = (corrects_invoice_id IS NOT NULL AND correction_reason IS NOT NULL)),
    CHECK ((source = 'usage') = (covered_from IS NOT NULL AND covered_to IS NOT NULL AND leg IS NOT NULL)),
    CHECK ((source = 'purchase') = (purchase_transfer_id IS NOT NULL))
);
CREATE UNIQUE INDEX invoice_number ON invoice (issuer_reseller_id, number) NULLS NOT DISTINCT
    WHERE number IS NOT NULL;
-- The monthly run is idempotent: one live usage invoice per customer and period, one live purchase
-- invoice per purchase.
CREATE UNIQUE INDEX invoice_usage_once ON invoice (customer_reseller_id, customer_sub_account_id, period_start)
    NULLS NOT DISTINCT WHERE source = 'usage' AND status <> 'voided';
CREATE UNIQUE INDEX invoice_purchase_once ON invoice (purchase_transfer_id)
    WHERE source = 'purchase' AND status <> 'voided';
CREATE INDEX invoice_by_issuer ON invoice (issuer_reseller_id, created_at, id);
CREATE INDEX invoice_by_customer ON invoice (customer_reseller_id, customer_sub_account_id, created_at, id);
CREATE INDEX invoice_corrections ON invoice (corrects_invoice_id) WHERE corrects_invoice_id IS NOT NULL;

CREATE TABLE invoice_line (
    invoice_id       uuid NOT NULL REFERENCES invoice (id),
    position         integer NOT NULL CHECK (position >= 1),
    description      text NOT NULL CHECK (length(description) BETWEEN 1 AND 500),
    quantity         numeric NOT NULL,
    unit             text NOT NULL CHECK (unit IN ('part', 'credit')),
    unit_price       numeric NOT NULL,
    net              bigint NOT NULL,
    vat_rate_bp      integer NOT NULL CHECK (vat_rate_bp BETWEEN 0 AND 10000),
    vat_category     text NOT NULL CHECK (vat_category IN ('standard', 'reverse_charge', 'exempt')),
    credits          bigint NOT NULL,
    country          text CHECK (country ~ '^[0-9]{1,7}$'),
    encoding         text CHECK (encoding IN ('gsm7', 'ucs2')),
    corrects_position integer,
    PRIMARY KEY (invoice_id, position)
);

CREATE TABLE invoice_vat (
    invoice_id   uuid NOT NULL REFERENCES invoice (id),
    vat_rate_bp  integer NOT NULL CHECK (vat_rate_bp BETWEEN 0 AND 10000),
    vat_category text NOT NULL CHECK (vat_category IN ('standard', 'reverse_charge', 'exempt')),
    base         bigint NOT NULL,
    vat          bigint NOT NULL,
    PRIMARY KEY (invoice_id, vat_category, vat_rate_bp)
);

-- 6. An issued or voided document never changes: only a draft may be issued, voided or deleted, and only
-- a draft's lines and VAT rows may be written. Corrections are credit notes.
CREATE FUNCTION invoice_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
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
CREATE TRIGGER invoice_immutable BEFORE UPDATE OR DELETE ON invoice
FOR EACH ROW EXECUTE FUNCTION invoice_guard();

CREATE FUNCTION invoice_part_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
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
CREATE TRIGGER invoice_line_immutable BEFORE INSERT OR UPDATE OR DELETE ON invoice_line
FOR EACH ROW EXECUTE FUNCTION invoice_part_guard();
CREATE TRIGGER invoice_vat_immutable BEFORE INSERT OR UPDATE OR DELETE ON invoice_vat
FOR EACH ROW EXECUTE FUNCTION invoice_part_guard();

CREATE FUNCTION invoice_no_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'invoices are never truncated' USING ERRCODE = 'IV001';
END;
$$;
CREATE TRIGGER invoice_no_truncate BEFORE TRUNCATE ON invoice
FOR EACH STATEMENT EXECUTE FUNCTION invoice_no_truncate();
CREATE TRIGGER invoice_line_no_truncate BEFORE TRUNCATE ON invoice_line
FOR EACH STATEMENT EXECUTE FUNCTION invoice_no_truncate();
CREATE TRIGGER invoice_vat_no_truncate BEFORE TRUNCATE ON invoice_vat
FOR EACH STATEMENT EXECUTE FUNCTION invoice_no_truncate();
