-- Why a grant ended. Status 'revoked' means ended, however it ended: a pending request
-- its requester withdrew, an access the subject (or holder) revoked, an access its
-- accessor gave up. The decider's card must tell these apart ("This request was
-- withdrawn." is not "approved and later revoked").

ALTER TABLE grants ADD COLUMN end_reason TEXT
    CHECK (end_reason IN ('withdrawn', 'revoked', 'left'));

-- Grants that ended before this column: their audit event says how.
UPDATE grants SET end_reason = (
    SELECT CASE e.action
        WHEN 'grant.withdrawn' THEN 'withdrawn'
        WHEN 'grant.left' THEN 'left'
        ELSE 'revoked'
    END
    FROM audit_events e
    WHERE e.ref_id = grants.id AND e.outcome = 'ok'
        AND e.action IN ('grant.withdrawn', 'grant.left', 'grant.revoked')
    ORDER BY e.id DESC LIMIT 1
)
WHERE status = 'revoked';
