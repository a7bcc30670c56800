-- 004_acks_and_snapshots.sql — acknowledgement marks per user, and
-- thread-event snapshots.
--
-- user_acks: how far any device of a user has acknowledged the user's
-- stream. Messages between this mark and a device's new `since` become
-- delivered; keeping one mark per user (not per device) makes each event be
-- scanned once, whichever device acknowledges it.
CREATE TABLE user_acks (
  user_id BIGINT NOT NULL PRIMARY KEY,
  acked_pos BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB;

INSERT INTO user_acks (user_id, acked_pos)
SELECT user_id, MAX(acked_pos) FROM sessions GROUP BY user_id;

ALTER TABLE sessions DROP COLUMN acked_pos;

-- A thread event is a snapshot taken when it is appended, so that every
-- device reading it later sees the same thing: `thread` holds the shared part
-- as JSON (the same for every member); the member's own settings at that
-- moment are copied from thread_members (read_seq above holds their read
-- position, for unread_count).
ALTER TABLE user_events
  ADD COLUMN thread JSON NULL,
  ADD COLUMN is_muted TINYINT NULL,
  ADD COLUMN nickname VARCHAR(64) NULL;
