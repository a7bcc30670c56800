-- 003_push.sql — the durable push outbox and the per-user decision log.

-- One job per member and message (kind 1), or per member and read (kind 2,
-- clear). session_id set = a retry for that one device; except_session_id =
-- the device that read (it gets no clear push). Deleted once decided and
-- answered by the provider: a crash before that pushes again (at least once).
CREATE TABLE push_jobs (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT NOT NULL,
  thread_id BIGINT NOT NULL,
  seq BIGINT NOT NULL,
  kind TINYINT NOT NULL,
  session_id BIGINT NULL,
  except_session_id BIGINT NULL,
  attempts INT NOT NULL DEFAULT 0,
  due_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  KEY push_jobs_due (due_at)
) ENGINE=InnoDB;

CREATE TABLE push_log (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT NOT NULL,
  thread_id BIGINT NOT NULL,
  seq BIGINT NOT NULL,
  session_id BIGINT NULL,
  provider VARCHAR(8) NULL,
  decision VARCHAR(16) NOT NULL,
  reason VARCHAR(32) NOT NULL,
  status INT NULL,
  at BIGINT NOT NULL,
  KEY push_log_user (user_id, id),
  KEY push_log_age (at)
) ENGINE=InnoDB;

ALTER TABLE sessions ADD KEY sessions_push_token (push_token(191));
