-- The appliance operator's SCIM request limit for one enterprise (requests
-- per minute, `enterprise-sync set-rate-limit --scim`); NULL: the configured
-- `rate_limit.scim_per_minute`.
ALTER TABLE enterprise_accounts
    ADD COLUMN rate_limit_scim_per_minute INTEGER CHECK (rate_limit_scim_per_minute > 0);
