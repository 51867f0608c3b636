-- The ticket list at scale (issue 19): an index for each filter and sort the list
-- page offers (keyset pages walk them: `(key, id) < (last key, last id)`), and the
-- number of tickets per helpdesk and status kept by a trigger, so the status tabs are
-- read from a few rows instead of counted by a scan on every page view. Twin of
-- SQLite's 0017.
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

-- A status change moves one ticket from one counter row to another; the two rows are
-- always changed in key order, so that two changes crossing each other (open→closed
-- and closed→open) wait for each other instead of deadlocking.
CREATE FUNCTION ticket_counts_keep() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    down_first BOOLEAN := TG_OP = 'DELETE'
        OR (TG_OP = 'UPDATE' AND (OLD.helpdesk_id, OLD.status) < (NEW.helpdesk_id, NEW.status));
BEGIN
    IF down_first THEN
        UPDATE ticket_counts SET tickets = tickets - 1
            WHERE helpdesk_id = OLD.helpdesk_id AND status = OLD.status;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO ticket_counts (helpdesk_id, status, tickets)
            VALUES (NEW.helpdesk_id, NEW.status, 1)
            ON CONFLICT (helpdesk_id, status)
            DO UPDATE SET tickets = ticket_counts.tickets + 1;
    END IF;
    IF TG_OP = 'UPDATE' AND NOT down_first THEN
        UPDATE ticket_counts SET tickets = tickets - 1
            WHERE helpdesk_id = OLD.helpdesk_id AND status = OLD.status;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER ticket_counts_insert AFTER INSERT OR DELETE ON tickets
    FOR EACH ROW EXECUTE FUNCTION ticket_counts_keep();
CREATE TRIGGER ticket_counts_update AFTER UPDATE OF helpdesk_id, status ON tickets
    FOR EACH ROW WHEN (OLD.helpdesk_id IS DISTINCT FROM NEW.helpdesk_id
                       OR OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION ticket_counts_keep();
