-- The ticket list at scale (issue 19): an index for each filter and sort the list
-- page offers (keyset pages walk them: `(key, id) < (last key, last id)`), and the
-- number of tickets per helpdesk and status kept by triggers, so the status tabs are
-- read from a few rows instead of counted by a scan on every page view.
CREATE INDEX tickets_modified ON tickets(modified_at, id);
CREATE INDEX tickets_reported ON tickets(reported_at, id);
CREATE INDEX tickets_number ON tickets(number, id);
CREATE INDEX tickets_status_modified ON tickets(status, modified_at, id);
CREATE INDEX tickets_assignee_modified ON tickets(assignee_id, modified_at, id);
CREATE INDEX tickets_priority_modified ON tickets(priority, modified_at, id);
CREATE INDEX tickets_helpdesk_modified ON tickets(helpdesk_id, modified_at, id);
-- Sorting by priority sorts by this expression (src/desk.rs, TicketSort::Priority).
CREATE INDEX tickets_priority_rank ON tickets((CASE lower(priority) WHEN 'urgent' THEN 4 WHEN 'high' THEN 3 WHEN 'normal' THEN 2 WHEN 'low' THEN 1 ELSE 0 END), id);

CREATE TABLE ticket_counts (
    helpdesk_id BIGINT NOT NULL REFERENCES helpdesks(id),
    status      TEXT NOT NULL,
    tickets     BIGINT NOT NULL,
    PRIMARY KEY (helpdesk_id, status)
);
INSERT INTO ticket_counts (helpdesk_id, status, tickets)
    SELECT helpdesk_id, status, COUNT(*) FROM tickets GROUP BY helpdesk_id, status;

CREATE TRIGGER ticket_counts_insert AFTER INSERT ON tickets
BEGIN
    INSERT INTO ticket_counts (helpdesk_id, status, tickets)
        VALUES (NEW.helpdesk_id, NEW.status, 1)
        ON CONFLICT (helpdesk_id, status) DO UPDATE SET tickets = tickets + 1;
END;

CREATE TRIGGER ticket_counts_update AFTER UPDATE OF helpdesk_id, status ON tickets
WHEN OLD.helpdesk_id IS NOT NEW.helpdesk_id OR OLD.status IS NOT NEW.status
BEGIN
    UPDATE ticket_counts SET tickets = tickets - 1
        WHERE helpdesk_id = OLD.helpdesk_id AND status = OLD.status;
    INSERT INTO ticket_counts (helpdesk_id, status, tickets)
        VALUES (NEW.helpdesk_id, NEW.status, 1)
        ON CONFLICT (helpdesk_id, status) DO UPDATE SET tickets = tickets + 1;
END;

CREATE TRIGGER ticket_counts_delete AFTER DELETE ON tickets
BEGIN
    UPDATE ticket_counts SET tickets = tickets - 1
        WHERE helpdesk_id = OLD.helpdesk_id AND status = OLD.status;
END;
