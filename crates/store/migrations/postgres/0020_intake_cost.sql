-- What intake costs PostgreSQL per mail (issue 15: the import bench spent about 540 µs
-- of server CPU a mail). Storage and triggers only: tests/schema_parity.rs compares
-- tables, columns, types, indexes and constraints, none of which change here, so the
-- SQLite twin of this file changes nothing.

-- A ticket's search document (0016) is a tsvector of a few kilobytes, rewritten with
-- every batch that adds to the ticket; PostgreSQL compressed it with pglz. lz4 (as the
-- entries' texts, 0014) is several times faster at a ratio close to it. A server built
-- without lz4 keeps pglz.
DO $$
BEGIN
    ALTER TABLE ticket_search ALTER COLUMN document SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this PostgreSQL has no lz4: search documents keep pglz';
END
$$;

-- The number of tickets per helpdesk and status (0017) kept once per statement instead
-- of once per row: intake inserts a batch's new tickets in one statement, and the
-- row trigger ran a PL/pgSQL function and an upsert of the same counter row for each
-- of them. Now the statement's rows are counted per (helpdesk, status) from its
-- transition tables and each counter row changes once, by the difference. The rows are
-- changed in key order (ORDER BY), so that two statements moving tickets across the
-- same counters wait for each other instead of deadlocking, as before. (PostgreSQL
-- allows transition tables only on triggers of one event and without a column list: the
-- UPDATE trigger fires on every UPDATE of tickets, and an UPDATE that moves no ticket
-- between counters finds no difference and writes nothing.)
DROP TRIGGER ticket_counts_insert ON tickets;
DROP TRIGGER ticket_counts_update ON tickets;
DROP FUNCTION ticket_counts_keep();

CREATE FUNCTION ticket_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ticket_counts AS c (helpdesk_id, status, tickets)
        SELECT helpdesk_id, status, SUM(n) FROM (
            SELECT helpdesk_id, status, 1 AS n FROM new_rows
            UNION ALL
            SELECT helpdesk_id, status, -1 AS n FROM old_rows
        ) AS moved
        GROUP BY helpdesk_id, status
        HAVING SUM(n) <> 0
        ORDER BY helpdesk_id, status
        ON CONFLICT (helpdesk_id, status) DO UPDATE SET tickets = c.tickets + EXCLUDED.tickets;
    RETURN NULL;
END;
$$;

-- The insert and delete triggers have one of the two tables.
CREATE FUNCTION ticket_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ticket_counts AS c (helpdesk_id, status, tickets)
        SELECT helpdesk_id, status, COUNT(*) FROM new_rows
        GROUP BY helpdesk_id, status
        ORDER BY helpdesk_id, status
        ON CONFLICT (helpdesk_id, status) DO UPDATE SET tickets = c.tickets + EXCLUDED.tickets;
    RETURN NULL;
END;
$$;

CREATE FUNCTION ticket_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ticket_counts AS c (helpdesk_id, status, tickets)
        SELECT helpdesk_id, status, -COUNT(*) FROM old_rows
        GROUP BY helpdesk_id, status
        ORDER BY helpdesk_id, status
        ON CONFLICT (helpdesk_id, status) DO UPDATE SET tickets = c.tickets + EXCLUDED.tickets;
    RETURN NULL;
END;
$$;

CREATE TRIGGER ticket_counts_insert AFTER INSERT ON tickets
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ticket_counts_insert();
CREATE TRIGGER ticket_counts_update AFTER UPDATE ON tickets
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ticket_counts_add();
CREATE TRIGGER ticket_counts_delete AFTER DELETE ON tickets
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ticket_counts_delete();
