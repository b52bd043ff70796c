-- The ordered change feed: one row per provisioning change, written in the same
-- transaction as the change. The live state (and, later, every instance sharing the
-- database) applies rows in (tx, seq) order. `tx` is the writing transaction's id:
-- a reader takes only rows whose `tx` is below the oldest transaction still running
-- (pg_snapshot_xmin), so a transaction that commits late can never be skipped.
CREATE TABLE changes (
    seq BIGSERIAL PRIMARY KEY,
    tx BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX changes_order ON changes (tx, seq);
CREATE INDEX changes_created ON changes (created_at);
