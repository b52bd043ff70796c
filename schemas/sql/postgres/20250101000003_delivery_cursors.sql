-- Webhook delivery reads new events straight from `events`, in id order per
-- application, starting after each integration's cursor: every event of the
-- application with an id up to `delivered_through` has been delivered, given up,
-- or moved to the outbox. The outbox now holds only events whose delivery failed
-- (and the later events of the same device, which must wait behind them), so a
-- healthy endpoint costs no outbox writes at all.
ALTER TABLE integrations ADD COLUMN delivered_through BIGINT NOT NULL DEFAULT 0;
-- Events written before this migration already have outbox rows.
UPDATE integrations SET delivered_through = (SELECT COALESCE(MAX(id), 0) FROM events);
CREATE INDEX events_application ON events (application_id, id);
-- Events are written once and read back as text (webhook bodies, the API): `json`
-- keeps the producer's text as it is (validated, not re-encoded), where `jsonb`
-- parsed it into a binary form on every insert and rendered it again on every read.
ALTER TABLE events ALTER COLUMN payload TYPE JSON USING payload::json;
