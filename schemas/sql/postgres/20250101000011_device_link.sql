-- Link health per device (issue 21). On the device row: the newest uplink's radio
-- figures (written with last_seen_at) and the last DevStatusAns. Per device and
-- hour: RSSI and SNR of the uplinks, for the console's charts, added to in the
-- transaction that stores the events and trimmed by the event retention.
ALTER TABLE devices ADD COLUMN last_f_cnt_up BIGINT;
ALTER TABLE devices ADD COLUMN last_dr SMALLINT;
ALTER TABLE devices ADD COLUMN last_rssi_dbm INTEGER;
ALTER TABLE devices ADD COLUMN last_snr_db REAL;
ALTER TABLE devices ADD COLUMN battery_percent REAL;
ALTER TABLE devices ADD COLUMN external_power BOOLEAN;
ALTER TABLE devices ADD COLUMN margin_db SMALLINT;
ALTER TABLE devices ADD COLUMN status_at TIMESTAMPTZ;

CREATE TABLE device_link_hours (
    dev_eui   BYTEA NOT NULL REFERENCES devices (dev_eui) ON DELETE CASCADE,
    hour      TIMESTAMPTZ NOT NULL,
    uplinks   BIGINT NOT NULL,
    rssi_sum  BIGINT NOT NULL,
    rssi_min  INTEGER NOT NULL,
    rssi_max  INTEGER NOT NULL,
    snr_sum   DOUBLE PRECISION NOT NULL,
    snr_n     BIGINT NOT NULL,
    PRIMARY KEY (dev_eui, hour)
);
CREATE INDEX device_link_hours_hour ON device_link_hours (hour);
