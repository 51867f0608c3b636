-- Full-text search (issue 19): one document per ticket, written by the store
-- (src/search.rs) in the transaction of every change that alters it, as a tsvector
-- literal (postdesk_core::search tokenizes: words lower-cased, CJK as bigrams;
-- weights A title and number, B people, C file names, D texts). Twin of SQLite's
-- FTS5 table; the schema comparison knows both as the search index `ticket_search`.
-- The migration runner then writes the document of every existing ticket.
CREATE TABLE ticket_search (
    ticket_id BIGINT PRIMARY KEY REFERENCES tickets(id) ON DELETE CASCADE,
    document  TSVECTOR NOT NULL
);
CREATE INDEX ticket_search_document ON ticket_search USING GIN (document);
