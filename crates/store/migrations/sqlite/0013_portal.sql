-- The customer portal (issue 17): contacts sign in with one-time links mailed to them
-- (or a password they set), in sessions of their own kind; what a contact may see of
-- a ticket; and the portal's sign-in mail in the outbox.

-- A contact's colleagues see its tickets when its organization allows it.
ALTER TABLE organizations ADD COLUMN share_tickets BOOLEAN NOT NULL DEFAULT FALSE;
-- Optional: a contact who set one may sign in with it instead of a link (argon2id).
ALTER TABLE contacts ADD COLUMN password_hash TEXT;
-- Whether the customer may see the attachment (`public`) or only agents (`internal`).
-- What the customer sent is public; agents' uploads follow the helpdesk's setting.
ALTER TABLE attachments ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public';

-- One-time sign-in links: only the SHA-256 of the token is kept; a link works once
-- (`used_at`), until `expires_at`, for the helpdesk whose portal it was asked at.
CREATE TABLE portal_links (
    token_hash  TEXT PRIMARY KEY,
    contact_id  BIGINT NOT NULL REFERENCES contacts(id),
    helpdesk_id BIGINT NOT NULL REFERENCES helpdesks(id),
    address     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX portal_links_expires ON portal_links(expires_at);

-- Each request for a link (known address or not), counted per address (a hash of it)
-- and per client address for the rate limits; pruned after the window.
CREATE TABLE portal_link_requests (
    id          INTEGER PRIMARY KEY,
    address_key TEXT NOT NULL,
    client      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX portal_link_requests_address ON portal_link_requests(address_key, created_at);
CREATE INDEX portal_link_requests_client ON portal_link_requests(client, created_at);

-- Portal sessions: a kind of their own, never an agent's `sessions` row, so neither
-- can stand in for the other. `address` is the one the contact signed in with.
CREATE TABLE portal_sessions (
    token_hash TEXT PRIMARY KEY,
    contact_id BIGINT NOT NULL REFERENCES contacts(id),
    address    TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX portal_sessions_contact ON portal_sessions(contact_id);

-- Agents' notifications inside the app: one row per agent and event, read or not;
-- read ones older than the helpdesk's `keep_days` are pruned.
CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY,
    agent_id   BIGINT NOT NULL REFERENCES agents(id),
    ticket_id  BIGINT NOT NULL REFERENCES tickets(id),
    event      TEXT NOT NULL,
    text       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    read_at    BIGINT
);
CREATE INDEX notifications_agent ON notifications(agent_id, read_at);

-- Agents who watch a ticket: they are among its concerned agents.
CREATE TABLE ticket_watchers (
    ticket_id BIGINT NOT NULL REFERENCES tickets(id),
    agent_id  BIGINT NOT NULL REFERENCES agents(id),
    PRIMARY KEY (ticket_id, agent_id)
);

-- The outbox learns the sign-in mail (`portal_link`) and agents' change mails
-- (`ticket_modified`): SQLite cannot change a CHECK, so the table is built anew with the same columns, rows and indexes.
CREATE TABLE outbox_new (
    id              INTEGER PRIMARY KEY,
    helpdesk_id     BIGINT NOT NULL REFERENCES helpdesks(id),
    ticket_id       BIGINT REFERENCES tickets(id),
    intake_id       BIGINT REFERENCES intake(id),
    entry_id        BIGINT REFERENCES entries(id),
    kind            TEXT NOT NULL CHECK (kind IN ('acknowledgement', 'new_ticket', 'follow_up', 'alert', 'reply', 'portal_link', 'ticket_modified')),
    message_id      TEXT NOT NULL UNIQUE,
    envelope_from   TEXT NOT NULL,
    recipients      TEXT NOT NULL,
    subject         TEXT NOT NULL,
    raw             BLOB NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed', 'suppressed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
INSERT INTO outbox_new SELECT id, helpdesk_id, ticket_id, intake_id, entry_id, kind, message_id,
    envelope_from, recipients, subject, raw, status, attempts, next_attempt_at, last_error,
    created_at, sent_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
CREATE INDEX outbox_ticket ON outbox(ticket_id);
CREATE INDEX outbox_recipients ON outbox(recipients, kind, created_at);
