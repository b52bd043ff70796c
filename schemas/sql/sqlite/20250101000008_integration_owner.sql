-- Who last set an integration's target (issue 20, the SSRF guard): 'admin' (the
-- admin token: loopback and private networks allowed) or 'tenant' (a tenant API
-- key: global addresses only). The webhook worker checks every connection against
-- it. Integrations stored before this column existed count as 'tenant' (the strict
-- rule); re-save one with the admin token to let it reach a private address again.
ALTER TABLE integrations ADD COLUMN owner TEXT NOT NULL DEFAULT 'tenant'
    CHECK (owner IN ('admin', 'tenant'));
