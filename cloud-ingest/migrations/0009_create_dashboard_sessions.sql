-- Dashboard sign-in sessions. Only the SHA-256 of the session id (the
-- cookie's secret) is stored; the session acts as the clinician token that
-- signed in, so revoking that token ends its sessions too.
CREATE TABLE dashboard_sessions (
    hash       BLOB    PRIMARY KEY CHECK (length(hash) = 32),
    token_id   INTEGER NOT NULL REFERENCES tokens (id),
    created_at TEXT    NOT NULL,
    expires_at TEXT    NOT NULL
);
CREATE INDEX dashboard_sessions_expires ON dashboard_sessions (expires_at);
