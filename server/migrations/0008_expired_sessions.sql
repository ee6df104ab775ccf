-- 'expired': a tab whose --idle-timeout or --absolute-timeout ran out, ended in the store
-- (ended_at is when it ran out) when its account next signs in, so that it holds no place
-- under max-tabs and that sign-in is not recorded as a takeover. Sessions are rebuilt:
-- SQLite cannot change a CHECK in place.
CREATE TABLE sessions_v8 (
    uid                 BLOB    PRIMARY KEY CHECK (length(uid) = 32),
    account_id          INTEGER NOT NULL REFERENCES accounts (id),
    issued_at           INTEGER NOT NULL,
    user_agent          TEXT,
    ip                  TEXT    NOT NULL,
    ended_at            INTEGER,
    end_reason          TEXT    CHECK (end_reason IN ('superseded', 'logged_out', 'revoked',
                                                      'expired')),
    ended_by_user_agent TEXT,
    ended_by_ip         TEXT,
    last_seen           INTEGER,
    CHECK ((ended_at IS NULL) = (end_reason IS NULL))
) STRICT, WITHOUT ROWID;

INSERT INTO sessions_v8 (uid, account_id, issued_at, user_agent, ip, ended_at, end_reason,
                         ended_by_user_agent, ended_by_ip, last_seen)
SELECT uid, account_id, issued_at, user_agent, ip, ended_at, end_reason,
       ended_by_user_agent, ended_by_ip, last_seen
FROM sessions;

DROP TABLE sessions;
ALTER TABLE sessions_v8 RENAME TO sessions;

CREATE INDEX sessions_active_by_account ON sessions (account_id, issued_at) WHERE ended_at IS NULL;
CREATE INDEX sessions_by_end ON sessions (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX sessions_ended_by_account ON sessions (account_id, ended_at) WHERE ended_at IS NOT NULL;
