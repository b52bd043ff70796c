-- Private gateways (issue 20): a private gateway's id and location are left out of
-- the rxInfo of other tenants' events. `tenants.private_gateways` is the default
-- for the tenant's new gateways.
ALTER TABLE tenants ADD COLUMN private_gateways BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE gateways ADD COLUMN is_private BOOLEAN NOT NULL DEFAULT FALSE;
