-- Tags and full-text search (issue 11). Keep in step with ../sqlite/0013_tags_search.sql.

-- Tags on conversations. `tag` as first written, `tag_key` its lowercase form: a tag is
-- unique per conversation whatever its case, and `?tag=` finds it by that key. The set is
-- also kept on the conversation (`conversations.tags`, a JSON list in the order given), so
-- that every conversation answer carries it without another query; both are written by the
-- one call that replaces the set.
CREATE TABLE conversation_tags (
    conversation_id BIGINT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    tag             TEXT   NOT NULL,
    tag_key         TEXT   NOT NULL,
    PRIMARY KEY (conversation_id, tag_key)
);
CREATE INDEX conversation_tags_key ON conversation_tags (tag_key, conversation_id);
ALTER TABLE conversations ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';

-- Full-text search. The `simple` configuration (lowercase, no stemming, no stop words): mail
-- is multilingual, and a language's stemmer would mangle the others' words. Address and
-- path punctuation separates words, as SQLite's tokenizer does ("carol" finds
-- carol@example.com), and so do < and > (the parser would take "<script>…" in a plain-text
-- email for markup and skip what follows). A message's first 100,000 characters are indexed (a tsvector holds at
-- most 1 MB).
-- (replace() and octet_length(): translate() and left() on every text cost the ingest twice
-- what the separators do.)
CREATE FUNCTION search_document(body TEXT) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_tsvector('simple'::regconfig,
        replace(replace(replace(replace(replace(replace(replace(replace(
            CASE WHEN octet_length(body) > 100000 THEN left(body, 100000) ELSE body END,
            '@', ' '), '.', ' '), '_', ' '), '/', ' '), ':', ' '), '-', ' '), '<', ' '), '>', ' '))
$$;

-- Messages (system lines excepted), kept in step by triggers in the transaction that writes
-- them: one INSERT … SELECT per statement, so a batch of emails costs one more statement.
CREATE TABLE message_search (
    message_id BIGINT   PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    document   tsvector NOT NULL
);
INSERT INTO message_search (message_id, document)
    SELECT id, search_document(text) FROM messages WHERE kind <> 'system';
CREATE INDEX message_search_document ON message_search USING GIN (document);

CREATE FUNCTION message_search_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO message_search (message_id, document)
        SELECT id, search_document(text) FROM new_messages WHERE kind <> 'system';
    RETURN NULL;
END;
$$;
CREATE TRIGGER messages_search_insert AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_messages
    FOR EACH STATEMENT EXECUTE FUNCTION message_search_insert();

CREATE FUNCTION message_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM message_search WHERE message_id = new.id;
    IF new.kind <> 'system' THEN
        INSERT INTO message_search (message_id, document)
            VALUES (new.id, search_document(new.text));
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER messages_search_update AFTER UPDATE OF text, kind ON messages
    FOR EACH ROW WHEN (old.text IS DISTINCT FROM new.text OR old.kind IS DISTINCT FROM new.kind)
    EXECUTE FUNCTION message_search_update();

-- Conversations: the subject (weight A) and the contact's name and address (weight B).
CREATE TABLE conversation_search (
    conversation_id BIGINT   PRIMARY KEY REFERENCES conversations(id) ON DELETE CASCADE,
    document        tsvector NOT NULL
);
CREATE FUNCTION conversation_document(subject TEXT, name TEXT, email TEXT) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(search_document(subject), 'A')
        || setweight(search_document(name || ' ' || email), 'B')
$$;
INSERT INTO conversation_search (conversation_id, document)
    SELECT c.id, conversation_document(c.subject, k.name, k.email)
    FROM conversations c JOIN contacts k ON k.id = c.contact_id;
CREATE INDEX conversation_search_document ON conversation_search USING GIN (document);

CREATE FUNCTION conversation_search_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO conversation_search (conversation_id, document)
        SELECT c.id, conversation_document(c.subject, k.name, k.email)
        FROM new_conversations c JOIN contacts k ON k.id = c.contact_id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER conversations_search_insert AFTER INSERT ON conversations
    REFERENCING NEW TABLE AS new_conversations
    FOR EACH STATEMENT EXECUTE FUNCTION conversation_search_insert();

CREATE FUNCTION conversation_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversation_search s SET document = conversation_document(new.subject, k.name, k.email)
        FROM contacts k WHERE k.id = new.contact_id AND s.conversation_id = new.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER conversations_search_update AFTER UPDATE OF subject, contact_id ON conversations
    FOR EACH ROW
    WHEN (old.subject IS DISTINCT FROM new.subject OR old.contact_id IS DISTINCT FROM new.contact_id)
    EXECUTE FUNCTION conversation_search_update();

-- Ingest upserts the contact of every email; only a changed name or address is re-indexed.
CREATE FUNCTION contact_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversation_search s SET document = conversation_document(c.subject, new.name, new.email)
        FROM conversations c WHERE c.contact_id = new.id AND s.conversation_id = c.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER contacts_search_update AFTER UPDATE OF name, email ON contacts
    FOR EACH ROW WHEN (old.name IS DISTINCT FROM new.name OR old.email IS DISTINCT FROM new.email)
    EXECUTE FUNCTION contact_search_update();
