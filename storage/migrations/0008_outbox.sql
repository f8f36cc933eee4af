-- Messages the bot owes people because of a change, written in the same transaction as
-- the change: a crash or a failed send can delay them, never lose them. The words are
-- made when the message is sent (in the recipient's language, from the state then), so a
-- row says only what it is about and whom it is for.

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    kind            TEXT    NOT NULL,
    ref_id          INTEGER,            -- what it is about: a grant, an invite...
    patient_id      INTEGER REFERENCES patients (id),  -- the recipient, when a patient
    chat_id         INTEGER,            -- the recipient's chat, when known without a login
    detail          TEXT,               -- JSON: what the words need besides ref_id
    dedupe_key      TEXT    UNIQUE,     -- once per event and recipient
    keep            INTEGER NOT NULL DEFAULT 1,  -- 1: wait for a blocked recipient's return
    status          TEXT    NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'held', 'sent', 'dropped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    due_at          INTEGER NOT NULL,
    claimed_until   INTEGER,            -- a sender's lease: it is being sent right now
    lapses_at       INTEGER,            -- time-bound: not worth sending after this
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    sent_chat_id    INTEGER,            -- where it went, so that a later change can edit it
    sent_message_id INTEGER
);
CREATE INDEX outbox_due ON outbox (due_at) WHERE status = 'queued';
CREATE INDEX outbox_held_patient ON outbox (patient_id) WHERE status = 'held';
CREATE INDEX outbox_held_chat ON outbox (chat_id) WHERE status = 'held';
CREATE INDEX outbox_about ON outbox (ref_id, kind);  -- the cards about a request
