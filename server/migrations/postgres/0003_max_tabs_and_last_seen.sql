-- max-tabs: an account may have several active sessions, up to its policy's limit. The limit
-- is per login (the server's --max-tabs, or the account's own), so the database can no
-- longer hold it as a unique index; every claim enforces it with the account's row locked.
DROP INDEX sessions_one_active_per_account;
CREATE INDEX sessions_active_by_account ON sessions (account_id, issued_at) WHERE ended_at IS NULL;

-- An account's own max-tabs limit, with policy 'latest-wins' (max-tabs is latest-wins over
-- several tabs, stored as in SQLite); NULL otherwise.
ALTER TABLE accounts ADD COLUMN max_tabs INTEGER CHECK (max_tabs BETWEEN 1 AND 64);

-- When an active session was last used, for --idle-timeout (NULL: not since its login). The
-- server writes it at most every tenth of the timeout per tab, never on every request.
ALTER TABLE sessions ADD COLUMN last_seen BIGINT;
