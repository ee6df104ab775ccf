-- The PostgreSQL schema: the same tables as SQLite's, for several server instances sharing
-- one database. Times are Unix milliseconds; sessions are keyed by the SHA-256 of their UID.

-- Accounts: usernames are shown as typed and unique by their lower-case key.
CREATE TABLE accounts (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      TEXT   NOT NULL,
    username_key  TEXT   NOT NULL UNIQUE,
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);

-- One row per login. A row is active while ended_at is NULL; ended rows are kept (for at
-- least the history period) so an old tab can be told why it was stopped.
CREATE TABLE sessions (
    uid                 BYTEA  PRIMARY KEY CHECK (length(uid) = 32),
    account_id          BIGINT NOT NULL REFERENCES accounts (id),
    issued_at           BIGINT NOT NULL,
    user_agent          TEXT,
    ip                  TEXT   NOT NULL,
    ended_at            BIGINT,
    end_reason          TEXT   CHECK (end_reason IN ('superseded', 'logged_out')),
    ended_by_user_agent TEXT,
    ended_by_ip         TEXT,
    CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);

-- The database itself refuses a second active session per account, whatever a claim does.
CREATE UNIQUE INDEX sessions_one_active_per_account ON sessions (account_id) WHERE ended_at IS NULL;
CREATE INDEX sessions_by_end ON sessions (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX sessions_ended_by_account ON sessions (account_id, ended_at) WHERE ended_at IS NOT NULL;

-- Browsers that may "Use here" without the password; only a SHA-256 of each device token.
CREATE TABLE devices (
    token_hash BYTEA  PRIMARY KEY CHECK (length(token_hash) = 32),
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX devices_by_account ON devices (account_id);
CREATE INDEX devices_by_expiry ON devices (expires_at);
