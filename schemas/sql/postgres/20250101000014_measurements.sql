-- Decoded measurements (issue 22, the `postgres` integration): one row per numeric
-- field of an uplink's decoded object. The primary key includes the event id, so a
-- retried delivery inserts nothing twice (ON CONFLICT DO NOTHING), and starts with
-- (dev_eui, time), the shape of every read (one device over a time range).
--
-- Partitioned by day on `time`. No partition is created here: the server's hourly
-- upkeep creates today's and the next three days' (`measurements_pYYYYMMDD`) and
-- drops those past the longest retention; a write for a day without one creates
-- it first. There is deliberately no DEFAULT partition: rows parked there would
-- make creating their day's partition fail later (docs/integrations.md).
CREATE TABLE measurements (
    application_id  UUID NOT NULL,
    dev_eui         BYTEA NOT NULL REFERENCES devices (dev_eui) ON DELETE CASCADE,
    time            TIMESTAMPTZ NOT NULL,
    event_id        BIGINT NOT NULL,
    name            TEXT NOT NULL,
    value           DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (dev_eui, time, name, event_id)
) PARTITION BY RANGE (time);
-- Retention deletes rows per application and time.
CREATE INDEX measurements_application ON measurements (application_id, time);
