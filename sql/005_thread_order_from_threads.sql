-- 005_thread_order_from_threads.sql — a thread list is ordered by the
-- thread's own updated_at.
--
-- thread_members.updated_at was a copy of threads.updated_at kept in every
-- member row so that a user's thread list could be paged from one index.
-- Keeping it meant every message rewrote every member's row (1,000 rows for a
-- message to a 1,000-member group) and held those rows locked until the
-- commit, where the members' delivered receipts wait for them. The list now
-- pages over threads.updated_at (docs/group-commit.md).
ALTER TABLE thread_members
  DROP INDEX thread_members_list,
  DROP COLUMN updated_at;

CREATE INDEX threads_updated ON threads (updated_at, id);
