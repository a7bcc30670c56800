-- 014_message_actions.sql — reply, edit, delete for everyone, hide for me,
-- reactions, forward (docs/message-actions.md). None of these takes a seq:
-- a message keeps its row and its seq; what changes is its state.
--
-- version: 0 when sent, +1 on every edit, delete or reaction change, so a
-- client keeps the newest state of a message whatever order it learns of
-- them in. deleted_at: set by a delete for everyone; the row stays as a
-- tombstone (body '', attachments NULL). reply_to_seq: the message of the
-- same thread this one answers. forward_depth: how many forwards away from
-- the original (NULL: not forwarded). reactions: the message's reactions as
-- the API shows them ([{emoji, count, user_ids}]), rendered from
-- message_reactions in the transaction that changes them, so that reading a
-- message costs no join. mentions: {user_ids, all}, resolved at send time.
ALTER TABLE messages
  ADD COLUMN version INT NOT NULL DEFAULT 0,
  ADD COLUMN edited_at BIGINT NULL,
  ADD COLUMN deleted_at BIGINT NULL,
  ADD COLUMN reply_to_seq BIGINT NULL,
  ADD COLUMN forward_depth INT NULL,
  ADD COLUMN reactions TEXT NULL,
  ADD COLUMN mentions TEXT NULL;

-- The bodies a message had before each edit (the edit history), kept until
-- the message is deleted.
CREATE TABLE message_edits (
  thread_id BIGINT NOT NULL,
  seq BIGINT NOT NULL,
  version INT NOT NULL,
  body MEDIUMTEXT NOT NULL,
  edited_at BIGINT NOT NULL,
  PRIMARY KEY (thread_id, seq, version)
) ENGINE=InnoDB;

-- One row per (message, user, emoji).
CREATE TABLE message_reactions (
  thread_id BIGINT NOT NULL,
  seq BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  emoji VARCHAR(64) NOT NULL COLLATE utf8mb4_bin,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (thread_id, seq, user_id, emoji),
  KEY message_reactions_user (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Messages a user hid from their own devices.
CREATE TABLE message_hidden (
  user_id BIGINT NOT NULL,
  thread_id BIGINT NOT NULL,
  seq BIGINT NOT NULL,
  PRIMARY KEY (user_id, thread_id, seq)
) ENGINE=InnoDB;

-- Events that carry their own JSON (message_deleted, message_hidden,
-- message_unhidden, reaction): the event as the API shows it. Types: 4
-- message_edited (thread_id, seq: rendered from the message row when read),
-- 5 message_deleted, 6 message_hidden, 7 message_unhidden, 8 reaction.
ALTER TABLE user_events ADD COLUMN payload VARCHAR(1024) NULL;
