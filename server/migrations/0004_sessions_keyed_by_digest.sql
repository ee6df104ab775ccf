-- Sessions are keyed by the SHA-256 of their UID from now on, never the UID itself: a copy of
-- this file yields no UID that works. Existing rows are converted in place (the server
-- registers sha256() for its migrations) and the old pages are zeroed (secure_delete).
CREATE TABLE sessions_by_digest (
    uid                 BLOB    PRIMARY KEY CHECK (length(uid) = 32),
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

INSERT INTO sessions_by_digest
SELECT sha256(uid), account_id, issued_at, user_agent, ip, ended_at, end_reason,
       ended_by_user_agent, ended_by_ip
FROM sessions;

DROP TABLE sessions;
ALTER TABLE sessions_by_digest RENAME TO sessions;

CREATE UNIQUE INDEX sessions_one_active_per_account ON sessions (account_id) WHERE ended_at IS NULL;
CREATE INDEX sessions_by_end ON sessions (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX sessions_ended_by_account ON sessions (account_id, ended_at) WHERE ended_at IS NOT NULL;
