-- The web UI and the REST API: who may sign in, to which helpdesks, with which sessions
-- and tokens; and the failed mails an agent dismissed.

ALTER TABLE agents ADD COLUMN active BOOLEAN NOT NULL DEFAULT TRUE;

-- An agent sees the helpdesks listed here; an admin sees every helpdesk.
CREATE TABLE agent_helpdesks (
    agent_id    BIGINT NOT NULL REFERENCES agents(id),
    helpdesk_id BIGINT NOT NULL REFERENCES helpdesks(id),
    PRIMARY KEY (agent_id, helpdesk_id)
);

-- Only SHA-256 hashes of session and API tokens are kept: a copy of the database
-- does not let anyone sign in.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    agent_id   BIGINT NOT NULL REFERENCES agents(id),
    csrf       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_agent ON sessions(agent_id);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    agent_id     BIGINT NOT NULL REFERENCES agents(id),
    name         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);

-- A failed mail an agent dismissed leaves the failed queue but stays in the ledger.
ALTER TABLE intake ADD COLUMN dismissed_at BIGINT;
CREATE INDEX entries_intake ON entries(intake_id);
