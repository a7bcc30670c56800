-- 008_account_security.sql — login backoff per address and per device, device
-- keys, and the audit log of authentication events.
--
-- login_failures: a failed login is counted against the username (existing
-- or not) and the client address, or, when the login presented a valid
-- device key, against that device key only (device_hash set), so that a
-- stranger's failures never delay a device that logged in before.
ALTER TABLE login_failures
  ADD COLUMN address VARCHAR(45) NOT NULL DEFAULT '',
  ADD COLUMN device_hash BINARY(32) NULL,
  ADD KEY login_failures_address (address, at),
  ADD KEY login_failures_device (device_hash, at),
  ADD KEY login_failures_at (at);

-- A device key: an opaque 256-bit secret handed out at login, kept by the
-- client and shown again at its later logins. Only its SHA-256 is stored.
CREATE TABLE device_keys (
  key_hash BINARY(32) NOT NULL PRIMARY KEY,
  user_id BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  last_used_at BIGINT NOT NULL,
  KEY device_keys_user (user_id),
  KEY device_keys_used (last_used_at)
) ENGINE=InnoDB;

-- Authentication events of a user: login, login_failed, login_throttled,
-- logout, session_revoked, password_changed. Never a password, token or key.
CREATE TABLE auth_audit (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT NOT NULL,
  session_id BIGINT NULL,                   -- the session concerned, if any
  at BIGINT NOT NULL,
  event VARCHAR(24) NOT NULL,
  address VARCHAR(45) NOT NULL DEFAULT '',  -- the client's address
  KEY auth_audit_user (user_id, id),
  KEY auth_audit_at (at)
) ENGINE=InnoDB;
