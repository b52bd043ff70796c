-- The ordered change feed: one row per provisioning change, written in the same
-- transaction as the change. SQLite has one writer at a time, so `seq` order is
-- commit order; `tx` is always 0 (Postgres orders by its transaction ids).
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tx INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    created_at INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
);
CREATE INDEX changes_created ON changes (created_at);
