-- Graph and Gmail mailboxes (issue 20): where each folder's change feed stands, so a
-- restart reads only what changed. For Graph the token is the folder's delta link,
-- for Gmail the history id (folder `*`: Gmail's history is the whole mailbox's). It is
-- written only after every mail it covers was committed and moved, so a crash in
-- between reads those mails again and the ledger recognises them.

CREATE TABLE mailbox_sync (
    helpdesk   TEXT NOT NULL,
    mailbox    TEXT NOT NULL,
    folder     TEXT NOT NULL,
    sync_token TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (helpdesk, mailbox, folder)
);
