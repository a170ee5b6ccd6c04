-- One index fewer to maintain per reading (issue 20). The surrogate `id`
-- kept its own unique index (the primary key) that no query reads: readings
-- are found by patient and time (readings_by_patient_stream_time) or by
-- series and sequence (the unique key intake deduplicates on). The unique
-- key stays and becomes the replica identity, so logical replication can
-- still carry deletes; `id` stays as the insertion order readers break ties
-- with. (Promoting the unique key to primary key would rebuild its index:
-- PostgreSQL will not hand a constraint's index to another constraint.)
ALTER TABLE readings DROP CONSTRAINT readings_pkey;
ALTER TABLE readings
    REPLICA IDENTITY USING INDEX readings_patient_id_device_stream_session_seq_key;
