-- The hiring team's decisions on interviews: advance, hold or reject, with a note, by an
-- account at a time. Rows are only added: the latest is the decision, the rest its history.
-- The AI's recommendation stays in the report and is never changed by a decision.
CREATE TABLE decisions (
    id TEXT PRIMARY KEY,
    interview_id TEXT NOT NULL REFERENCES interviews (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    decision TEXT NOT NULL,
    note TEXT NOT NULL,
    decided_at BIGINT NOT NULL
);
CREATE INDEX decisions_by_interview ON decisions (interview_id, decided_at);
