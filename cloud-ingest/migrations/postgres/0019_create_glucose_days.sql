-- PostgreSQL dialect of ../0019_create_glucose_days.sql: BIGINT, DOUBLE
-- PRECISION.
CREATE TABLE glucose_days (
    patient_id BIGINT           NOT NULL REFERENCES patients (id),
    day        BIGINT           NOT NULL,
    stale      BIGINT           NOT NULL DEFAULT 1,
    fresh      BIGINT,
    readings   BIGINT           NOT NULL DEFAULT 0,
    very_low   BIGINT           NOT NULL DEFAULT 0,
    low        BIGINT           NOT NULL DEFAULT 0,
    in_range   BIGINT           NOT NULL DEFAULT 0,
    tight      BIGINT           NOT NULL DEFAULT 0,
    high       BIGINT           NOT NULL DEFAULT 0,
    very_high  BIGINT           NOT NULL DEFAULT 0,
    slots      BIGINT           NOT NULL DEFAULT 0,
    sum_mg_dl  DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (patient_id, day)
);

INSERT INTO glucose_days (patient_id, day)
SELECT DISTINCT patient_id, time / 86400000000 FROM readings WHERE stream = 'glucose';
