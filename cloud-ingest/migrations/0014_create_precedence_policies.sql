-- A patient's source-precedence policy per quantity (heart_rate, glucose,
-- spo2), as the JSON document `vigil_core::precedence::PrecedenceConfig`
-- reads. No row means the product default. `updated_by` is the token that
-- set it (NULL for the admin CLI); every change is also in the audit log.
CREATE TABLE precedence_policies (
    patient_id INTEGER NOT NULL REFERENCES patients (id),
    quantity   TEXT    NOT NULL,
    policy     TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    updated_by INTEGER,
    PRIMARY KEY (patient_id, quantity)
);
