-- Alert rules and alerts (issue 21). A rule belongs to a tenant and may be narrowed
-- to one application; `params` is the kind's JSON parameters (docs/alerts.md).
-- An alert is one episode of a rule's condition for one subject (a device, gateway
-- or integration): it fires once and resolves once. At most one alert per rule and
-- subject is firing at a time (alerts_one_firing), whoever writes.
CREATE TABLE alert_rules (
    id              UUID PRIMARY KEY,
    tenant_id       UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    application_id  UUID REFERENCES applications (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    params          TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX alert_rules_tenant ON alert_rules (tenant_id, created_at);

CREATE TABLE alerts (
    id               UUID PRIMARY KEY,
    rule_id          UUID NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    tenant_id        UUID NOT NULL,
    application_id   UUID,
    subject_type     TEXT NOT NULL,
    subject          TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('firing', 'resolved')),
    message          TEXT NOT NULL,
    resolve_message  TEXT,
    fired_at         TIMESTAMPTZ NOT NULL,
    resolved_at      TIMESTAMPTZ
);
CREATE INDEX alerts_tenant ON alerts (tenant_id, fired_at);
CREATE INDEX alerts_rule ON alerts (rule_id);
CREATE UNIQUE INDEX alerts_one_firing ON alerts (rule_id, subject) WHERE state = 'firing';
CREATE INDEX alerts_resolved ON alerts (resolved_at) WHERE state = 'resolved';
