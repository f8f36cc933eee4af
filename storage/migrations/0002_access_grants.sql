-- Access between patients. A grant lets an accessor see (and with the edit role, act in)
-- a subject's portal. Requests by email to an address no patient has yet keep
-- subject_id NULL and subject_email set, so the reply never reveals which emails exist;
-- they attach to the patient when one is created with that email.

ALTER TABLE patients ADD COLUMN holder_id INTEGER REFERENCES patients (id);

CREATE TABLE grants (
    id                 INTEGER PRIMARY KEY,
    accessor_id        INTEGER NOT NULL REFERENCES patients (id),
    subject_id         INTEGER REFERENCES patients (id),
    subject_email      TEXT,
    subject_name       TEXT,                  -- the name the requester typed for them
    relationship       TEXT    NOT NULL
        CHECK (relationship IN ('child', 'daughter', 'son', 'parent', 'partner', 'carer', 'other')),
    relationship_other TEXT,
    level              TEXT    NOT NULL CHECK (level IN ('clinical', 'administrative')),
    role               TEXT    NOT NULL CHECK (role IN ('view', 'edit')),
    status             TEXT    NOT NULL
        CHECK (status IN ('pending', 'active', 'denied', 'revoked', 'expired')),
    requested_at       INTEGER NOT NULL,
    expires_at         INTEGER,
    decided_at         INTEGER,
    decided_by         INTEGER REFERENCES patients (id),
    notified_at        INTEGER,
    CHECK (subject_id IS NOT NULL OR subject_email IS NOT NULL),
    CHECK (subject_id IS NULL OR subject_id <> accessor_id)
);
-- At most one open (pending or active) grant per pair: a double tap cannot create two.
CREATE UNIQUE INDEX grants_open_pair ON grants (accessor_id, subject_id)
    WHERE status IN ('pending', 'active') AND subject_id IS NOT NULL;
CREATE UNIQUE INDEX grants_open_email ON grants (accessor_id, subject_email COLLATE NOCASE)
    WHERE status = 'pending' AND subject_id IS NULL;
CREATE INDEX grants_subject_status ON grants (subject_id, status);
CREATE INDEX grants_accessor_status ON grants (accessor_id, status);
CREATE INDEX grants_pending_email ON grants (subject_email COLLATE NOCASE)
    WHERE subject_id IS NULL;
