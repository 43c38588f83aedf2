-- Outgoing phone calls: the latest dial attempt's state (dialing, ringing, answered, busy,
-- no_answer, rejected, failed) and when it changed, shown to the recruiter with the interview.
ALTER TABLE interviews ADD COLUMN dial_status TEXT;
ALTER TABLE interviews ADD COLUMN dial_updated_at BIGINT;
