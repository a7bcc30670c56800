-- 002_events.sql — each user's event stream (the inbox).
--
-- user_streams holds a user's last event position. An event is appended by
-- bumping that row (which locks it) and inserting at the new position in the
-- same transaction as the change, so positions are gap-free per user and a
-- reader never sees a position that a running transaction fills later.
-- Events point at messages (thread_id, seq) rather than copy them.

CREATE TABLE user_streams (
  user_id BIGINT NOT NULL PRIMARY KEY,
  last_pos BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB;

INSERT INTO user_streams (user_id, last_pos) SELECT id, 0 FROM users;

-- type: 1 message (thread_id, seq), 2 thread (thread_id), 3 receipt
-- (thread_id, actor_id's delivered_seq and read_seq at that moment).
CREATE TABLE user_events (
  user_id BIGINT NOT NULL,
  pos BIGINT NOT NULL,
  type TINYINT NOT NULL,
  thread_id BIGINT NOT NULL,
  seq BIGINT NOT NULL DEFAULT 0,
  actor_id BIGINT NOT NULL DEFAULT 0,
  delivered_seq BIGINT NOT NULL DEFAULT 0,
  read_seq BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, pos),
  KEY user_events_age (created_at)
) ENGINE=InnoDB;

-- How far each device has acknowledged its stream (its last `since`).
ALTER TABLE sessions ADD COLUMN acked_pos BIGINT NOT NULL DEFAULT 0;
