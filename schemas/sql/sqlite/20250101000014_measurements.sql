-- Decoded measurements (issue 22, the `postgres` integration): one row per numeric
-- field of an uplink's decoded object. The primary key includes the event id, so a
-- retried delivery inserts nothing twice (ON CONFLICT DO NOTHING), and starts with
-- (dev_eui, time), the shape of every read (one device over a time range); WITHOUT
-- ROWID keeps the rows in that order. SQLite has no partitions: the server's hourly
-- upkeep deletes rows past their application's retention.
CREATE TABLE measurements (
    application_id  BLOB NOT NULL,
    dev_eui         BLOB NOT NULL REFERENCES devices (dev_eui) ON DELETE CASCADE,
    time            INTEGER NOT NULL,
    event_id        INTEGER NOT NULL,
    name            TEXT NOT NULL,
    value           REAL NOT NULL,
    PRIMARY KEY (dev_eui, time, name, event_id)
) WITHOUT ROWID;
-- Retention deletes rows per application and time.
CREATE INDEX measurements_application ON measurements (application_id, time);
