-- Conversation state is read and written per update by whichever worker takes it (issue
-- #19), no longer loaded once at start-up: each row names its user, so one indexed read
-- loads a user's drafts and conversations. A conversation's last step, in milliseconds,
-- sets its deadline (plus the conversation timeout); a timed job claims those that passed.

ALTER TABLE bot_state ADD COLUMN user_id BIGINT;

ALTER TABLE bot_state ADD COLUMN stepped_at_ms BIGINT;

UPDATE bot_state SET user_id = CAST(key AS BIGINT) WHERE kind = 'user_data';

-- A conversation's key is the JSON [chat, user]: in a private chat, the two are one id.
UPDATE bot_state
SET user_id = (
        SELECT CAST(u.key AS BIGINT) FROM bot_state u
        WHERE u.kind = 'user_data' AND bot_state.key = '[' || u.key || ', ' || u.key || ']'
    ),
    stepped_at_ms = CAST(touched_at AS BIGINT) * 1000
WHERE kind = 'conversation';

-- What cannot be tied to a user (a conversation whose user has no stored data) is dropped.
DELETE FROM bot_state WHERE user_id IS NULL;

CREATE INDEX bot_state_user ON bot_state (user_id);

CREATE INDEX bot_state_stepped_at ON bot_state (stepped_at_ms);
