-- PostgreSQL dialect of ../0023_add_glucose_day_tail.sql: BIGINT times.
ALTER TABLE glucose_days ADD COLUMN series TEXT;
ALTER TABLE glucose_days ADD COLUMN last_raw BIGINT;
ALTER TABLE glucose_days ADD COLUMN last_point BIGINT;
