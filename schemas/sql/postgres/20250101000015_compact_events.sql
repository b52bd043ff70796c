-- Compact events (issue 23). An event row keeps typed columns for what is
-- queried (device, application, time, type, fCnt, fPort) and the event JSON as a
-- compact body (crates/lorikeet-storage/src/compact.rs) that renders back to the
-- exact text delivered; what repeats across events (object shapes, device and
-- radio descriptions) is stored once in `event_dict`.
--
-- The table is partitioned by day on created_at. No partition is created here:
-- the writer creates the day's partition before its first event, and the hourly
-- upkeep creates the next days' ahead and drops whole days past the retention.
-- There is no DEFAULT partition (rows parked there would make creating their
-- day's partition fail later).
--
-- The old rows stay in `events_legacy` until the server moves them, in batches,
-- while it runs; reads cover both tables meanwhile, and the table is dropped when
-- it is empty. Ids continue where the old table ended (delivery cursors compare
-- ids), from a sequence of their own.

-- Outbox rows point at events that move between tables and partitions: no
-- foreign key (retention drops them with their events' days).
ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_event_id_fkey;

ALTER TABLE events RENAME TO events_legacy;
ALTER INDEX events_device RENAME TO events_legacy_device;
ALTER INDEX events_application RENAME TO events_legacy_application;
DROP INDEX events_created;

CREATE SEQUENCE event_ids;
SELECT setval('event_ids', (SELECT COALESCE(MAX(id), 0) + 1 FROM events_legacy), false);

-- Columns ordered for alignment (8-byte, then 2-byte, then byte-aligned ones).
CREATE TABLE events (
    id             BIGINT NOT NULL DEFAULT nextval('event_ids'),
    created_at     TIMESTAMPTZ NOT NULL,
    f_cnt          BIGINT,
    kind           SMALLINT NOT NULL,
    f_port         SMALLINT,
    application_id UUID NOT NULL,
    dev_eui        BYTEA NOT NULL REFERENCES devices (dev_eui) ON DELETE CASCADE,
    body           BYTEA NOT NULL
) PARTITION BY RANGE (created_at);
-- A device's history, newest first; an application's events past a delivery
-- cursor. Outbox rows find their event through the first (they know the device).
CREATE INDEX events_device ON events (dev_eui, id);
CREATE INDEX events_application ON events (application_id, id);

-- Entries are immutable once written (a renamed device gets a new entry), so
-- every process may cache them for good. `hash` (SHA-256 of the content, first
-- 16 bytes) keeps the unique index small.
CREATE TABLE event_dict (
    id      BIGSERIAL PRIMARY KEY,
    kind    SMALLINT NOT NULL,
    hash    BYTEA NOT NULL,
    content BYTEA NOT NULL,
    UNIQUE (kind, hash)
);
