-- Patients, their Telegram logins, practitioners, invites and the audit log.
-- Timestamps are integer seconds since the epoch (UTC).

CREATE TABLE patients (
    id            INTEGER PRIMARY KEY,
    full_name     TEXT    NOT NULL,
    date_of_birth TEXT,                       -- ISO date, optional
    email         TEXT,                       -- stored as entered, unique case-insensitively
    created_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX patients_email_nocase ON patients (email COLLATE NOCASE)
    WHERE email IS NOT NULL;

CREATE TABLE logins (
    telegram_user_id INTEGER PRIMARY KEY,
    patient_id       INTEGER NOT NULL UNIQUE REFERENCES patients (id),
    locale           TEXT,
    created_at       INTEGER NOT NULL
);

CREATE TABLE practitioners (
    telegram_user_id INTEGER PRIMARY KEY,
    name             TEXT    NOT NULL,
    created_at       INTEGER NOT NULL
);

CREATE TABLE invites (
    id                INTEGER PRIMARY KEY,
    token_hash        TEXT    NOT NULL UNIQUE,   -- SHA-256 hex of the token; the token itself is never stored
    patient_id        INTEGER NOT NULL REFERENCES patients (id),
    invited_by        INTEGER REFERENCES practitioners (telegram_user_id),
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    used_at           INTEGER,
    used_by           INTEGER,                   -- Telegram user id that consumed it
    failed_dob_tries  INTEGER NOT NULL DEFAULT 0,
    locked_at         INTEGER
);
CREATE INDEX invites_patient ON invites (patient_id);

CREATE TABLE audit_events (
    id                 INTEGER PRIMARY KEY,
    at                 INTEGER NOT NULL,
    actor_patient_id   INTEGER REFERENCES patients (id),
    actor_telegram_id  INTEGER,
    subject_patient_id INTEGER REFERENCES patients (id),  -- acting for / about whom
    action             TEXT    NOT NULL,                  -- e.g. invite.created, signin.ok
    outcome            TEXT    NOT NULL CHECK (outcome IN ('ok', 'refused')),
    ref_id             INTEGER,                           -- the invite, grant or item concerned
    detail             TEXT                               -- a short code; never names, tokens or clinical text
);
CREATE INDEX audit_subject_at ON audit_events (subject_patient_id, at DESC, id DESC);
