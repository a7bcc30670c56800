-- 011_attachments.sql — uploads, the content-addressed blobs they become,
-- and the attachments of messages (docs/attachments.md).
--
-- blobs: one row per distinct content, keyed by the SHA-256 the server
-- computed over the stored bytes. refs counts the attachments rows that
-- point at it (complete or attached). A blob whose refs fell to 0 is
-- collected after a grace time, crash-safely: the row is marked
-- 'deleting' (committed), then, under the row's lock, the object and its
-- thumbnail are removed and the row deleted. A new upload of the same bytes
-- that finds a 'deleting' row takes it back under the same lock.
CREATE TABLE blobs (
  sha256 CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  size BIGINT NOT NULL,
  content_type VARCHAR(127) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  width INT NULL,
  height INT NULL,
  duration_ms BIGINT NULL,
  has_thumbnail TINYINT NOT NULL DEFAULT 0,
  refs INT NOT NULL DEFAULT 0,
  state ENUM('live', 'deleting') NOT NULL DEFAULT 'live',
  created_at BIGINT NOT NULL,
  unreferenced_at BIGINT NULL,
  KEY blobs_gc (refs, unreferenced_at)
) ENGINE=InnoDB;

-- attachments: an upload and, once its bytes are in, the attachment it
-- becomes (one id for both). pending: bytes arriving (the partial file is
-- on the node that receives them); complete: stored as blob sha256, not yet
-- in a message; attached: in message (thread_id, seq), for good. pending
-- and complete rows expire at expires_at and are collected.
CREATE TABLE attachments (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  owner_id BIGINT NOT NULL,
  filename VARCHAR(255) NOT NULL,
  size BIGINT NOT NULL,
  declared_type VARCHAR(127) NULL,
  declared_sha256 CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
  state ENUM('pending', 'complete', 'attached') NOT NULL DEFAULT 'pending',
  sha256 CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
  thread_id BIGINT NULL,
  seq BIGINT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  KEY attachments_owner (owner_id, state),
  KEY attachments_expiry (state, expires_at),
  KEY attachments_message (thread_id, seq),
  KEY attachments_blob (sha256)
) ENGINE=InnoDB;

-- The attachments of a message as the API shows them, rendered once when
-- the message is stored (they never change): a JSON array, NULL for none.
ALTER TABLE messages ADD COLUMN attachments MEDIUMTEXT NULL;

-- Secrets the nodes share, made once: the key that signs attachment links.
CREATE TABLE server_keys (
  name VARCHAR(64) NOT NULL PRIMARY KEY,
  secret BINARY(32) NOT NULL
) ENGINE=InnoDB;
