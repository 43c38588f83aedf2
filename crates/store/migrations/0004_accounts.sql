-- Recruiter accounts. The store keeps a password only as the PHC string of its hash (argon2id,
-- made by the server); emails are kept lower-cased, so one person has one account.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Signed-in browsers. The cookie carries a random token and only its SHA-256 is kept here, so
-- a copy of the database signs nobody in. Each session has its own CSRF token.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
