-- Delivery chains: one row per (integration, device) that has had undelivered
-- events. Deliveries are in order per chain, so only a chain's oldest outbox row
-- can be sent; the chain row carries when that may next happen. Claiming scans
-- due chains (at most one per device) instead of every undelivered row, which
-- matters after an outage leaves millions of rows behind.
-- next_attempt_at = 9999-12-31 means idle: nothing to deliver.
CREATE TABLE outbox_chains (
    integration_id  UUID NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    dev_eui         BYTEA NOT NULL REFERENCES devices (dev_eui) ON DELETE CASCADE,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (integration_id, dev_eui)
);
CREATE INDEX outbox_chains_due ON outbox_chains (next_attempt_at);

INSERT INTO outbox_chains (integration_id, dev_eui, next_attempt_at)
SELECT o.integration_id, o.dev_eui, MIN(o.next_attempt_at)
FROM outbox o JOIN devices d ON d.dev_eui = o.dev_eui
GROUP BY o.integration_id, o.dev_eui;
