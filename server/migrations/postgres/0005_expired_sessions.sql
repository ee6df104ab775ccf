-- 'expired': a tab whose --idle-timeout or --absolute-timeout ran out, ended in the store
-- (ended_at is when it ran out) when its account next signs in, so that it holds no place
-- under max-tabs and that sign-in is not recorded as a takeover.
ALTER TABLE sessions DROP CONSTRAINT sessions_end_reason_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_end_reason_check
    CHECK (end_reason IN ('superseded', 'logged_out', 'revoked', 'expired'));
