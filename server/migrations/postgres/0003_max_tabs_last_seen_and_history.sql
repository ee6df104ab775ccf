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

-- 'revoked': a tab signed out from another of the account's tabs (or by an admin).
ALTER TABLE sessions DROP CONSTRAINT sessions_end_reason_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_end_reason_check
    CHECK (end_reason IN ('superseded', 'logged_out', 'revoked'));

-- Administrators (granted with `server admin grant NAME`) may list every active tab, sign an
-- account out, and set an account's policy.
ALTER TABLE accounts ADD COLUMN admin BOOLEAN NOT NULL DEFAULT false;

-- An account's own roll-out mode, overriding the server's --mode: 'observe' serves what
-- enforcement would reject (and counts it), 'enforce' rejects it; NULL: the server's.
ALTER TABLE accounts ADD COLUMN mode TEXT CHECK (mode IN ('observe', 'enforce'));

-- What happened to an account, for its owner to read; the newest few per account are kept.
CREATE TABLE account_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    at         BIGINT NOT NULL,
    kind       TEXT   NOT NULL,
    ip         TEXT,
    user_agent TEXT
);

CREATE INDEX account_events_by_account ON account_events (account_id, id);
