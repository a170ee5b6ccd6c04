-- PostgreSQL dialect of ../0008_create_contact.sql.
CREATE TABLE heartbeats (
    patient_id  BIGINT PRIMARY KEY REFERENCES patients (id),
    sent_at     BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    body        TEXT   NOT NULL
);

CREATE TABLE patient_contact (
    patient_id      BIGINT PRIMARY KEY REFERENCES patients (id),
    last_contact    BIGINT NOT NULL,
    silent_alert_id TEXT,
    silent_since    BIGINT,
    CHECK ((silent_alert_id IS NULL) = (silent_since IS NULL))
);
