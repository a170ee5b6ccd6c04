-- Every stored reading, kept or held back by the phone's reduction, once
-- per (patient, device, stream, session, seq). `session` is -1 for streams
-- without sensor sessions so the unique key needs no NULL semantics (which
-- differ between SQLite and PostgreSQL). `seq` is the wire's u64 stored as
-- its two's-complement BIGINT. A held-back reading's value is the cloud's
-- reconstruction (within `tolerance` of what the sensor measured).
-- SQLite-only: INTEGER PRIMARY KEY, REAL (PostgreSQL: DOUBLE PRECISION),
-- BLOB (BYTEA).
CREATE TABLE readings (
    id              INTEGER PRIMARY KEY,
    patient_id      INTEGER NOT NULL REFERENCES patients (id),
    device          TEXT    NOT NULL,
    stream          TEXT    NOT NULL,
    session         INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    time            INTEGER NOT NULL,
    value           REAL    NOT NULL,
    quality_percent REAL,
    quality_flagged INTEGER NOT NULL CHECK (quality_flagged IN (0, 1)),
    characteristic  INTEGER NOT NULL,
    tolerance       REAL,
    held_back       INTEGER NOT NULL CHECK (held_back IN (0, 1)),
    raw             BLOB,
    batch_id        INTEGER NOT NULL REFERENCES batches (id),
    UNIQUE (patient_id, device, stream, session, seq)
);

CREATE INDEX readings_by_patient_stream_time ON readings (patient_id, stream, time);
