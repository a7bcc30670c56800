-- 013_message_requests.sql — a group add from a stranger is a message
-- request (docs/api-notes.md "Message requests").
--
-- request_from: who added this member, while the member has not accepted;
-- NULL otherwise. Set when the added user does not have the adder in their
-- contacts. While it is set, the membership does not count as knowing each
-- other (presence, user search) and sends the member no push; accepting
-- (or sending into the thread) clears it, declining leaves the group.
ALTER TABLE thread_members ADD COLUMN request_from BIGINT NULL;
