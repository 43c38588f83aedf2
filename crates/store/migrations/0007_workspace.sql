-- Personal API keys. A key is `viva_<id>_<secret>`: the id finds the row, and only the secret's
-- SHA-256 is kept (keys are long random strings, so a fast hash is enough and a copy of the
-- database lets nobody in). A key acts with its account's role at the time it is used.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_keys_by_user ON api_keys (user_id);

-- Accounts are disabled rather than deleted: their decisions keep naming them.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;

-- What the interview list filters and sorts on, beside the report and the decisions that hold
-- the whole story: the report's composite score and recommendation, and the current decision.
ALTER TABLE interviews ADD COLUMN score DOUBLE PRECISION;
ALTER TABLE interviews ADD COLUMN recommendation TEXT;
ALTER TABLE interviews ADD COLUMN decision TEXT;
UPDATE interviews SET decision = (
    SELECT d.decision FROM decisions d WHERE d.interview_id = interviews.id
    ORDER BY d.decided_at DESC, d.id DESC LIMIT 1
);
CREATE INDEX interviews_by_job ON interviews (job, created_at);
