-- PostgreSQL twin of migrations/sqlite/0010_entry_fidelity.sql (tests/schema_parity.rs
-- compares the two schemas): the same statements.

-- What the parser knew about an incoming mail, kept with its entry so an agent can
-- see why it reads as it does. NULL on entries that are not incoming mail, and on
-- mail taken in before this migration.
-- `detected_charset`: the encoding chosen for 8-bit text that had no usable label
-- (an encoding_rs name such as `windows-1251`); NULL when every label was used as written.
ALTER TABLE entries ADD COLUMN detected_charset TEXT;
-- `sender_source`: the header the sender was taken from (`From`, `Reply-To`…).
ALTER TABLE entries ADD COLUMN sender_source TEXT;
-- `class_signal`: what decided the classification (`Auto-Submitted: auto-replied`…).
ALTER TABLE entries ADD COLUMN class_signal TEXT;
