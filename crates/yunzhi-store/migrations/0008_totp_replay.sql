-- The time step of the last second-factor code accepted per account, so a
-- code seen over someone's shoulder cannot be used a second time.
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;
