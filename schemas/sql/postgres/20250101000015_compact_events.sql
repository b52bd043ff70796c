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

-- Columns ordered for alignment (8-, 4-, 2-byte, then byte-aligned ones).
-- dev_eui is the DevEUI's 8 bytes read as a signed big-endian integer: half the
-- size of BYTEA in the (dev_eui, id) index, the largest part of a row's cost. So
-- no foreign key can point at devices: the writer locks the device's row as a
-- foreign key check would (FOR KEY SHARE), and the trigger below deletes a
-- deleted device's events, as ON DELETE CASCADE did. f_cnt is NULL for the
-- (never seen) counters past 2^31 - 1; the body keeps them.
CREATE TABLE events (
    id             BIGINT NOT NULL DEFAULT nextval('event_ids'),
    created_at     TIMESTAMPTZ NOT NULL,
    dev_eui        BIGINT NOT NULL,
    f_cnt          INTEGER,
    kind           SMALLINT NOT NULL,
    f_port         SMALLINT,
    application_id UUID NOT NULL,
    body           BYTEA NOT NULL
) PARTITION BY RANGE (created_at);
-- A device's history, newest first; an application's events past a delivery
-- cursor. Outbox rows find their event through the first (they know the device).
CREATE INDEX events_device ON events (dev_eui, id);
CREATE INDEX events_application ON events (application_id, id);

CREATE FUNCTION events_of_deleted_device() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM events WHERE dev_eui = ('x' || encode(OLD.dev_eui, 'hex'))::bit(64)::bigint;
    RETURN OLD;
END
$$;
CREATE TRIGGER devices_delete_events AFTER DELETE ON devices
    FOR EACH ROW EXECUTE FUNCTION events_of_deleted_device();

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
