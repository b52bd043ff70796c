-- Keys at rest (docs/security.md, docs/storage.md).
--
-- Root keys, session keys and integration secrets are stored sealed under a
-- key-encryption key (KEK): each value is a self-describing envelope
--   0x01 | id length | KEK id | 12-byte nonce | AES-256-GCM ciphertext and tag
-- bound to its table, column and row. A key column of exactly 16 bytes is a plain
-- key written by the previous version: the server seals those at start-up, in
-- batches, and then clears key_encryption.plaintext_rows.

-- Envelopes are longer than 16 bytes.
ALTER TABLE device_keys DROP CONSTRAINT IF EXISTS device_keys_app_key_check;
ALTER TABLE device_keys DROP CONSTRAINT IF EXISTS device_keys_nwk_key_check;
ALTER TABLE device_sessions DROP CONSTRAINT IF EXISTS device_sessions_f_nwk_s_int_key_check;
ALTER TABLE device_sessions DROP CONSTRAINT IF EXISTS device_sessions_s_nwk_s_int_key_check;
ALTER TABLE device_sessions DROP CONSTRAINT IF EXISTS device_sessions_nwk_s_enc_key_check;
ALTER TABLE device_sessions DROP CONSTRAINT IF EXISTS device_sessions_app_s_key_check;

-- The secret fields of an integration's config (request headers, signing secret),
-- sealed as one JSON object; config keeps the rest. NULL: a row of the previous
-- version, whose config still holds them (sealed at start-up).
ALTER TABLE integrations ADD COLUMN secrets BYTEA;

-- One row per KEK that values may be sealed under: a known text sealed under it, so
-- start-up tells a missing or wrong KEK in one decryption. `lorikeet keys rotate`
-- removes the rows of KEKs no value is sealed under any more.
CREATE TABLE kek_verifiers (
    kek_id     TEXT PRIMARY KEY,
    verifier   BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- Whether plain keys of the previous version may be left (start-up seals them).
CREATE TABLE key_encryption (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    plaintext_rows BOOLEAN NOT NULL
);
INSERT INTO key_encryption (id, plaintext_rows) VALUES (1, TRUE);
