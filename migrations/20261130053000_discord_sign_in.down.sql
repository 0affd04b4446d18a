ALTER TABLE roles DROP COLUMN discord_sign_in;
DROP TABLE discord_oauth_requests;
DROP TABLE discord_grants;
DROP TABLE discord_accounts;
