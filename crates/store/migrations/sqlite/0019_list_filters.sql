-- The ticket list filtered by helpdesk and status together (issue 19): the page walks
-- this index in its order and reads only the page's tickets, where 0017's
-- `tickets_status_modified` also read every other helpdesk's tickets of that status
-- (and `tickets_helpdesk_modified` every other status of that helpdesk) and dropped them.
CREATE INDEX tickets_helpdesk_status_modified ON tickets(helpdesk_id, status, modified_at, id);
-- 0001's (helpdesk_id, status) is this one's leading part.
DROP INDEX tickets_status;
