-- Conversation states and the answers given so far (PTB persistence), so a restart in
-- the middle of a flow resumes it; touched_at lets a flow abandoned before a restart
-- still time out instead of resuming hours later.

CREATE TABLE bot_state (
    kind       TEXT    NOT NULL,   -- 'conversation' or 'user_data'
    name       TEXT    NOT NULL,   -- the conversation's name; '' for user_data
    key        TEXT    NOT NULL,   -- JSON: the conversation key, or the user id
    value      TEXT    NOT NULL,   -- JSON
    touched_at INTEGER NOT NULL,
    PRIMARY KEY (kind, name, key)
);
