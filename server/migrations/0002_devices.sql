-- Browsers that may "Use here" without the password. Only a SHA-256 hash of each device
-- token is kept: a copy of this file does not let anyone into an account.
CREATE TABLE devices (
    token_hash BLOB    PRIMARY KEY CHECK (length(token_hash) = 32),
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX devices_by_account ON devices (account_id);
CREATE INDEX devices_by_expiry ON devices (expires_at);
