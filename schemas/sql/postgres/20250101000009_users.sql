-- Users of the web console and the API (issue 21): email + argon2id password hash,
-- a global admin flag, and a role per tenant. Sessions are cookie tokens, stored as
-- their SHA-256 like API keys, with the CSRF token of the session beside them.
CREATE TABLE users (
    id             UUID PRIMARY KEY,
    -- Lower-cased; one account per address.
    email          TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    is_admin       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE user_roles (
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id  UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'device_manager', 'viewer')),
    PRIMARY KEY (user_id, tenant_id)
);
CREATE INDEX user_roles_tenant ON user_roles (tenant_id);

CREATE TABLE user_sessions (
    token_hash    BYTEA PRIMARY KEY,
    user_id       UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token    TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX user_sessions_user ON user_sessions (user_id);
CREATE INDEX user_sessions_expiry ON user_sessions (expires_at);
