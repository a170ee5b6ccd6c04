-- Patients: the unit every token, assignment and audit row is scoped to.
-- display_name is PHI; it never leaves through logs.
CREATE TABLE patients (
    id           INTEGER PRIMARY KEY,
    display_name TEXT    NOT NULL CHECK (length(display_name) > 0),
    created_at   TEXT    NOT NULL
);
