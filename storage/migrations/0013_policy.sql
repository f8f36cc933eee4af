-- The practice's safeguarding policy (issue #20; the rules are bot/policy.py's).
--
-- On each grant: when the access began (its approval: whether it began while the patient
-- was a child follows from this and their date of birth, so a corrected date of birth is
-- followed too), its end date when it is access between adults, and what the young person
-- decided about it.
ALTER TABLE grants ADD COLUMN began_at INTEGER;
-- NULL: no end date (yet). Access that exists when this lands gets one from the day the
-- sweep first sees it, with a notice saying so (bot/sweep.py), since the term is a setting.
ALTER TABLE grants ADD COLUMN ends_at INTEGER;
-- The young person's decisions: kept past their adult age; Clinical approved from their
-- teen age; approved once they had their own login.
ALTER TABLE grants ADD COLUMN kept_at INTEGER;
ALTER TABLE grants ADD COLUMN clinical_ok_at INTEGER;
ALTER TABLE grants ADD COLUMN continued_at INTEGER;

-- Access that began before this: its approval, as the access log recorded it; else the
-- last decision on it (a change of level also set decided_at).
UPDATE grants SET began_at = (
    SELECT min(e.at) FROM audit_events e
    WHERE e.ref_id = grants.id AND e.action = 'grant.approved' AND e.outcome = 'ok'
);
UPDATE grants SET began_at = decided_at WHERE began_at IS NULL AND status = 'active';

-- Each change the policy made, once: the sweep writes the step's key in the transaction
-- that makes the change, so a second run, a restart half-way or a second worker finds it
-- done. (Its notices are deduplicated by the outbox's dedupe_key.)
CREATE TABLE policy_steps (
    key        TEXT    PRIMARY KEY,        -- rule:grant or patient:due time
    rule       TEXT    NOT NULL CHECK (rule IN ('teen', 'own_login', 'adult', 'term')),
    grant_id   INTEGER REFERENCES grants (id),
    patient_id INTEGER REFERENCES patients (id),
    due_at     INTEGER NOT NULL,
    done_at    INTEGER NOT NULL
);

-- The sweep's lookups: end dates coming up, and young patients (by date of birth).
CREATE INDEX grants_active_ends ON grants (ends_at) WHERE status = 'active';
CREATE INDEX patients_date_of_birth ON patients (date_of_birth) WHERE date_of_birth IS NOT NULL;
