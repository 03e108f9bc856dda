-- The enterprise's time zone (IANA name): the dashboard shows times in it.
-- Retail Performer's enterprises are French first, hence the default.
ALTER TABLE enterprise_accounts ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'Europe/Paris';
