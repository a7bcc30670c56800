-- 007_marks_for_every_user.sql — every user has an acknowledgement mark
-- and a stream row from registration on.
--
-- The appenders moved from INSERT … ON DUPLICATE KEY UPDATE (an insert
-- attempt, a duplicate-key error, then the update, for every member of
-- every message) to a plain UPDATE of rows that must exist: registration
-- creates both (events_stream_create); this fills them in for users
-- registered before, who had a mark only once a device had acknowledged
-- something (docs/delivery.md).
INSERT IGNORE INTO user_acks (user_id, acked_pos) SELECT id, 0 FROM users;
INSERT IGNORE INTO user_streams (user_id, last_pos) SELECT id, 0 FROM users;
