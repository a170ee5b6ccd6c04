-- PostgreSQL dialect of ../0010_create_nightscout_secrets.sql.
CREATE TABLE nightscout_secrets (
    patient_id BIGINT      PRIMARY KEY REFERENCES patients (id),
    hash       TEXT        NOT NULL UNIQUE CHECK (length(hash) = 64),
    set_at     TIMESTAMPTZ NOT NULL
);
