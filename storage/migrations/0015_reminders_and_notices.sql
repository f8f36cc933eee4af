-- Reminders and new-item notices (issue #21).
--
-- What each login wants to be told on the bot's own schedule. No row: everything on, quiet
-- hours 21:00-08:00 in the practice's time zone. Minutes after midnight. Goes with the
-- login (signing out forgets it).
CREATE TABLE notification_settings (
    telegram_user_id INTEGER PRIMARY KEY
        REFERENCES logins (telegram_user_id) ON DELETE CASCADE,
    quiet            INTEGER NOT NULL DEFAULT 1 CHECK (quiet IN (0, 1)),
    quiet_from       INTEGER NOT NULL DEFAULT 1260 CHECK (quiet_from BETWEEN 0 AND 1439),
    quiet_until      INTEGER NOT NULL DEFAULT 480 CHECK (quiet_until BETWEEN 0 AND 1439)
);

-- A kind of message a login does not want about one patient (their own portal included):
-- "mute Noah's reminders but keep Mia's".
CREATE TABLE notification_mutes (
    telegram_user_id INTEGER NOT NULL
        REFERENCES logins (telegram_user_id) ON DELETE CASCADE,
    about_id         INTEGER NOT NULL REFERENCES patients (id),
    topic            TEXT    NOT NULL CHECK (topic IN ('reminders', 'invoices', 'results')),
    PRIMARY KEY (telegram_user_id, about_id, topic)
) WITHOUT ROWID;

-- Confirm and Cancel made in the bot, for the practice: told to the practitioner, kept across
-- re-imports unless the practice's own record changed after it (superseded_at), and written
-- out by `python -m bot export-changes`.
CREATE TABLE appointment_changes (
    id               INTEGER PRIMARY KEY,
    appointment_id   INTEGER NOT NULL REFERENCES appointments (id) ON DELETE CASCADE,
    status           TEXT    NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
    actor_patient_id INTEGER REFERENCES patients (id),
    at               INTEGER NOT NULL,
    superseded_at    INTEGER             -- a later import carried a newer record of the practice's
);
CREATE INDEX appointment_changes_appointment ON appointment_changes (appointment_id, id);
CREATE INDEX appointment_changes_at ON appointment_changes (at);

-- The sweep reads the appointments starting in a window, whoever's they are.
CREATE INDEX appointments_upcoming ON appointments (starts_at)
    WHERE status IN ('booked', 'confirmed');

-- Why a row was dropped instead of sent ('blocked': the recipient blocked the bot, 'quiet':
-- a short reminder in quiet hours, ...) and when: the sweep counts them.
ALTER TABLE outbox ADD COLUMN dropped_why TEXT;
ALTER TABLE outbox ADD COLUMN dropped_at INTEGER;
CREATE INDEX outbox_dropped ON outbox (dropped_at) WHERE dropped_at IS NOT NULL;
