-- Webhooks a clinic registers for alert and new-data events, and the
-- delivery queue that survives restarts. The signing secret is stored as
-- is: the service needs it to sign, and it authenticates the service to the
-- receiver, not anyone to the service.
CREATE TABLE webhooks (
    id           INTEGER PRIMARY KEY,
    url          TEXT    NOT NULL,
    events       TEXT    NOT NULL,      -- comma-separated: alert,data
    secret       TEXT    NOT NULL,
    created_at   TEXT    NOT NULL,
    disabled_at  TEXT
);

CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY,
    webhook_id       INTEGER NOT NULL REFERENCES webhooks (id),
    event            TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    created_at       TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,              -- NULL once delivered or given up
    delivered_at     TEXT,
    gave_up_at       TEXT,
    last_status      INTEGER,
    last_error       TEXT
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
