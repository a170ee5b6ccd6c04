-- An uploader's own trend for each glucose entry it posts (direction and
-- delta, as xDrip+ or Juggluco computed them from the sensor), kept so
-- that GET /api/v1/entries returns the uploader's arrow instead of one
-- recomputed from stored values (an upload sent `SingleDown` came back
-- `Flat`). Stored as a third collection of nightscout_documents, one row
-- per (patient, entry time); SQLite cannot alter a CHECK, so the table is
-- rebuilt with every row and its id.
CREATE TABLE nightscout_documents_v2 (
    id         INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patients (id),
    collection TEXT    NOT NULL CHECK (collection IN ('treatments', 'devicestatus', 'entries')),
    time_ms    INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    document   TEXT    NOT NULL,
    UNIQUE (patient_id, collection, time_ms, kind)
);
INSERT INTO nightscout_documents_v2 (id, patient_id, collection, time_ms, kind, document)
    SELECT id, patient_id, collection, time_ms, kind, document FROM nightscout_documents;
DROP TABLE nightscout_documents;
ALTER TABLE nightscout_documents_v2 RENAME TO nightscout_documents;
