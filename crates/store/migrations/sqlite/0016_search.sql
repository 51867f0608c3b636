-- Full-text search (issue 19): one document per ticket, rowid = the ticket's id,
-- written by the store (src/search.rs) in the transaction of every change that
-- alters it. The text is already tokens joined by spaces (postdesk_core::search:
-- words lower-cased, CJK as bigrams), so the `ascii` tokenizer only splits at the
-- spaces. Contentless: the texts stay in their own tables (snippets come from there).
-- The migration runner then writes the document of every existing ticket.
CREATE VIRTUAL TABLE ticket_search USING fts5(
    title, people, files, body,
    tokenize = 'ascii', content = '', contentless_delete = 1
);
