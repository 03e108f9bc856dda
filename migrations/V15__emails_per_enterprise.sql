-- An email names one person within an enterprise, not across the appliance:
-- enterprises on one appliance must not learn about each other's staff (an
-- import, a SCIM POST or a registration answering "email taken" for an
-- address of another enterprise did). Sign-in looks the email up in each
-- enterprise through this index (one probe per enterprise) and tells the
-- accounts apart by their passwords. Existing emails were unique across the
-- appliance, so they are unique per enterprise.
DROP INDEX users_email;
CREATE UNIQUE INDEX users_enterprise_email ON users (enterprise_account_id, email);
