-- Batches seen, by their 16-byte idempotency key. `ack` is the BatchAck
-- (JSON text) answered the first time, so a retried batch id gets the same
-- answer without re-reading its readings. Times are whole microseconds
-- since the Unix epoch (BIGINT on PostgreSQL), like every time added from
-- here on: portable, indexable, and the wire protocol's own resolution.
-- SQLite-only: INTEGER PRIMARY KEY as the row id (PostgreSQL: BIGINT
-- GENERATED ALWAYS AS IDENTITY PRIMARY KEY); BLOB (PostgreSQL: BYTEA).
CREATE TABLE batches (
    id          INTEGER PRIMARY KEY,
    batch_key   BLOB    NOT NULL UNIQUE CHECK (length(batch_key) = 16),
    patient_id  INTEGER NOT NULL REFERENCES patients (id),
    device      TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    ack         TEXT    NOT NULL
);
