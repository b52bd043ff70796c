-- Keys at rest (docs/security.md, docs/storage.md).
--
-- Root keys, session keys and integration secrets are stored sealed under a
-- key-encryption key (KEK): each value is a self-describing envelope
--   0x01 | id length | KEK id | 12-byte nonce | AES-256-GCM ciphertext and tag
-- bound to its table, column and row. A key column of exactly 16 bytes is a plain
-- key written by the previous version: the server seals those at start-up, in
-- batches, and then clears key_encryption.plaintext_rows.

-- Envelopes are longer than 16 bytes: SQLite cannot drop a CHECK, so the two tables
-- are rebuilt without the length checks on their keys (no table refers to them).
CREATE TABLE device_keys_v6 (
    dev_eui        BLOB PRIMARY KEY REFERENCES devices (dev_eui) ON DELETE CASCADE,
    -- Sealed AppKey (a plain 16-byte key only in rows of the previous version).
    app_key        BLOB NOT NULL,
    -- Sealed NwkKey; NULL for LoRaWAN 1.0.x devices (they have only the AppKey).
    nwk_key        BLOB,
    -- The last JoinNonce sent in a JoinAccept (0: none yet).
    join_nonce     INTEGER NOT NULL DEFAULT 0,
    -- The last accepted DevNonce (1.0.4 / 1.1: the next must be greater).
    last_dev_nonce INTEGER,
    updated_at     INTEGER NOT NULL
);
INSERT INTO device_keys_v6 (dev_eui, app_key, nwk_key, join_nonce, last_dev_nonce, updated_at)
    SELECT dev_eui, app_key, nwk_key, join_nonce, last_dev_nonce, updated_at FROM device_keys;
DROP TABLE device_keys;
ALTER TABLE device_keys_v6 RENAME TO device_keys;

CREATE TABLE device_sessions_v6 (
    dev_eui         BLOB PRIMARY KEY REFERENCES devices (dev_eui) ON DELETE CASCADE,
    dev_addr        BLOB NOT NULL CHECK (length(dev_addr) = 4),
    mac_version     TEXT NOT NULL,
    -- The four session keys, sealed.
    f_nwk_s_int_key BLOB NOT NULL,
    s_nwk_s_int_key BLOB NOT NULL,
    nwk_s_enc_key   BLOB NOT NULL,
    app_s_key       BLOB NOT NULL,
    -- The next expected uplink frame counter (32-bit).
    f_cnt_up        INTEGER NOT NULL,
    n_f_cnt_down    INTEGER NOT NULL,
    a_f_cnt_down    INTEGER NOT NULL,
    conf_f_cnt      INTEGER NOT NULL DEFAULT 0,
    -- Opaque JSON text owned by the network server (MAC, ADR and RX state).
    ns_state        TEXT NOT NULL DEFAULT '{}',
    updated_at      INTEGER NOT NULL
);
INSERT INTO device_sessions_v6 (dev_eui, dev_addr, mac_version, f_nwk_s_int_key,
        s_nwk_s_int_key, nwk_s_enc_key, app_s_key, f_cnt_up, n_f_cnt_down, a_f_cnt_down,
        conf_f_cnt, ns_state, updated_at)
    SELECT dev_eui, dev_addr, mac_version, f_nwk_s_int_key, s_nwk_s_int_key, nwk_s_enc_key,
        app_s_key, f_cnt_up, n_f_cnt_down, a_f_cnt_down, conf_f_cnt, ns_state, updated_at
    FROM device_sessions;
DROP TABLE device_sessions;
ALTER TABLE device_sessions_v6 RENAME TO device_sessions;
CREATE INDEX device_sessions_dev_addr ON device_sessions (dev_addr);

-- The secret fields of an integration's config (request headers, signing secret),
-- sealed as one JSON object; config keeps the rest. NULL: a row of the previous
-- version, whose config still holds them (sealed at start-up).
ALTER TABLE integrations ADD COLUMN secrets BLOB;

-- One row per KEK that values may be sealed under: a known text sealed under it, so
-- start-up tells a missing or wrong KEK in one decryption. `lorikeet keys rotate`
-- removes the rows of KEKs no value is sealed under any more.
CREATE TABLE kek_verifiers (
    kek_id     TEXT PRIMARY KEY,
    verifier   BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

-- Whether plain keys of the previous version may be left (start-up seals them).
CREATE TABLE key_encryption (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    plaintext_rows INTEGER NOT NULL
);
INSERT INTO key_encryption (id, plaintext_rows) VALUES (1, 1);
