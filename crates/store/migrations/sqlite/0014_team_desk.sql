-- The team desk (issue 11), first part: what routing, transfer, snooze and merge keep.
-- Keep in step with the other dialect's 0014_team_desk.sql.

-- How a department hands out its queue: 'manual' (Take it!), 'round_robin' or
-- 'load_balancing'; the most open conversations an agent may get by routing (NULL: no limit);
-- the agent round robin gave the last one to (the turn goes on from there).
ALTER TABLE departments ADD COLUMN routing TEXT NOT NULL DEFAULT 'manual';
ALTER TABLE departments ADD COLUMN max_chats_per_agent INTEGER;
ALTER TABLE departments ADD COLUMN last_assigned_user_id INTEGER;

-- An agent's availability: 'available', 'away' or 'offline' (routing gives only to the first).
ALTER TABLE users ADD COLUMN availability TEXT NOT NULL DEFAULT 'offline';

-- A conversation's own department: its inbox's when it arrives, another when it is transferred
-- to that department's queue. When it last entered Queued Chats (the queue is served oldest
-- first). Until when it is snoozed. The conversation it was merged into.
ALTER TABLE conversations ADD COLUMN department_id INTEGER REFERENCES departments(id);
ALTER TABLE conversations ADD COLUMN queued_at INTEGER;
ALTER TABLE conversations ADD COLUMN snoozed_until INTEGER;
ALTER TABLE conversations ADD COLUMN merged_into_id INTEGER REFERENCES conversations(id);
UPDATE conversations SET department_id = (SELECT i.department_id FROM inboxes i WHERE i.id = conversations.inbox_id);
UPDATE conversations SET queued_at = last_message_at WHERE status = 'queued';
