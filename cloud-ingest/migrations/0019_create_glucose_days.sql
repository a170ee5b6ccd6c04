-- Each patient's resolved glucose summarised per UTC day, counted by the
-- consensus bands, for the clinician triage list (issue 17), so that list
-- reads about 28 rows per patient instead of every reading.
--
-- The counts are a cache of what src/glucose_days.rs computes from the
-- day's resolved series (src/resolved.rs); they are never the source of
-- truth. `stale` is a generation bumped in the same transaction as any
-- write that can change the day (a glucose reading stored or deleted, a
-- glucose precedence policy set); `fresh` is the generation the counts were
-- computed at (NULL: never). A row is current exactly when fresh = stale;
-- a reader recomputes the rows that are not before using them, and a
-- recompute only lands if no write bumped `stale` meanwhile.
--
-- `day` is whole days since 1970-01-01 UTC. Bands (mg/dL, as
-- vigil_model::metrics): very_low < 54, low 54..70, in_range 70..=180
-- (tight 70..=140 is inside it), high 180<..=250, very_high > 250. `slots`
-- counts the 5-minute slots (aligned to the epoch) holding a reading: the
-- wear.
CREATE TABLE glucose_days (
    patient_id INTEGER NOT NULL REFERENCES patients (id),
    day        INTEGER NOT NULL,
    stale      INTEGER NOT NULL DEFAULT 1,
    fresh      INTEGER,
    readings   INTEGER NOT NULL DEFAULT 0,
    very_low   INTEGER NOT NULL DEFAULT 0,
    low        INTEGER NOT NULL DEFAULT 0,
    in_range   INTEGER NOT NULL DEFAULT 0,
    tight      INTEGER NOT NULL DEFAULT 0,
    high       INTEGER NOT NULL DEFAULT 0,
    very_high  INTEGER NOT NULL DEFAULT 0,
    slots      INTEGER NOT NULL DEFAULT 0,
    sum_mg_dl  REAL    NOT NULL DEFAULT 0,
    PRIMARY KEY (patient_id, day)
);

-- The backfill: every day that already holds glucose starts stale, so the
-- first reader (or the next intake) computes it.
INSERT INTO glucose_days (patient_id, day)
SELECT DISTINCT patient_id, time / 86400000000 FROM readings WHERE stream = 'glucose';
