-- The database itself holds the rule "one active session per account": a second active row
-- for an account is refused by this index, whatever code writes it.
DROP INDEX sessions_active_by_account;
CREATE UNIQUE INDEX sessions_one_active_per_account ON sessions (account_id) WHERE ended_at IS NULL;

-- An account's history is bounded (the oldest ended sessions are forgotten first).
CREATE INDEX sessions_ended_by_account ON sessions (account_id, ended_at) WHERE ended_at IS NOT NULL;
