-- readings, partitioned by RANGE on `time` (µs since the epoch, UTC), one
-- partition per calendar month (issue 20): at volume, a read of a time
-- range touches only its months, an old month can be detached or dropped
-- whole instead of deleted row by row, and each month's indexes stay small
-- enough to stay cached. A DEFAULT partition takes any reading outside
-- every month; the service creates the current month and the next two at
-- start and daily (storage/postgres/partitions.rs), moving rows out of
-- the default partition when a month arrives late.
--
-- The unique key must hold the partition key, so it becomes (patient_id,
-- device, stream, session, seq, time). It no longer says that a seq is
-- stored once per series; intake keeps that promise itself, under a
-- per-series advisory lock (storage/postgres/intake.rs), and the key stays
-- as a belt for the same reading sent twice.
--
-- `id`: identity columns on partitioned tables are only half supported in
-- PostgreSQL 15 (an insert straight into a partition gets no value), so a
-- plain sequence keeps the insertion order readers break ties with.
--
-- Replica identity: PostgreSQL 15 does not hand REPLICA IDENTITY down to
-- partitions, and logical replication checks the partition a row is in.
-- Each partition gets its own (its part of the unique key, every column
-- NOT NULL), here and whenever the service creates one, so deletes (the
-- Nightscout DELETE) still replicate; the parent's is set to match.
--
-- Runs in the migration's one transaction: readers and writers wait for
-- the copy (ACCESS EXCLUSIVE on the old table from the RENAME on).
ALTER TABLE readings RENAME TO readings_unpartitioned;
ALTER SEQUENCE readings_id_seq RENAME TO readings_unpartitioned_id_seq;

-- Carries on where the old identity stopped (past deleted rows' ids too),
-- so no id is ever handed out twice.
CREATE SEQUENCE readings_id_seq;
SELECT setval('readings_id_seq',
              GREATEST((SELECT MAX(id) FROM readings_unpartitioned),
                       (SELECT last_value FROM readings_unpartitioned_id_seq WHERE is_called),
                       0) + 1,
              false);

CREATE TABLE readings (
    id              BIGINT           NOT NULL DEFAULT nextval('readings_id_seq'),
    patient_id      BIGINT           NOT NULL,
    device          TEXT             NOT NULL,
    stream          TEXT             NOT NULL,
    session         BIGINT           NOT NULL,
    seq             BIGINT           NOT NULL,
    time            BIGINT           NOT NULL,
    value           DOUBLE PRECISION NOT NULL,
    quality_percent DOUBLE PRECISION,
    quality_flagged BOOLEAN          NOT NULL,
    characteristic  INTEGER          NOT NULL,
    tolerance       DOUBLE PRECISION,
    held_back       BOOLEAN          NOT NULL,
    raw             BYTEA,
    batch_id        BIGINT           NOT NULL
) PARTITION BY RANGE (time);
ALTER SEQUENCE readings_id_seq OWNED BY readings.id;

CREATE TABLE readings_default PARTITION OF readings DEFAULT;

-- Every month from the oldest reading's to the newest's, then through two
-- months ahead of now (the service keeps that horizon). Named
-- readings_YYYY_MM, bounds at 00:00 UTC on the 1st.
DO $$
DECLARE
    first_month TIMESTAMP;
    last_month  TIMESTAMP;
    m           TIMESTAMP;
BEGIN
    SELECT date_trunc('month', to_timestamp(MIN(time) / 1e6) AT TIME ZONE 'UTC'),
           date_trunc('month', to_timestamp(MAX(time) / 1e6) AT TIME ZONE 'UTC')
      INTO first_month, last_month
      FROM readings_unpartitioned;
    m := LEAST(COALESCE(first_month, 'infinity'),
               date_trunc('month', now() AT TIME ZONE 'UTC'));
    last_month := GREATEST(COALESCE(last_month, '-infinity'),
                           date_trunc('month', now() AT TIME ZONE 'UTC') + interval '2 months');
    WHILE m <= last_month LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF readings FOR VALUES FROM (%s) TO (%s)',
            'readings_' || to_char(m, 'YYYY_MM'),
            (extract(epoch FROM m) * 1000000)::BIGINT,
            (extract(epoch FROM m + interval '1 month') * 1000000)::BIGINT);
        m := m + interval '1 month';
    END LOOP;
END
$$;

INSERT INTO readings (id, patient_id, device, stream, session, seq, time, value,
        quality_percent, quality_flagged, characteristic, tolerance, held_back, raw,
        batch_id)
    SELECT id, patient_id, device, stream, session, seq, time, value,
           quality_percent, quality_flagged, characteristic, tolerance, held_back, raw,
           batch_id
      FROM readings_unpartitioned;

DROP TABLE readings_unpartitioned;

-- Built after the copy (one sort per partition, not row by row).
CREATE INDEX readings_by_patient_stream_time ON readings (patient_id, stream, time);
ALTER TABLE readings ADD CONSTRAINT readings_series_seq_time_key
    UNIQUE (patient_id, device, stream, session, seq, time);

ALTER TABLE readings REPLICA IDENTITY USING INDEX readings_series_seq_time_key;
DO $$
DECLARE
    part  REGCLASS;
    index REGCLASS;
BEGIN
    FOR part, index IN
        SELECT i.indrelid::REGCLASS, i.indexrelid::REGCLASS
          FROM pg_inherits h JOIN pg_index i ON i.indexrelid = h.inhrelid
         WHERE h.inhparent = 'readings_series_seq_time_key'::REGCLASS
    LOOP
        EXECUTE format('ALTER TABLE %s REPLICA IDENTITY USING INDEX %s', part, index);
    END LOOP;
END
$$;
