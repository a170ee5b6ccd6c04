-- Clinicians and the patients they are assigned to. A clinician token reads
-- exactly the patients listed here for its clinician.
CREATE TABLE clinicians (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE CHECK (length(name) > 0),
    created_at TEXT    NOT NULL
);

CREATE TABLE clinician_patients (
    clinician_id INTEGER NOT NULL REFERENCES clinicians (id),
    patient_id   INTEGER NOT NULL REFERENCES patients (id),
    assigned_at  TEXT    NOT NULL,
    PRIMARY KEY (clinician_id, patient_id)
);

-- "Which clinicians see this patient" (live alert fan-out, next step).
CREATE INDEX clinician_patients_by_patient ON clinician_patients (patient_id);
