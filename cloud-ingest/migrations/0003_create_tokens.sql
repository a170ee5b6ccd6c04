-- Bearer tokens, stored only as SHA-256 hashes of the secret. The CHECK ties
-- each role to exactly the link it needs, so a device token without a
-- patient cannot exist.
CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY,
    hash         BLOB    NOT NULL UNIQUE CHECK (length(hash) = 32),
    role         TEXT    NOT NULL CHECK (role IN ('device', 'follower', 'clinician', 'admin')),
    patient_id   INTEGER REFERENCES patients (id),
    clinician_id INTEGER REFERENCES clinicians (id),
    label        TEXT,
    created_at   TEXT    NOT NULL,
    revoked_at   TEXT,
    CHECK (
        (role IN ('device', 'follower') AND patient_id IS NOT NULL AND clinician_id IS NULL)
        OR (role = 'clinician' AND clinician_id IS NOT NULL AND patient_id IS NULL)
        OR (role = 'admin' AND patient_id IS NULL AND clinician_id IS NULL)
    )
);
