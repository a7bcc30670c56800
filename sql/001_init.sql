-- 001_init.sql — accounts, sessions, contacts, blocks, threads, members, messages.
-- Times are BIGINT milliseconds since the Unix epoch (UTC). Ids are
-- AUTO_INCREMENT BIGINTs. Every query stays inside one shard key: messages by
-- thread_id, thread_members and contacts by owner_id (see DESIGN.md).

CREATE TABLE users (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  username VARCHAR(32) NOT NULL,            -- lower case, [a-z0-9_.-]
  display_name VARCHAR(64) NOT NULL,
  password_hash VARCHAR(128) NOT NULL,      -- Argon2id, libsodium encoding
  created_at BIGINT NOT NULL,
  UNIQUE KEY users_username (username)
) ENGINE=InnoDB;

CREATE TABLE sessions (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT NOT NULL,
  token_hash BINARY(32) NOT NULL,           -- SHA-256 of the bearer token
  device_name VARCHAR(64) NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  last_seen_at BIGINT NOT NULL,
  push_provider VARCHAR(8) NULL,
  push_token VARCHAR(512) NULL,
  push_topic VARCHAR(255) NULL,
  UNIQUE KEY sessions_token (token_hash),
  KEY sessions_user (user_id)
) ENGINE=InnoDB;

-- Failed logins per username, for throttling (20 in 15 minutes).
CREATE TABLE login_failures (
  username VARCHAR(32) NOT NULL,
  at BIGINT NOT NULL,
  KEY login_failures_name (username, at)
) ENGINE=InnoDB;

CREATE TABLE contacts (
  owner_id BIGINT NOT NULL,
  contact_id BIGINT NOT NULL,
  nickname VARCHAR(64) NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (owner_id, contact_id),
  KEY contacts_reverse (contact_id)
) ENGINE=InnoDB;

CREATE TABLE blocks (
  owner_id BIGINT NOT NULL,
  blocked_id BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (owner_id, blocked_id)
) ENGINE=InnoDB;

-- Shared thread state. direct_key ("<low id>:<high id>") makes one direct
-- thread per pair; NULL for groups. last_seq is taken under this row's lock.
CREATE TABLE threads (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  kind ENUM('direct', 'group') NOT NULL,
  title VARCHAR(255) NULL,
  direct_key VARCHAR(48) NULL,
  created_by BIGINT NOT NULL,
  last_seq BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  UNIQUE KEY threads_direct (direct_key)
) ENGINE=InnoDB;

-- The per-owner thread row: membership, role, private settings, positions.
CREATE TABLE thread_members (
  owner_id BIGINT NOT NULL,
  thread_id BIGINT NOT NULL,
  role ENUM('admin', 'member') NOT NULL DEFAULT 'member',
  is_muted TINYINT(1) NOT NULL DEFAULT 0,
  nickname VARCHAR(64) NULL,
  last_read_seq BIGINT NOT NULL DEFAULT 0,
  last_delivered_seq BIGINT NOT NULL DEFAULT 0,
  joined_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (owner_id, thread_id),
  KEY thread_members_list (owner_id, updated_at, thread_id),
  KEY thread_members_thread (thread_id, owner_id)
) ENGINE=InnoDB;

-- The message log: written once, never updated.
CREATE TABLE messages (
  thread_id BIGINT NOT NULL,
  seq BIGINT NOT NULL,
  sender_id BIGINT NOT NULL,
  client_msg_id VARCHAR(64) NOT NULL,
  body MEDIUMTEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (thread_id, seq),
  UNIQUE KEY messages_idem (thread_id, sender_id, client_msg_id)
) ENGINE=InnoDB;
