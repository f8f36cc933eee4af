-- Flows that create something remember the key of the confirmation that did it, so a
-- Confirm tapped again after a crash (before the reply was seen) returns the same result
-- instead of creating a second account.

CREATE TABLE completed_requests (
    key        TEXT    PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patients (id),
    grant_id   INTEGER REFERENCES grants (id),
    created_at INTEGER NOT NULL
);
