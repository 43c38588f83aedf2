-- Every version of every job: the exact TOML an interview could run with, numbered 1, 2, ...
-- per job, added only when the text changed. `author` is the id of the account that saved it
-- in the workspace, or `file` for a job file found changed on disk. Rows are only added.
CREATE TABLE job_versions (
    job TEXT NOT NULL,
    version BIGINT NOT NULL,
    fingerprint TEXT NOT NULL,
    toml TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (job, version)
);

-- The job version an interview was scheduled with, then the one its call ran with; NULL for
-- interviews scheduled before jobs were versioned.
ALTER TABLE interviews ADD COLUMN job_version BIGINT;
