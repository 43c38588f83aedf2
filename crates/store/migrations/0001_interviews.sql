-- One SQL dialect for SQLite and PostgreSQL: only types, constraints and index forms both
-- understand. Timestamps are Unix milliseconds (UTC), which sort and subtract the same way in both.
CREATE TABLE interviews (
    id              TEXT PRIMARY KEY,
    job             TEXT NOT NULL,
    candidate_name  TEXT NOT NULL,
    candidate_email TEXT,
    candidate_phone TEXT,
    pin             TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('scheduled', 'in_progress', 'completed', 'abandoned', 'failed')),
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    started_at      BIGINT,
    ended_at        BIGINT,
    duration_ms     BIGINT,
    failure         TEXT
);

-- A caller on the phone is matched to an interview by PIN alone, so a PIN names at most one
-- interview that can still take place; finished interviews give theirs back.
CREATE UNIQUE INDEX interviews_open_pin ON interviews (pin) WHERE status IN ('scheduled', 'in_progress');

-- The recruiter's list, newest first; the id breaks ties within a millisecond so pages are stable.
CREATE INDEX interviews_newest ON interviews (created_at, id);

-- Interviews a crash left in progress are looked up at every start.
CREATE INDEX interviews_status ON interviews (status);

-- Small named values the server generates once and keeps (the API key, the link-signing key).
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
