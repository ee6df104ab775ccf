-- An account keeps as many devices as its policy allows tabs (the browsers of its latest
-- sign-ins), so "Your sessions" lists them: each keeps the browser and IP of its login and
-- when it last signed in (its login, or its latest "Use here"). Devices from before have
-- neither browser nor IP.
ALTER TABLE devices ADD COLUMN user_agent TEXT;
ALTER TABLE devices ADD COLUMN ip TEXT;
ALTER TABLE devices ADD COLUMN signed_in_at BIGINT;
UPDATE devices SET signed_in_at = created_at;
ALTER TABLE devices ALTER COLUMN signed_in_at SET NOT NULL;

-- The tabs each device started (its newest 64), so signing a browser out signs its tabs
-- out too. Only digests of the tabs' UIDs, as in `sessions`.
CREATE TABLE device_tabs (
    token_hash BYTEA  NOT NULL REFERENCES devices (token_hash) ON DELETE CASCADE,
    tab        BYTEA  NOT NULL CHECK (length(tab) = 32),
    linked_at  BIGINT NOT NULL,
    PRIMARY KEY (token_hash, tab)
);
