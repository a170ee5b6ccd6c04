-- One Nightscout API secret per patient, stored as SHA-256 of the secret's
-- SHA-1 hex (see src/nightscout/mod.rs); unique, as it selects the patient.
CREATE TABLE nightscout_secrets (
    patient_id INTEGER PRIMARY KEY REFERENCES patients (id),
    hash       TEXT    NOT NULL UNIQUE CHECK (length(hash) = 64),
    set_at     TEXT    NOT NULL
);
