-- Traffic per gateway and minute (issue 21): uplinks received, downlinks it sent, and
-- transmissions it refused (TX_ACK errors), added to by the network server every few
-- seconds; the console's gateway charts read it. Trimmed by the event retention.
CREATE TABLE gateway_minutes (
    gateway_id     BLOB NOT NULL REFERENCES gateways (gateway_id) ON DELETE CASCADE,
    minute         INTEGER NOT NULL,
    uplinks        INTEGER NOT NULL,
    downlinks      INTEGER NOT NULL,
    tx_ack_errors  INTEGER NOT NULL,
    PRIMARY KEY (gateway_id, minute)
);
CREATE INDEX gateway_minutes_minute ON gateway_minutes (minute);
