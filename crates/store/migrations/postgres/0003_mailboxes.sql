-- PostgreSQL twin of migrations/sqlite/0003_mailboxes.sql (tests/schema_parity.rs
-- compares the two schemas): the same statements.

-- IMAP mailboxes: health for `postdesk status` and the UIDs remembered with after_success = keep.

CREATE TABLE mailbox_status (
    helpdesk        TEXT NOT NULL,
    mailbox         TEXT NOT NULL,
    last_success_at BIGINT,
    last_error      TEXT,
    last_error_at   BIGINT,
    processed       BIGINT NOT NULL DEFAULT 0,
    failed          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (helpdesk, mailbox)
);

CREATE TABLE mailbox_folders (
    helpdesk     TEXT NOT NULL,
    mailbox      TEXT NOT NULL,
    folder       TEXT NOT NULL,
    uid_validity BIGINT NOT NULL,
    last_uid     BIGINT NOT NULL,
    PRIMARY KEY (helpdesk, mailbox, folder)
);
