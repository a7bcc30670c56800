-- 016_retention.sql — retention, disappearing messages, deleted accounts
-- (API.md "Retention and accounts", docs/retention.md).
--
-- threads.retention_days: this thread keeps messages this long (NULL: the
-- server's message_retention_days); older ones are removed from the front
-- of history, and oldest_seq says where it starts now. disappearing_s: new
-- messages expire this long after they are sent (0: never); their
-- expires_at is set when they are stored, and the janitor turns expired
-- messages into tombstones.
ALTER TABLE threads
  ADD COLUMN retention_days INT NULL,
  ADD COLUMN disappearing_s INT NOT NULL DEFAULT 0,
  ADD COLUMN oldest_seq BIGINT NOT NULL DEFAULT 1;

ALTER TABLE messages
  ADD COLUMN expires_at BIGINT NULL,
  ADD KEY messages_expiry (expires_at);

-- A deleted account: its name is freed, it cannot log in, its messages are
-- tombstones of a "Deleted user".
ALTER TABLE users ADD COLUMN deleted_at BIGINT NULL;
