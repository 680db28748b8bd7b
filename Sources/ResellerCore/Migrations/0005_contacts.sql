-- Contacts and groups: each sub-account's address book. A send to a group (1601 `naar=groep&groep=<name>`)
-- expands the group to its members' numbers when the send is accepted (GroupRepository.expand).
--
-- Tenant rows: reseller_id is in every key. Contacts, groups and memberships also carry sub_account_id in
-- the keys their foreign keys use, so a membership can only join a contact and a group of the same
-- sub-account: the schema itself refuses a cross-tenant (or cross-customer) link.

CREATE TABLE contact (
    reseller_id    uuid NOT NULL,
    id             uuid NOT NULL DEFAULT gen_random_uuid(),
    sub_account_id uuid NOT NULL,
    -- E.164 digits: country code first, no '+' or '00' (SMSCore.PhoneNumber).
    number         text NOT NULL CHECK (number ~ '^[1-9][0-9]{6,14}$'),
    name           text CHECK (length(name) BETWEEN 1 AND 200),
    -- The customer's own key for the contact (a CRM id, say); free text.
    reference      text CHECK (length(reference) BETWEEN 1 AND 100),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (reseller_id, id),
    -- Also the listing index (a sub-account's contacts by id).
    UNIQUE (reseller_id, sub_account_id, id),
    UNIQUE (reseller_id, sub_account_id, number),
    FOREIGN KEY (reseller_id, sub_account_id) REFERENCES sub_account (reseller_id, id)
);
CREATE TRIGGER contact_touch BEFORE UPDATE ON contact FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE contact_group (
    reseller_id    uuid NOT NULL,
    id             uuid NOT NULL DEFAULT gen_random_uuid(),
    sub_account_id uuid NOT NULL,
    -- The 1601 `groep` parameter names a group. ';' separates group names in the CSV import.
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 100 AND strpos(name, ';') = 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (reseller_id, id),
    UNIQUE (reseller_id, sub_account_id, id),
    FOREIGN KEY (reseller_id, sub_account_id) REFERENCES sub_account (reseller_id, id)
);
-- Names are unique per sub-account case-insensitively; also the index of the send path's lookup by name.
CREATE UNIQUE INDEX contact_group_name ON contact_group (reseller_id, sub_account_id, lower(name));
CREATE TRIGGER contact_group_touch BEFORE UPDATE ON contact_group FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE contact_group_member (
    reseller_id    uuid NOT NULL,
    sub_account_id uuid NOT NULL,
    group_id       uuid NOT NULL,
    contact_id     uuid NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- Also the index of a group's members by contact id (listing and expansion).
    PRIMARY KEY (reseller_id, group_id, contact_id),
    -- Deleting a group or a contact removes its memberships, nothing else.
    FOREIGN KEY (reseller_id, sub_account_id, group_id) REFERENCES contact_group (reseller_id, sub_account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (reseller_id, sub_account_id, contact_id) REFERENCES contact (reseller_id, sub_account_id, id) ON DELETE CASCADE
);
-- A contact's groups, and the cascade when a contact is deleted.
CREATE INDEX contact_group_member_contact ON contact_group_member (reseller_id, contact_id);
