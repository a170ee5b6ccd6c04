-- The unit a clinician reads glucose in on the dashboard (mg/dL in US
-- clinics, mmol/L in most others), kept per clinician rather than carried
-- in every link. Values are the report's `units` query values.
ALTER TABLE clinicians ADD COLUMN glucose_unit TEXT NOT NULL DEFAULT 'mgdl'
    CHECK (glucose_unit IN ('mgdl', 'mmol'));
