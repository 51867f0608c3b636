-- PostgreSQL twin of migrations/sqlite/0002_rules.sql (tests/schema_parity.rs compares
-- the two schemas): the same statements.

-- Mail rules: tags a rule (or later an agent) puts on a ticket.

CREATE TABLE ticket_tags (
    ticket_id BIGINT NOT NULL REFERENCES tickets(id),
    tag       TEXT NOT NULL,
    PRIMARY KEY (ticket_id, tag)
);
CREATE INDEX ticket_tags_tag ON ticket_tags(tag);
