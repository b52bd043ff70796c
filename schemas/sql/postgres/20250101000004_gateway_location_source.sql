-- Where a gateway's location comes from: 'provisioned' (set through the API; the
-- forwarder's GPS reports are ignored) or 'reported' (the last GPS fix in a `stat`).
ALTER TABLE gateways ADD COLUMN location_source TEXT NOT NULL DEFAULT 'reported';
