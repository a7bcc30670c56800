-- 018_stream_clock.sql — one clock orders every user's events
-- (docs/delivery.md, step b).
--
-- Before: each user's stream had its own counter (user_streams.last_pos),
-- bumped by every appender for every member of every message — a row
-- written and locked per member. Now an appending transaction takes a range
-- of positions from stream_clock (one row, once per transaction) just before
-- it commits and holds it until then, so positions are handed out in commit
-- order: a user's positions grow, with gaps, and no position at or below a
-- committed one can appear later.
--
-- The clock starts above every position given out so far, so every cursor
-- a device holds stays what it was: the events after it are the rest of the
-- old stream, then the new ones. user_streams.last_pos is frozen from here
-- on (the old end); pruned_pos is the highest position pruned of the user
-- (a cursor below it answers 410), filled in from what pruning did so far:
-- below the oldest event kept, or, with none kept, the old end.
--
-- Every chatd must run this version from here on: an older one would still
-- bump user_streams (stop them all, migrate, start them).
CREATE TABLE stream_clock (
  id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
  pos BIGINT NOT NULL
) ENGINE=InnoDB;

ALTER TABLE user_streams ADD COLUMN pruned_pos BIGINT NOT NULL DEFAULT 0;

UPDATE user_streams s
  SET s.pruned_pos = COALESCE((SELECT e.pos - 1 FROM user_events e WHERE e.user_id = s.user_id
                               ORDER BY e.pos LIMIT 1), s.last_pos);

INSERT INTO stream_clock (id, pos)
  SELECT 1, GREATEST(COALESCE(MAX(s.last_pos), 0),
                     COALESCE((SELECT MAX(e.pos) FROM user_events e), 0))
  FROM user_streams s;
