-- An account may have a policy of its own, overriding the server's --policy (NULL: the
-- server's).
ALTER TABLE accounts ADD COLUMN policy TEXT CHECK (policy IN ('latest-wins', 'deny-new'));
