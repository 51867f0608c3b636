-- The core schema: people, tickets, their history, attachments and the intake ledger.
-- Times are Unix seconds (BIGINT) so the same SQL serves SQLite and PostgreSQL.

CREATE TABLE helpdesks (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE organizations (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE contacts (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL,
    organization_id BIGINT REFERENCES organizations(id),
    created_at      BIGINT NOT NULL
);

-- One contact, several addresses; stored lower-cased so uniqueness is case-insensitive.
CREATE TABLE contact_addresses (
    address    TEXT PRIMARY KEY,
    contact_id BIGINT NOT NULL REFERENCES contacts(id)
);
CREATE INDEX contact_addresses_contact ON contact_addresses(contact_id);

CREATE TABLE agents (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    email         TEXT UNIQUE,
    role          TEXT NOT NULL DEFAULT 'agent',
    password_hash TEXT,
    created_at    BIGINT NOT NULL
);

CREATE TABLE tickets (
    id              INTEGER PRIMARY KEY,
    helpdesk_id     BIGINT NOT NULL REFERENCES helpdesks(id),
    number          BIGINT NOT NULL,
    title           TEXT NOT NULL,
    mail_subject    TEXT NOT NULL,
    requester_id    BIGINT REFERENCES contacts(id),
    organization_id BIGINT REFERENCES organizations(id),
    channel         TEXT NOT NULL DEFAULT 'email',
    status          TEXT NOT NULL,
    priority        TEXT,
    ticket_type     TEXT,
    category        TEXT,
    subcategory     TEXT,
    manager_id      BIGINT REFERENCES agents(id),
    assignee_id     BIGINT REFERENCES agents(id),
    parent_id       BIGINT REFERENCES tickets(id),
    external_id     TEXT,
    environment     TEXT,
    reported_at     BIGINT NOT NULL,
    planned_at      BIGINT,
    deadline_at     BIGINT,
    in_progress_at  BIGINT,
    done_at         BIGINT,
    created_at      BIGINT NOT NULL,
    created_by      BIGINT REFERENCES agents(id),
    modified_at     BIGINT NOT NULL,
    modified_by     BIGINT REFERENCES agents(id),
    UNIQUE (helpdesk_id, number)
);
CREATE INDEX tickets_status ON tickets(helpdesk_id, status);
CREATE INDEX tickets_requester ON tickets(requester_id);

-- Addresses that took part in a ticket's mail (requester, To, CC): the follow-up sender policy.
CREATE TABLE ticket_participants (
    ticket_id BIGINT NOT NULL REFERENCES tickets(id),
    address   TEXT NOT NULL,
    PRIMARY KEY (ticket_id, address)
);

CREATE TABLE intake (
    id             INTEGER PRIMARY KEY,
    helpdesk_id    BIGINT REFERENCES helpdesks(id),
    source         TEXT NOT NULL,
    location       TEXT NOT NULL,
    message_id     TEXT,
    sha256         TEXT NOT NULL,
    sender         TEXT,
    subject        TEXT,
    outcome        TEXT NOT NULL CHECK (outcome IN ('created', 'appended', 'ignored', 'failed')),
    classification TEXT NOT NULL,
    ticket_id      BIGINT REFERENCES tickets(id),
    reason         TEXT,
    received_at    BIGINT NOT NULL,
    processed_at   BIGINT NOT NULL,
    -- The mail exactly as received, zstd-compressed: it can always be inspected and processed again.
    raw_size       BIGINT NOT NULL,
    raw            BLOB NOT NULL
);
CREATE INDEX intake_sha256 ON intake(sha256);
CREATE INDEX intake_message_id ON intake(message_id);
CREATE INDEX intake_outcome ON intake(outcome);

CREATE TABLE entries (
    id                  INTEGER PRIMARY KEY,
    ticket_id           BIGINT NOT NULL REFERENCES tickets(id),
    kind                TEXT NOT NULL CHECK (kind IN ('incoming', 'outgoing', 'note', 'event')),
    author_agent_id     BIGINT REFERENCES agents(id),
    author_contact_id   BIGINT REFERENCES contacts(id),
    from_addr           TEXT,
    to_addrs            TEXT,
    cc_addrs            TEXT,
    subject             TEXT,
    body_text           TEXT NOT NULL,
    body_full           TEXT,
    body_html           TEXT,
    message_id          TEXT,
    in_reply_to         TEXT,
    refs                TEXT,
    classification      TEXT,
    warnings            TEXT,
    visible_to_customer BOOLEAN NOT NULL,
    intake_id           BIGINT REFERENCES intake(id),
    created_at          BIGINT NOT NULL
);
CREATE INDEX entries_ticket ON entries(ticket_id);
CREATE INDEX entries_message_id ON entries(message_id);

CREATE TABLE attachments (
    id            INTEGER PRIMARY KEY,
    entry_id      BIGINT NOT NULL REFERENCES entries(id),
    sha256        TEXT,
    original_name TEXT,
    safe_name     TEXT NOT NULL,
    mime_type     TEXT NOT NULL,
    size          BIGINT NOT NULL,
    content_id    TEXT,
    inline        BOOLEAN NOT NULL,
    -- Set when the attachment policy refused it: it is listed, but its bytes are not kept.
    refused       TEXT
);
CREATE INDEX attachments_entry ON attachments(entry_id);
