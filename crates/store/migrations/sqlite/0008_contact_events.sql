-- What agents changed on a contact (its name, its addresses), with the old and the new
-- value: an address change redirects the helpdesk's replies, so it must be traceable.
CREATE TABLE contact_events (
    id         INTEGER PRIMARY KEY,
    contact_id BIGINT NOT NULL REFERENCES contacts(id),
    agent_id   BIGINT REFERENCES agents(id),
    field      TEXT NOT NULL,
    old_value  TEXT NOT NULL,
    new_value  TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX contact_events_contact ON contact_events(contact_id);
