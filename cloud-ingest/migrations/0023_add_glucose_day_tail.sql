-- What a day summary must know to take a batch without reading its day
-- again (issue 20): recomputing the whole day after every batch cost more
-- than storing the batch once days filled up. `series` is the one sensor
-- series (device and session) every reading of the day came from, NULL when
-- there are several or it is not known yet; `last_raw` the latest reading's
-- time and `last_point` the latest counted point's (microseconds). Rows
-- written before this version have NULLs, so their next batch recomputes
-- the day once and fills them.
ALTER TABLE glucose_days ADD COLUMN series TEXT;
ALTER TABLE glucose_days ADD COLUMN last_raw INTEGER;
ALTER TABLE glucose_days ADD COLUMN last_point INTEGER;
