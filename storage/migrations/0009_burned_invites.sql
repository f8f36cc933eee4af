-- An invite link posted in a group chat has been seen by others: it is burned (no one can
-- sign in with it any more) and the practitioner is asked to send a new one.

ALTER TABLE invites ADD COLUMN burned_at INTEGER;
