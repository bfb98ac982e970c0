-- Lists that hold at a million conversations (issue 11). Keep in step with the other
-- dialect's 0015_list_indexes.sql. Every list is one query that walks one of these indexes in
-- the list's own order (Queued Chats oldest first, every other list newest activity first),
-- from the page's cursor on, and stops after a page; its total is counted on the same index.

-- Queued Chats: only the queue (a partial index stays as small as the queue), in the order it
-- is served, with what tells whether the caller may see each (department, assignee) so that
-- the page and its count need no row but those shown.
CREATE INDEX conversations_queue ON conversations (queued_at, id, department_id, assignee_id)
    WHERE status = 'queued';
-- An agent's lists: Chats in Progress, On Hold, snoozed (and routing's count of open chats).
DROP INDEX conversations_assignee;
CREATE INDEX conversations_assignee_activity
    ON conversations (assignee_id, status, last_message_at, id);
-- A status for every visible conversation (closed, …).
DROP INDEX conversations_status;
CREATE INDEX conversations_status_activity ON conversations (status, last_message_at, id);
-- Every conversation.
CREATE INDEX conversations_activity ON conversations (last_message_at, id);
-- A contact's page (and their data, exported or deleted).
DROP INDEX conversations_contact;
CREATE INDEX conversations_contact_activity ON conversations (contact_id, last_message_at, id);
-- An inbox's conversations.
CREATE INDEX conversations_inbox_activity ON conversations (inbox_id, last_message_at, id);
-- The conversations a user was invited into (the primary key starts with the conversation).
CREATE INDEX conversation_members_user ON conversation_members (user_id, conversation_id);

-- A queued conversation always knows since when it waits (the queue's order).
UPDATE conversations SET queued_at = last_message_at WHERE status = 'queued' AND queued_at IS NULL;

-- A name an agent gave a contact (PATCH /contacts/{id}) stays: the display name of their next
-- email no longer replaces it.
ALTER TABLE contacts ADD COLUMN name_edited INTEGER NOT NULL DEFAULT 0;
