-- PostgreSQL dialect of ../0018_add_clinician_glucose_unit.sql.
ALTER TABLE clinicians ADD COLUMN glucose_unit TEXT NOT NULL DEFAULT 'mgdl'
    CHECK (glucose_unit IN ('mgdl', 'mmol'));
