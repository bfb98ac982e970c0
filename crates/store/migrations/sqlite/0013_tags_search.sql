-- Tags and full-text search (issue 11). Keep in step with ../postgres/0013_tags_search.sql.

-- Tags on conversations. `tag` as first written, `tag_key` its lowercase form: a tag is
-- unique per conversation whatever its case, and `?tag=` finds it by that key. The set is
-- also kept on the conversation (`conversations.tags`, a JSON list in the order given), so
-- that every conversation answer carries it without another query; both are written by the
-- one call that replaces the set.
CREATE TABLE conversation_tags (
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    tag             TEXT    NOT NULL,
    tag_key         TEXT    NOT NULL,
    PRIMARY KEY (conversation_id, tag_key)
) STRICT;
CREATE INDEX conversation_tags_key ON conversation_tags (tag_key, conversation_id);
ALTER TABLE conversations ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';

-- Full-text search: FTS5 indexes over the rows themselves (external content, so no text is
-- stored twice), kept in step by triggers in the transaction that writes the rows. Tokens are
-- runs of letters and digits, case and diacritics folded ("Café" is found by "cafe").
-- System lines ("Taken by @ana") are not indexed; internal messages are.
CREATE VIRTUAL TABLE messages_fts USING fts5(
    text, content = 'messages', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.kind <> 'system' BEGIN
    INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.kind <> 'system' BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text, kind ON messages
    WHEN old.text IS NOT new.text OR old.kind IS NOT new.kind BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text)
        SELECT 'delete', old.id, old.text WHERE old.kind <> 'system';
    INSERT INTO messages_fts (rowid, text) SELECT new.id, new.text WHERE new.kind <> 'system';
END;

-- Conversations: the subject and the contact's name and address, as one document (so
-- "carol printer" finds Carol's conversation about a printer). It keeps its own copy of the
-- few words, as the contact lives in another table.
CREATE VIRTUAL TABLE conversations_fts USING fts5(
    subject, contact, tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER conversations_fts_insert AFTER INSERT ON conversations BEGIN
    INSERT INTO conversations_fts (rowid, subject, contact)
        SELECT new.id, new.subject, k.name || ' ' || k.email FROM contacts k
        WHERE k.id = new.contact_id;
END;
CREATE TRIGGER conversations_fts_delete AFTER DELETE ON conversations BEGIN
    DELETE FROM conversations_fts WHERE rowid = old.id;
END;
CREATE TRIGGER conversations_fts_update AFTER UPDATE OF subject, contact_id ON conversations
    WHEN old.subject IS NOT new.subject OR old.contact_id IS NOT new.contact_id BEGIN
    UPDATE conversations_fts SET subject = new.subject,
        contact = (SELECT k.name || ' ' || k.email FROM contacts k WHERE k.id = new.contact_id)
        WHERE rowid = new.id;
END;
-- Ingest upserts the contact of every email; only a changed name or address is re-indexed.
CREATE TRIGGER contacts_fts_update AFTER UPDATE OF name, email ON contacts
    WHEN old.name IS NOT new.name OR old.email IS NOT new.email BEGIN
    UPDATE conversations_fts SET contact = new.name || ' ' || new.email
        WHERE rowid IN (SELECT id FROM conversations WHERE contact_id = new.id);
END;

-- What was stored before this migration.
INSERT INTO messages_fts (rowid, text) SELECT id, text FROM messages WHERE kind <> 'system';
INSERT INTO conversations_fts (rowid, subject, contact)
    SELECT c.id, c.subject, k.name || ' ' || k.email
    FROM conversations c JOIN contacts k ON k.id = c.contact_id;
