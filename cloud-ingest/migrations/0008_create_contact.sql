-- The latest heartbeat per patient (by the phone's sent_at; history is not
-- kept: the dead-man's switch and the dashboard need only the latest, and
-- a heartbeat a minute per phone would dwarf the readings), and the
-- dead-man's switch state: when the service last heard from the patient's
-- SDK (heartbeat or batch, by the server's clock) and the open `app_silent`
-- episode, if any.
CREATE TABLE heartbeats (
    patient_id  INTEGER PRIMARY KEY REFERENCES patients (id),
    sent_at     INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    body        TEXT    NOT NULL
);

CREATE TABLE patient_contact (
    patient_id      INTEGER PRIMARY KEY REFERENCES patients (id),
    last_contact    INTEGER NOT NULL,
    silent_alert_id TEXT,
    silent_since    INTEGER,
    CHECK ((silent_alert_id IS NULL) = (silent_since IS NULL))
);
