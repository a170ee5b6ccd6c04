-- The per-row foreign-key checks of the hot intake tables, dropped: intake
-- already guarantees what they checked, and on PostgreSQL each check is a
-- look-up that also locks the parent row (FOR KEY SHARE, a WAL record),
-- for every reading of every batch (issue 20: a COPY of the same rows took
-- 2.8-4.5 times longer with them).
--
-- What guarantees the references now:
-- - patient_id on readings, glucose_days, patient_contact and heartbeats
--   comes from an authenticated device token, whose row references its
--   patient (tokens keep their foreign key);
-- - readings.batch_id is the id of the batch row inserted in the same
--   transaction, for the same patient.
--
-- Kept: batches.patient_id (one check a batch, not a reading) and the audit
-- log's references. Every reading has its batch, so deleting a patient who
-- has readings is still refused by the batches foreign key (and by the
-- audit log's), as before; no code path deletes patients or batches.
ALTER TABLE readings DROP CONSTRAINT readings_patient_id_fkey;
ALTER TABLE readings DROP CONSTRAINT readings_batch_id_fkey;
ALTER TABLE glucose_days DROP CONSTRAINT glucose_days_patient_id_fkey;
ALTER TABLE patient_contact DROP CONSTRAINT patient_contact_patient_id_fkey;
ALTER TABLE heartbeats DROP CONSTRAINT heartbeats_patient_id_fkey;
