-- 012_user_deactivation.sql — an operator can deactivate an account
-- (chatctl user deactivate): it cannot log in, and its sessions end.
-- NULL: active; else when it was deactivated (ms).
ALTER TABLE users ADD COLUMN deactivated_at BIGINT NULL;
