-- PostgreSQL dialect of ../0016_add_audit_credential.sql.
ALTER TABLE audit_log ADD COLUMN credential TEXT NOT NULL DEFAULT 'unrecorded'
    CHECK (credential IN ('token', 'dashboard_session', 'nightscout_secret', 'admin_cli', 'unrecorded'));
