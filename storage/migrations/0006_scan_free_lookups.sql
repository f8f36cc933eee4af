-- Two lookups that read a whole table (found by `python -m benchmarks`, EXPLAIN QUERY PLAN
-- at 100,000 patients and 200,000 grants): expiring stale requests, which /start, /access
-- and every new request run first, and a holder's dependents. Both were ~23 ms there.
-- Partial indexes: only pending requests can expire, and most patients hold nobody.

CREATE INDEX grants_pending_expiry ON grants (expires_at) WHERE status = 'pending';
CREATE INDEX patients_holder ON patients (holder_id) WHERE holder_id IS NOT NULL;
