-- PostgreSQL dialect of ../0009_create_dashboard_sessions.sql.
CREATE TABLE dashboard_sessions (
    hash       BYTEA       PRIMARY KEY CHECK (length(hash) = 32),
    token_id   BIGINT      NOT NULL REFERENCES tokens (id),
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX dashboard_sessions_expires ON dashboard_sessions (expires_at);
