-- The date of birth an invite checks when its patient has none on record (a patient
-- imported without a birthDate, invited with one): every invite link checks a date of
-- birth, and the patient's record gets it once the sign-in succeeds.

ALTER TABLE invites ADD COLUMN date_of_birth TEXT;  -- ISO date, as typed at invite time
