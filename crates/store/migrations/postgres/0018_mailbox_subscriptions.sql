-- PostgreSQL twin of migrations/sqlite/0018_mailbox_subscriptions.sql (tests/schema_parity.rs
-- compares the two schemas): the same statements.

-- Change notifications of API mailboxes (issue 20): per folder of a Graph mailbox, the
-- subscription `serve` made so that Graph tells it of new mail, with the random
-- `clientState` every notification must carry (checked before a notification wakes
-- the mailbox) and when the subscription runs out (renewed before then). Kept in the
-- database so that any instance answering the notification URL can check it, and so
-- that a restarted instance renews the subscription instead of leaving one behind.

CREATE TABLE mailbox_subscriptions (
    helpdesk         TEXT NOT NULL,
    mailbox          TEXT NOT NULL,
    folder           TEXT NOT NULL,
    subscription_id  TEXT NOT NULL UNIQUE,
    client_state     TEXT NOT NULL,
    notification_url TEXT NOT NULL,
    expires_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (helpdesk, mailbox, folder)
);
