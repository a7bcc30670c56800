-- 017_reaction_push.sql — a push for a reaction to one's message
-- (push_reactions): kind 3 jobs carry who reacted and with what.
ALTER TABLE push_jobs ADD COLUMN payload VARCHAR(96) NULL;
