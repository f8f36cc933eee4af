-- A practitioner finds a patient by full name in /access (issue #20: who has access to a
-- patient): an index on the name as it is compared, any case, so the look-up reads no more
-- than the patients of that name. Portable: SQLite (3.9+) and PostgreSQL both index an
-- expression.
CREATE INDEX patients_full_name_lower ON patients (lower(full_name));
