-- Outgoing mail: the transactional outbox. A row is written in the same transaction as
-- the ticket change that causes it, with the message fully rendered and its Message-ID
-- fixed, so a crash never loses a mail and a repeat is the same message.

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    helpdesk_id     BIGINT NOT NULL REFERENCES helpdesks(id),
    ticket_id       BIGINT REFERENCES tickets(id),
    intake_id       BIGINT REFERENCES intake(id),
    entry_id        BIGINT REFERENCES entries(id),
    kind            TEXT NOT NULL CHECK (kind IN ('acknowledgement', 'new_ticket', 'follow_up', 'alert', 'reply')),
    -- Without angle brackets, as entries.message_id; threads a reply to the ticket.
    message_id      TEXT NOT NULL UNIQUE,
    envelope_from   TEXT NOT NULL,
    -- Envelope recipients, lower-case, separated by ", ".
    recipients      TEXT NOT NULL,
    subject         TEXT NOT NULL,
    raw             BLOB NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed', 'suppressed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    -- Queued: not before this time. While a sender holds the row it is the end of its lease.
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
CREATE INDEX outbox_ticket ON outbox(ticket_id);
-- Rate limit of acknowledgements per recipient.
CREATE INDEX outbox_recipients ON outbox(recipients, kind, created_at);
