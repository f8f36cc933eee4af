-- What each patient's portal shows: appointments, invoices and clinical records.
-- fhir_id is the FHIR resource the row came from, as a relative reference ("Patient/p1",
-- "Observation/obs-2"): the type is part of it because FHIR ids are only unique per type,
-- and clinical_records holds several types. Re-importing updates the row with that key.
-- Every page index ends in id so rows sharing a date still come in one stable order, and
-- the ORDER BY of the page queries is read straight off the index (no sorting step).

ALTER TABLE patients ADD COLUMN fhir_id TEXT;
CREATE UNIQUE INDEX patients_fhir_id ON patients (fhir_id) WHERE fhir_id IS NOT NULL;

CREATE TABLE appointments (
    id           INTEGER PRIMARY KEY,
    patient_id   INTEGER NOT NULL REFERENCES patients (id),
    fhir_id      TEXT,
    starts_at    INTEGER NOT NULL,            -- seconds since the epoch
    ends_at      INTEGER NOT NULL,
    practitioner TEXT,                        -- a display name; absent when the source has none
    location     TEXT,
    status       TEXT    NOT NULL CHECK (status IN ('booked', 'confirmed', 'cancelled')),
    updated_at   INTEGER NOT NULL,
    CHECK (ends_at >= starts_at)
);
CREATE UNIQUE INDEX appointments_fhir_id ON appointments (fhir_id) WHERE fhir_id IS NOT NULL;
-- Upcoming pages walk it forwards from now, past pages backwards.
CREATE INDEX appointments_patient_start ON appointments (patient_id, starts_at, id);

CREATE TABLE invoices (
    id           INTEGER PRIMARY KEY,
    patient_id   INTEGER NOT NULL REFERENCES patients (id),
    fhir_id      TEXT,
    number       TEXT    NOT NULL,
    issued_on    TEXT    NOT NULL,            -- ISO date
    amount_minor INTEGER NOT NULL,            -- in the currency's smallest unit (cents)
    currency     TEXT    NOT NULL CHECK (length(currency) = 3),  -- ISO 4217
    paid         INTEGER NOT NULL CHECK (paid IN (0, 1))
);
CREATE UNIQUE INDEX invoices_fhir_id ON invoices (fhir_id) WHERE fhir_id IS NOT NULL;
CREATE INDEX invoices_patient_issued ON invoices (patient_id, issued_on DESC, id DESC);

CREATE TABLE clinical_records (
    id          INTEGER PRIMARY KEY,
    patient_id  INTEGER NOT NULL REFERENCES patients (id),
    fhir_id     TEXT,
    recorded_on TEXT    NOT NULL,             -- ISO date
    kind        TEXT    NOT NULL
        CHECK (kind IN ('condition', 'immunisation', 'result', 'allergy', 'note')),
    title       TEXT    NOT NULL,
    details     TEXT    NOT NULL DEFAULT ''   -- a short summary; '' when there is nothing to add
);
CREATE UNIQUE INDEX clinical_records_fhir_id ON clinical_records (fhir_id)
    WHERE fhir_id IS NOT NULL;
CREATE INDEX clinical_records_patient_recorded
    ON clinical_records (patient_id, recorded_on DESC, id DESC);
