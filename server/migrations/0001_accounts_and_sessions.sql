-- Accounts: usernames are shown as typed and unique by their lower-case key.
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL,
    username_key  TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

-- One row per login. A row is active while ended_at is NULL; ended rows are kept (for at
-- least the history period) so an old tab can be told why it was stopped.
CREATE TABLE sessions (
    uid                 BLOB    PRIMARY KEY CHECK (length(uid) = 16),
    account_id          INTEGER NOT NULL REFERENCES accounts (id),
    issued_at           INTEGER NOT NULL,
    user_agent          TEXT,
    ip                  TEXT    NOT NULL,
    ended_at            INTEGER,
    end_reason          TEXT    CHECK (end_reason IN ('superseded', 'logged_out')),
    ended_by_user_agent TEXT,
    ended_by_ip         TEXT,
    CHECK ((ended_at IS NULL) = (end_reason IS NULL))
) STRICT, WITHOUT ROWID;

CREATE INDEX sessions_active_by_account ON sessions (account_id) WHERE ended_at IS NULL;
CREATE INDEX sessions_by_end ON sessions (ended_at) WHERE ended_at IS NOT NULL;
