-- Who last set an integration's target (issue 20, the SSRF guard): 'admin' (the
-- admin token: loopback and private networks allowed) or 'tenant' (a tenant API
-- key: global addresses only). The webhook worker checks every connection against
-- it. Integrations stored before this column existed count as 'tenant' (the strict
-- rule); re-save one with the admin token to let it reach a private address again.
ALTER TABLE integrations ADD COLUMN owner TEXT NOT NULL DEFAULT 'tenant'
    CHECK (owner IN ('admin', 'tenant'));

-- Delivery errors no longer quote the endpoint's response body (whoever set the
-- target reads `lastError`): cut the old "HTTP 500: <body excerpt>" form to its status.
UPDATE integrations SET last_error = substr(last_error, 1, 8) WHERE last_error LIKE 'HTTP ___:%';
UPDATE outbox SET last_error = substr(last_error, 1, 8) WHERE last_error LIKE 'HTTP ___:%';
