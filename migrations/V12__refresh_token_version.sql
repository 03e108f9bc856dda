-- A refresh token remembers the person's token_version when it was issued: a
-- deactivation, role change or password change (each bumps the version) then
-- ends every refresh family the person had, as it ends their access tokens.
-- Tokens issued before this column existed have none, and are refused.
ALTER TABLE refresh_tokens ADD COLUMN token_version INTEGER;
