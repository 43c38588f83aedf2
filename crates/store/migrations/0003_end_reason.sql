-- How an interview ended beyond its status: reached_closing, ended_by_candidate,
-- connection_lost, server_stopped or error. Interviews that ended before this column existed
-- keep NULL.
ALTER TABLE interviews ADD COLUMN end_reason TEXT;
