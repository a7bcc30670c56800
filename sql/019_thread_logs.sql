-- 019_thread_logs.sql — big groups' messages are written once, in the
-- thread's log, instead of once per member (docs/delivery.md, step c).
--
-- A send into a group of more than stream_copy_max members (and every
-- later send into it: `threads.logged`) appends one row to thread_log at a
-- position of the stream clock, instead of one user_events row per member;
-- so does every other event for all the members of a logged group (an
-- edit, a deletion, a reaction, a purge: those carry their JSON, payload).
-- A member reads the log through its membership intervals: log_members
-- holds, per (user, thread), the positions between which the user was a
-- member — the log's rows with from_pos < pos <= until_pos (NULL: still a
-- member) belong to the user's stream. Intervals are written under the
-- clock by the transaction that changes the membership (or switches the
-- thread to its log), so their bounds are positions of the same order as
-- the events. Messages before the switch stay copied in the members'
-- streams; nothing is moved, so every cursor keeps its meaning.
--
-- Every chatd must run this version from here on (stop them all, migrate,
-- start them): an older one would copy a logged group's messages into the
-- streams and read none of its log.
--
-- thread_log rows are never pruned by age (they are what the messages
-- themselves are, in stream order).
ALTER TABLE threads ADD COLUMN logged TINYINT NOT NULL DEFAULT 0;

CREATE TABLE thread_log (
  thread_id BIGINT NOT NULL,
  pos BIGINT NOT NULL,
  type TINYINT NOT NULL,
  seq BIGINT NOT NULL,
  payload VARCHAR(1024) NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (thread_id, pos)
) ENGINE=InnoDB;

CREATE TABLE log_members (
  user_id BIGINT NOT NULL,
  thread_id BIGINT NOT NULL,
  from_pos BIGINT NOT NULL,
  until_pos BIGINT NULL,
  PRIMARY KEY (user_id, thread_id, from_pos),
  KEY by_thread (thread_id, until_pos)
) ENGINE=InnoDB;
