-- Sessions are rebuilt (SQLite cannot change a CHECK in place):
-- - max-tabs: an account may have several active sessions, up to its policy's limit. The
--   limit is per login (the server's --max-tabs, or the account's own), so the database can
--   no longer hold it as a unique index; every claim enforces it inside one write
--   transaction.
-- - 'revoked': a tab signed out from another of the account's tabs (or by an admin).
-- - last_seen: when an active session was last used, for --idle-timeout (NULL: not since its
--   login). Written at most every tenth of the timeout per tab, never on every request.
CREATE TABLE sessions_v6 (
    uid                 BLOB    PRIMARY KEY CHECK (length(uid) = 32),
    account_id          INTEGER NOT NULL REFERENCES accounts (id),
    issued_at           INTEGER NOT NULL,
    user_agent          TEXT,
    ip                  TEXT    NOT NULL,
    ended_at            INTEGER,
    end_reason          TEXT    CHECK (end_reason IN ('superseded', 'logged_out', 'revoked')),
    ended_by_user_agent TEXT,
    ended_by_ip         TEXT,
    last_seen           INTEGER,
    CHECK ((ended_at IS NULL) = (end_reason IS NULL))
) STRICT, WITHOUT ROWID;

INSERT INTO sessions_v6 (uid, account_id, issued_at, user_agent, ip, ended_at, end_reason,
                         ended_by_user_agent, ended_by_ip)
SELECT uid, account_id, issued_at, user_agent, ip, ended_at, end_reason,
       ended_by_user_agent, ended_by_ip
FROM sessions;

DROP TABLE sessions;
ALTER TABLE sessions_v6 RENAME TO sessions;

CREATE INDEX sessions_active_by_account ON sessions (account_id, issued_at) WHERE ended_at IS NULL;
CREATE INDEX sessions_by_end ON sessions (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX sessions_ended_by_account ON sessions (account_id, ended_at) WHERE ended_at IS NOT NULL;

-- An account's own max-tabs limit, with policy 'latest-wins' (max-tabs is latest-wins over
-- several tabs); NULL otherwise.
ALTER TABLE accounts ADD COLUMN max_tabs INTEGER CHECK (max_tabs BETWEEN 1 AND 64);

-- Administrators (granted with `server admin grant NAME`) may list every active tab, sign an
-- account out, and set an account's policy.
ALTER TABLE accounts ADD COLUMN admin INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1));

-- An account's own roll-out mode, overriding the server's --mode: 'observe' serves what
-- enforcement would reject (and counts it), 'enforce' rejects it; NULL: the server's.
ALTER TABLE accounts ADD COLUMN mode TEXT CHECK (mode IN ('observe', 'enforce'));

-- What happened to an account (sign-ins, takeovers, sign-outs, ...), for its owner to read;
-- the newest few per account are kept. Kinds are the server's words (no CHECK: new kinds
-- must not need a rebuild).
CREATE TABLE account_events (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    at         INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    ip         TEXT,
    user_agent TEXT
) STRICT;

CREATE INDEX account_events_by_account ON account_events (account_id, id);
