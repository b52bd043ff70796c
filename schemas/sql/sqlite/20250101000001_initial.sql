-- Lorikeet schema, SQLite backend. Keep in step with ../postgres/ (same tables,
-- same columns, same meaning). Conventions:
--   EUIs, DevAddrs and AES keys are BLOBs, most significant byte first (as printed).
--   UUIDs are 16-byte BLOBs; booleans are INTEGER 0/1; JSON is TEXT.
--   Timestamps are INTEGER microseconds since the Unix epoch (UTC), so that they
--   compare and sort as numbers.

CREATE TABLE tenants (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- The default tenant always exists; its id is fixed (lorikeet_storage::DEFAULT_TENANT_ID).
INSERT INTO tenants (id, name, created_at, updated_at)
VALUES (X'00000000000000000000000000000001', 'default',
        CAST(strftime('%s', 'now') AS INTEGER) * 1000000,
        CAST(strftime('%s', 'now') AS INTEGER) * 1000000);

CREATE TABLE api_keys (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    -- SHA-256 of the token; the token itself is never stored.
    key_hash    BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE applications (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    -- Target of the devices' (application_id, tenant_id) foreign key.
    UNIQUE (id, tenant_id)
);
CREATE INDEX applications_tenant ON applications (tenant_id);

CREATE TABLE device_profiles (
    id                  BLOB PRIMARY KEY,
    tenant_id           BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    description         TEXT NOT NULL DEFAULT '',
    region              TEXT NOT NULL,
    mac_version         TEXT NOT NULL,
    reg_params_revision TEXT NOT NULL,
    supports_otaa       INTEGER NOT NULL,
    supports_class_c    INTEGER NOT NULL,
    adr_enabled         INTEGER NOT NULL,
    rx1_delay           INTEGER NOT NULL,
    rx1_dr_offset       INTEGER NOT NULL,
    -- NULL: the region's default.
    rx2_dr              INTEGER,
    rx2_frequency_hz    INTEGER,
    codec_type          TEXT NOT NULL,
    codec_script        TEXT NOT NULL DEFAULT '',
    -- ADR / MAC settings (issue 7), owned by the network server.
    mac_settings        TEXT NOT NULL DEFAULT '{}',
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    UNIQUE (id, tenant_id)
);
CREATE INDEX device_profiles_tenant ON device_profiles (tenant_id);

CREATE TABLE devices (
    dev_eui              BLOB PRIMARY KEY CHECK (length(dev_eui) = 8),
    join_eui             BLOB NOT NULL CHECK (length(join_eui) = 8),
    -- Denormalised from the application; the composite foreign keys below keep the
    -- device, its application and its profile in one tenant.
    tenant_id            BLOB NOT NULL,
    application_id       BLOB NOT NULL,
    device_profile_id    BLOB NOT NULL,
    name                 TEXT NOT NULL,
    description          TEXT NOT NULL DEFAULT '',
    tags                 TEXT NOT NULL DEFAULT '{}',
    skip_fcnt_check      INTEGER NOT NULL DEFAULT 0,
    disabled             INTEGER NOT NULL DEFAULT 0,
    device_class_enabled TEXT NOT NULL DEFAULT 'A',
    last_seen_at         INTEGER,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    FOREIGN KEY (application_id, tenant_id) REFERENCES applications (id, tenant_id) ON DELETE CASCADE,
    FOREIGN KEY (device_profile_id, tenant_id) REFERENCES device_profiles (id, tenant_id)
);
CREATE INDEX devices_application ON devices (application_id, dev_eui);
CREATE INDEX devices_tenant ON devices (tenant_id, dev_eui);
CREATE INDEX devices_profile ON devices (device_profile_id);

-- Root keys and OTAA join state.
CREATE TABLE device_keys (
    dev_eui        BLOB PRIMARY KEY REFERENCES devices (dev_eui) ON DELETE CASCADE,
    app_key        BLOB NOT NULL CHECK (length(app_key) = 16),
    -- NULL for LoRaWAN 1.0.x devices (they have only the AppKey).
    nwk_key        BLOB CHECK (length(nwk_key) = 16),
    -- The last JoinNonce sent in a JoinAccept (0: none yet).
    join_nonce     INTEGER NOT NULL DEFAULT 0,
    -- The last accepted DevNonce (1.0.4 / 1.1: the next must be greater).
    last_dev_nonce INTEGER,
    updated_at     INTEGER NOT NULL
);

-- DevNonces of accepted joins, the most recent USED_DEV_NONCE_LIMIT per device
-- (1.0.0-1.0.3 replay protection; see docs/storage.md).
CREATE TABLE used_dev_nonces (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    dev_eui   BLOB NOT NULL REFERENCES devices (dev_eui) ON DELETE CASCADE,
    dev_nonce INTEGER NOT NULL,
    used_at   INTEGER NOT NULL,
    UNIQUE (dev_eui, dev_nonce)
);
CREATE INDEX used_dev_nonces_device ON used_dev_nonces (dev_eui, id);

CREATE TABLE device_sessions (
    dev_eui         BLOB PRIMARY KEY REFERENCES devices (dev_eui) ON DELETE CASCADE,
    dev_addr        BLOB NOT NULL CHECK (length(dev_addr) = 4),
    mac_version     TEXT NOT NULL,
    f_nwk_s_int_key BLOB NOT NULL CHECK (length(f_nwk_s_int_key) = 16),
    s_nwk_s_int_key BLOB NOT NULL CHECK (length(s_nwk_s_int_key) = 16),
    nwk_s_enc_key   BLOB NOT NULL CHECK (length(nwk_s_enc_key) = 16),
    app_s_key       BLOB NOT NULL CHECK (length(app_s_key) = 16),
    -- The next expected uplink frame counter (32-bit).
    f_cnt_up        INTEGER NOT NULL,
    n_f_cnt_down    INTEGER NOT NULL,
    a_f_cnt_down    INTEGER NOT NULL,
    conf_f_cnt      INTEGER NOT NULL DEFAULT 0,
    -- Opaque JSON text owned by the network server (MAC, ADR and RX state).
    ns_state        TEXT NOT NULL DEFAULT '{}',
    updated_at      INTEGER NOT NULL
);
CREATE INDEX device_sessions_dev_addr ON device_sessions (dev_addr);

CREATE TABLE device_queue (
    id          BLOB PRIMARY KEY,
    dev_eui     BLOB NOT NULL REFERENCES devices (dev_eui) ON DELETE CASCADE,
    f_port      INTEGER NOT NULL,
    data        BLOB NOT NULL,
    confirmed   INTEGER NOT NULL,
    -- Set for items queued as an object, encoded by the device profile's codec when sent.
    object      TEXT,
    f_cnt_down  INTEGER,
    -- Sent as a confirmed downlink and waiting for the device's ACK.
    pending     INTEGER NOT NULL DEFAULT 0,
    sent_at     INTEGER,
    expires_at  INTEGER,
    created_at  INTEGER NOT NULL
);
CREATE INDEX device_queue_device ON device_queue (dev_eui, created_at);

CREATE TABLE gateways (
    gateway_id   BLOB PRIMARY KEY CHECK (length(gateway_id) = 8),
    tenant_id    BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    latitude     REAL,
    longitude    REAL,
    altitude     REAL,
    last_seen_at INTEGER,
    stats        TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX gateways_tenant ON gateways (tenant_id);

CREATE TABLE integrations (
    id                BLOB PRIMARY KEY,
    application_id    BLOB NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    kind              TEXT NOT NULL,
    config            TEXT NOT NULL,
    last_delivered_at INTEGER,
    last_error        TEXT,
    last_error_at     INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (application_id, kind)
);

CREATE TABLE events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    dev_eui        BLOB NOT NULL REFERENCES devices (dev_eui) ON DELETE CASCADE,
    application_id BLOB NOT NULL,
    kind           TEXT NOT NULL,
    payload        TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX events_device ON events (dev_eui, id);
CREATE INDEX events_created ON events (created_at);

-- One row per (event, integration) still to deliver; deleted once delivered.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id  BLOB NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    event_id        INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    dev_eui         BLOB NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX outbox_chain ON outbox (integration_id, dev_eui, event_id);
CREATE INDEX outbox_due ON outbox (next_attempt_at);
CREATE INDEX outbox_event ON outbox (event_id);
