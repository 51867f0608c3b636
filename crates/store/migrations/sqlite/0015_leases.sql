-- Mailbox leases (issue 15): which `postdesk serve` instance reads each mailbox when
-- several share one database. One row per mailbox: its holder (host:pid:random), the
-- fencing token (raised on every takeover; a batch commits only while the token it
-- was read under is still the row's), and the times in milliseconds of the
-- database's clock, so that instances on machines whose clocks differ agree on expiry.

CREATE TABLE mailbox_leases (
    helpdesk    TEXT NOT NULL,
    mailbox     TEXT NOT NULL,
    holder      TEXT NOT NULL,
    token       BIGINT NOT NULL,
    acquired_ms BIGINT NOT NULL,
    renewed_ms  BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    released_ms BIGINT,
    PRIMARY KEY (helpdesk, mailbox)
);

-- The `serve` instances alive now, each renewing its row as it renews its leases: the
-- mailboxes are shared out among them (no instance takes more than its fair share
-- while others have fewer), and a row not renewed for a lease's length is a dead one.
CREATE TABLE serve_instances (
    holder  TEXT PRIMARY KEY,
    seen_ms BIGINT NOT NULL
);
