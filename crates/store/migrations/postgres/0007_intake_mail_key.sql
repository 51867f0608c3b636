-- PostgreSQL twin of migrations/sqlite/0007_intake_mail_key.sql (tests/schema_parity.rs
-- compares the two schemas): the same statements, except that PostgreSQL wants an index
-- expression in parentheses.

-- One index finds a mail in the ledger: by its Message-ID, or by the SHA-256 of its
-- bytes when it has none. The same bytes always carry the same Message-ID, so a
-- repeat is found under that key too; and since every incoming entry has its intake
-- row (outcome created or appended, with its ticket), answers thread through it.
-- Each index on a random key costs a page written per mail once it outgrows a
-- commit: with one instead of three, 100,000 mails write 4.5 GB instead of 5.4.
DROP INDEX intake_sha256;
DROP INDEX intake_message_id;
DROP INDEX entries_message_id;
CREATE INDEX intake_mail_key ON intake ((coalesce(message_id, sha256)));
