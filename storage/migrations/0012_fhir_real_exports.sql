-- What real FHIR exports carry that the portal did not keep (issue #18).
--
-- A patient's death, as the practice's system records it: deceased = 1 when the source says
-- so (deceasedBoolean true, or a deceasedDateTime), with the day in deceased_on when it
-- gives one. Stored only; what stops for a deceased patient is decided elsewhere.
ALTER TABLE patients ADD COLUMN deceased INTEGER NOT NULL DEFAULT 0 CHECK (deceased IN (0, 1));
-- deceased_on: an ISO date, or NULL when not known.
ALTER TABLE patients ADD COLUMN deceased_on TEXT;

-- Clinical records without a full date (a condition with only "onset: childhood", a
-- vaccine recorded as "given in 1998-05"): recorded_on may be NULL, and such records list
-- after the dated ones. measurement holds an observation's values as JSON (numbers as
-- decimal strings at the precision to show, units as people read them), so that they are
-- formatted in each reader's locale; NULL for other records. SQLite cannot drop a NOT NULL
-- in place: the table is rebuilt, with the same ids and indexes.
CREATE TABLE clinical_records_next (
    id          INTEGER PRIMARY KEY,
    patient_id  INTEGER NOT NULL REFERENCES patients (id),
    fhir_id     TEXT,
    recorded_on TEXT,                         -- ISO date; NULL when the source has none
    kind        TEXT    NOT NULL
        CHECK (kind IN ('condition', 'immunisation', 'result', 'allergy', 'note')),
    title       TEXT    NOT NULL,
    details     TEXT    NOT NULL DEFAULT '',  -- a short summary; '' when there is nothing to add
    measurement TEXT                          -- JSON, see above
);
INSERT INTO clinical_records_next (id, patient_id, fhir_id, recorded_on, kind, title, details)
    SELECT id, patient_id, fhir_id, recorded_on, kind, title, details FROM clinical_records;
DROP TABLE clinical_records;
ALTER TABLE clinical_records_next RENAME TO clinical_records;
CREATE UNIQUE INDEX clinical_records_fhir_id ON clinical_records (fhir_id)
    WHERE fhir_id IS NOT NULL;
CREATE INDEX clinical_records_patient_recorded
    ON clinical_records (patient_id, recorded_on DESC, id DESC);
