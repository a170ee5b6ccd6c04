-- Nightscout treatments (insulin, carbohydrates, notes, sensor changes) and
-- device status documents that uploaders (xDrip+, Juggluco, AndroidAPS)
-- post, normalised to the fields Vigil keeps (src/nightscout/care.rs).
-- Stored once per (patient, collection, time, kind): an uploader retrying
-- the same treatment or status does not double it. `kind` is the
-- treatment's eventType or the status's device name; `time_ms` is its
-- created_at in ms since the epoch.
CREATE TABLE nightscout_documents (
    id         INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patients (id),
    collection TEXT    NOT NULL CHECK (collection IN ('treatments', 'devicestatus')),
    time_ms    INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    document   TEXT    NOT NULL,
    UNIQUE (patient_id, collection, time_ms, kind)
);
