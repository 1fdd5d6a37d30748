-- Notifications also go out by e-mail and webhook when those are set up:
-- each row is an outbox entry until delivered, retried with backoff.

ALTER TABLE users ADD COLUMN email TEXT;

ALTER TABLE notifications ADD COLUMN delivered_at BIGINT;
ALTER TABLE notifications ADD COLUMN delivery_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN next_delivery_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN delivery_error TEXT;
CREATE INDEX notifications_outbox ON notifications (delivered_at, next_delivery_at);
