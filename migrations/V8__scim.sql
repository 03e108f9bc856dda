-- SCIM 2.0 (issue 5). An identity provider names people by a userName it owns
-- (Okta: the login, Entra: the userPrincipalName), which need not be the email
-- we log people in with; it is kept as given. Attributes we store only for the
-- provider's round trip (name parts, displayName, the emails and roles lists as
-- sent, the enterprise extension's employee data) are one JSON object: the
-- product reads users.name/email/role, which are derived from them on write.
ALTER TABLE users ADD COLUMN user_name TEXT;
ALTER TABLE users ADD COLUMN scim_attributes TEXT;
-- DELETE /Users/{id}: the person is deactivated and gone from SCIM (404), but
-- the row stays, with its history, as an audited tombstone.
ALTER TABLE users ADD COLUMN scim_deleted_at TEXT;

-- userName is unique per enterprise, case-insensitively (RFC 7643 §4.1.1: the
-- provider matches it that way). People created outside SCIM have no
-- user_name and answer to their email, so REST and file imports pay nothing
-- for this index; the SCIM service checks a new userName against emails too.
-- Tombstones free their name.
CREATE UNIQUE INDEX users_enterprise_user_name
    ON users (enterprise_account_id, user_name COLLATE NOCASE)
    WHERE user_name IS NOT NULL AND scim_deleted_at IS NULL;

-- Unfiltered lists count the staff from the kept counts (V9) less these.
CREATE INDEX users_enterprise_tombstones ON users (enterprise_account_id)
    WHERE scim_deleted_at IS NOT NULL;

ALTER TABLE stores ADD COLUMN scim_deleted_at TEXT;
-- Group displayName lookups (`displayName eq "…"`, uniqueness) are
-- case-insensitive.
CREATE INDEX stores_enterprise_name_nocase
    ON stores (enterprise_account_id, name COLLATE NOCASE);
