-- PostgreSQL twin of migrations/sqlite/0009_sign_in_limits_and_tokens.sql (tests/schema_parity.rs
-- compares the two schemas): the same statements.

-- API tokens that end: revoked by an admin, or past their expiry.
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE api_tokens ADD COLUMN revoked_at BIGINT;

-- Sign-in attempts not (yet) followed by a success, counted before the password is
-- checked. `scope` is `pair` (a name from one client address), `name` (a name from
-- anywhere) or `address` (any name from one client address). Names are kept only as
-- hashes of their first characters (`name_key`), so the rows stay small whatever
-- was typed; the table is pruned to a bounded number of rows.
CREATE TABLE login_attempts (
    scope      TEXT NOT NULL,
    name_key   TEXT NOT NULL,
    address    TEXT NOT NULL,
    attempts   BIGINT NOT NULL,
    first_at   BIGINT NOT NULL,
    last_at    BIGINT NOT NULL,
    PRIMARY KEY (scope, name_key, address)
);
CREATE INDEX login_attempts_last ON login_attempts(last_at);

-- Client addresses a name signed in from: the global per-name backoff and the
-- per-address limit do not apply there, so strangers cannot lock an agent out of
-- the address they work from.
CREATE TABLE login_known (
    name_key   TEXT NOT NULL,
    address    TEXT NOT NULL,
    last_at    BIGINT NOT NULL,
    PRIMARY KEY (name_key, address)
);
