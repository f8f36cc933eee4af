-- Whose portal each login is looking at (/switch), invites a holder makes for a dependent
-- to get their own login, and offers: a holder sharing a dependent with another patient,
-- which that patient accepts (a request is decided by the subject; an offer by the accessor).

ALTER TABLE logins ADD COLUMN current_subject_id INTEGER REFERENCES patients (id);

ALTER TABLE invites ADD COLUMN created_by_patient INTEGER REFERENCES patients (id);

ALTER TABLE grants ADD COLUMN kind TEXT NOT NULL DEFAULT 'request'
    CHECK (kind IN ('request', 'offer'));
