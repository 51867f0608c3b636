-- PostgreSQL twin of migrations/sqlite/0005_oauth.sql (tests/schema_parity.rs compares
-- the two schemas): the same statements.

-- OAuth2 tokens of IMAP mailboxes: a rotated refresh token must outlive the process,
-- or the mailbox dies with the next restart. `configured` is a SHA-256 of the refresh
-- token in the config, so a token the admin replaces there takes over again.

CREATE TABLE oauth_tokens (
    helpdesk      TEXT NOT NULL,
    mailbox       TEXT NOT NULL,
    configured    TEXT NOT NULL,
    refresh_token TEXT NOT NULL,
    access_token  TEXT,
    expires_at    BIGINT,
    PRIMARY KEY (helpdesk, mailbox)
);
