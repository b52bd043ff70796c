-- Compact events (issue 23): typed columns for what is queried and the event JSON
-- as a compact body (crates/lorikeet-storage/src/compact.rs) that renders back to
-- the exact text delivered; what repeats across events is stored once in
-- `event_dict`. The old rows stay in `events_legacy` until the server moves them,
-- in batches, while it runs; reads cover both tables meanwhile. Ids continue
-- where the old table ended (delivery cursors compare ids).

-- The outbox, rebuilt without its foreign key to events (rows move between
-- tables; retention removes outbox rows with their events).
CREATE TABLE outbox_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id  BLOB NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    event_id        INTEGER NOT NULL,
    dev_eui         BLOB NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL
);
INSERT INTO outbox_new (id, integration_id, event_id, dev_eui, attempts, next_attempt_at,
                        last_error, created_at)
SELECT id, integration_id, event_id, dev_eui, attempts, next_attempt_at, last_error, created_at
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_chain ON outbox (integration_id, dev_eui, event_id);
CREATE INDEX outbox_due ON outbox (next_attempt_at);
CREATE INDEX outbox_event ON outbox (event_id);

-- Its indexes keep their names (events_device, events_application): reads use
-- them until it is empty.
ALTER TABLE events RENAME TO events_legacy;
DROP INDEX events_created;

-- Events are partitioned by day: the server creates `events_dYYYYMMDD` (same
-- columns: id, dev_eui, application_id, kind, f_cnt, f_port, created_at, body,
-- indexed on (dev_eui, id) and (application_id, id)) with the first event it
-- writes that day, and retention drops whole days. Ids come from one counter for
-- all of them, continuing where the old table ended.
CREATE TABLE event_seq (id INTEGER NOT NULL);
INSERT INTO event_seq (id) SELECT COALESCE(MAX(id), 0) FROM events_legacy;

CREATE TABLE event_dict (
    id      INTEGER PRIMARY KEY,
    kind    INTEGER NOT NULL,
    hash    BLOB NOT NULL,
    content BLOB NOT NULL,
    UNIQUE (kind, hash)
);
