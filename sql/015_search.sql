-- 015_search.sql — the message index (docs/search.md, chat/search.h).
--
-- search_terms: one row per (term, message). The primary key reads a
-- term's postings newest first across all threads (at = the message's
-- created_at, ms); search_terms_thread reads them in one thread. Terms are
-- compared byte for byte: they are lower-cased when made.
CREATE TABLE search_terms (
  term VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  at BIGINT NOT NULL,
  thread_id BIGINT NOT NULL,
  seq BIGINT NOT NULL,
  PRIMARY KEY (term, at, thread_id, seq),
  KEY search_terms_thread (term, thread_id, seq)
) ENGINE=InnoDB;

-- How far each thread's messages are indexed: the indexer takes the
-- messages past indexed_seq; a thread whose last_seq is past it is behind.
CREATE TABLE search_progress (
  thread_id BIGINT NOT NULL PRIMARY KEY,
  indexed_seq BIGINT NOT NULL
) ENGINE=InnoDB;
