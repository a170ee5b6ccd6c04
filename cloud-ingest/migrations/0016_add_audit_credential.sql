-- Which kind of credential acted, beside which token: a device or
-- clinician bearer token, a dashboard session, a Nightscout API secret, or
-- the local admin CLI. Before this column a Nightscout secret's rows and
-- the CLI's both read token_id NULL. The log is append-only, so rows from
-- before it keep 'unrecorded'; every insert since names its credential.
ALTER TABLE audit_log ADD COLUMN credential TEXT NOT NULL DEFAULT 'unrecorded'
    CHECK (credential IN ('token', 'dashboard_session', 'nightscout_secret', 'admin_cli', 'unrecorded'));
