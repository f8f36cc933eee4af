-- Case-insensitive email lookups in words both dialects know (issue #19): lower() on both
-- sides instead of SQLite's COLLATE NOCASE, with indexes on the same expression (for ASCII,
-- which is what NOCASE folds, the two agree). PostgreSQL's baseline never had the NOCASE ones.
DROP INDEX IF EXISTS patients_email_nocase;
DROP INDEX IF EXISTS grants_open_email;
DROP INDEX IF EXISTS grants_pending_email;
CREATE UNIQUE INDEX patients_email_lower ON patients (lower(email)) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX grants_open_email_lower ON grants (accessor_id, lower(subject_email))
    WHERE status = 'pending' AND subject_id IS NULL;
CREATE INDEX grants_pending_email_lower ON grants (lower(subject_email))
    WHERE subject_id IS NULL;
