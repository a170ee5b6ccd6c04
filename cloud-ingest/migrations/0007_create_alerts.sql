-- Alert events as phones (and the dead-man's switch) post them, each once
-- by (patient, alert id, phase, time): the wire protocol's event key. The
-- episode id is the stable one a clinician acknowledges. `kind` is text,
-- not the SDK's closed list: the service adds `app_silent`.
-- SQLite-only: INTEGER PRIMARY KEY, REAL.
CREATE TABLE alert_events (
    id          INTEGER PRIMARY KEY,
    patient_id  INTEGER NOT NULL REFERENCES patients (id),
    alert_id    TEXT    NOT NULL,
    device      TEXT,
    kind        TEXT    NOT NULL,
    phase       TEXT    NOT NULL,
    time        INTEGER NOT NULL,
    value       REAL,
    detail      TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (patient_id, alert_id, phase, time)
);

CREATE INDEX alert_events_by_alert ON alert_events (alert_id);
CREATE INDEX alert_events_by_patient_time ON alert_events (patient_id, time);

-- Who acknowledged which alert episode, when; once per token.
CREATE TABLE alert_acks (
    patient_id INTEGER NOT NULL REFERENCES patients (id),
    alert_id   TEXT    NOT NULL,
    token_id   INTEGER NOT NULL REFERENCES tokens (id),
    at         INTEGER NOT NULL,
    PRIMARY KEY (patient_id, alert_id, token_id)
);
