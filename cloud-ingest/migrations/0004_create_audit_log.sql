-- Append-only audit of every read and write of patient data. token_id names
-- who (NULL: the local admin CLI), never the secret. The triggers make the
-- log append-only for every writer, including a buggy one in this service.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    at         TEXT    NOT NULL,
    token_id   INTEGER REFERENCES tokens (id),
    patient_id INTEGER REFERENCES patients (id),
    action     TEXT    NOT NULL CHECK (length(action) > 0)
);

CREATE INDEX audit_log_by_patient ON audit_log (patient_id, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
