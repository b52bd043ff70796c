-- Uplinks per application and minute (issue 21): what the console's charts and the
-- overview read, kept as compact counters written with the events of each batch,
-- so no request counts events. Trimmed by the event retention.
CREATE TABLE uplink_minutes (
    application_id UUID NOT NULL,
    minute         TIMESTAMPTZ NOT NULL,
    uplinks        BIGINT NOT NULL,
    PRIMARY KEY (application_id, minute)
);
CREATE INDEX uplink_minutes_minute ON uplink_minutes (minute);
