-- Deadlines (issue 18): each ticket's deadline per target, the escalation timers that
-- run them, and interventions (work on site or in the workshop) linked to a ticket.

-- One row per ticket and target; a new next-response deadline replaces the last one.
CREATE TABLE ticket_deadlines (
    id           INTEGER PRIMARY KEY,
    ticket_id    BIGINT NOT NULL REFERENCES tickets(id),
    target       TEXT NOT NULL CHECK (target IN ('first_response', 'next_response', 'resolution')),
    -- The policy that set it, whose escalation targets apply.
    policy       TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    due_at       BIGINT NOT NULL,
    -- While the clock is stopped: since when, and the business seconds that were left.
    paused_since BIGINT,
    paused_left  BIGINT,
    met_at       BIGINT,
    -- The ticket was closed before a response target was met.
    stopped_at   BIGINT,
    by_hand      BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (ticket_id, target)
);
CREATE INDEX ticket_deadlines_due ON ticket_deadlines(due_at);

-- A warning or breach of one deadline (ticket, target, due_at): UNIQUE, so that each
-- is sent once however often the deadline moves away and back. Pending rows are
-- claimed by `serve` in the transaction that queues their mail.
CREATE TABLE deadline_timers (
    id         INTEGER PRIMARY KEY,
    ticket_id  BIGINT NOT NULL REFERENCES tickets(id),
    target     TEXT NOT NULL CHECK (target IN ('first_response', 'next_response', 'resolution')),
    kind       TEXT NOT NULL CHECK (kind IN ('warning', 'breach')),
    due_at     BIGINT NOT NULL,
    fire_at    BIGINT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'cancelled')),
    -- The escalation mail, when one was queued.
    outbox_id  BIGINT REFERENCES outbox(id),
    fired_at   BIGINT,
    UNIQUE (ticket_id, target, kind, due_at)
);
CREATE INDEX deadline_timers_pending ON deadline_timers(status, fire_at);

CREATE TABLE interventions (
    id            INTEGER PRIMARY KEY,
    ticket_id     BIGINT NOT NULL REFERENCES tickets(id),
    assignee_id   BIGINT REFERENCES agents(id),
    planned_start BIGINT,
    planned_end   BIGINT,
    status        TEXT NOT NULL CHECK (status IN ('planned', 'in-progress', 'done', 'cancelled')),
    minutes_spent BIGINT NOT NULL DEFAULT 0,
    text          TEXT NOT NULL,
    report        TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    created_by    BIGINT NOT NULL REFERENCES agents(id),
    modified_at   BIGINT NOT NULL
);
CREATE INDEX interventions_ticket ON interventions(ticket_id);
CREATE INDEX interventions_assignee ON interventions(assignee_id, planned_start);
