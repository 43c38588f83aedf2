//! Interviews in a database and their files on disk.
//!
//! One SQL dialect runs on SQLite (the embedded default, a file created on first use) and on
//! PostgreSQL: queries go through sqlx's `Any` driver with runtime SQL and `$1` placeholders,
//! and the schema is one set of embedded migrations applied when the store opens. Each
//! interview's recordings, transcript and report live in `<data_dir>/interviews/<id>/`
//! ([`InterviewFiles`]).

mod accounts;
mod api_keys;
mod decisions;
mod files;
mod interview;
mod job_versions;
mod lease;
mod listing;
#[cfg(test)]
mod tests;
mod timestamp;
mod webhooks;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rand::Rng;
use rand::distr::Alphanumeric;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyConnection, AnyPool, Connection, Row, SqlSafeStr};

pub use accounts::{NewUser, Role, Session, User};
pub use api_keys::ApiKey;
pub use decisions::{Decision, Verdict};
pub use files::InterviewFiles;
pub use interview::{
    Candidate, Dial, EndReason, Ending, Interview, NewInterview, Outcome, Page, Status,
};
pub use job_versions::{Author, JobVersion, Recorded};
pub use lease::Lease;
pub use listing::{DecisionFilter, Filter, Listed, Sort};
pub use timestamp::{Timestamp, TimestampError};
pub use webhooks::{
    Attempt, ClaimedDelivery, Delivery, DeliveryStatus, Endpoint, NewEndpoint, WebhookMessage,
};

/// The directory under the data directory that holds one directory per interview.
const INTERVIEWS_DIR: &str = "interviews";
/// Length of a new interview id: 16 characters of `[a-z0-9]` are ~82 random bits.
const ID_LEN: usize = 16;
/// The longest id a path may carry (ids are generated at 16; this only bounds what is accepted).
const MAX_ID_LEN: usize = 64;
/// Digits of a new interview's PIN. Ten digits (9 x 10^9 PINs, the first never 0) keep the
/// chance of guessing any of a thousand open interviews negligible under the server's guessing
/// limits (docs/security.md has the bound).
pub const PIN_DIGITS: usize = 10;
/// Fresh id/PIN pairs tried before giving up on finding an unused PIN.
const CREATE_ATTEMPTS: usize = 32;
/// A handful of concurrent calls and API requests; SQLite serialises writers anyway.
const MAX_CONNECTIONS: u32 = 8;
/// How long to wait for a database connection before reporting it unreachable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Every column of `interviews`, in the order [`interview_from_row`] reads them.
macro_rules! select_interviews {
    ($rest:literal) => {
        concat!(
            "SELECT id, job, candidate_name, candidate_email, candidate_phone, pin, status, ",
            "created_at, expires_at, started_at, ended_at, duration_ms, failure, dial_status, ",
            "dial_updated_at, end_reason FROM interviews ",
            $rest
        )
    };
}

/// What went wrong in the store, said so that the operator knows what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database setting is neither an SQLite nor a PostgreSQL URL.
    #[error(
        "unsupported database {database:?}: use sqlite://PATH (an SQLite file, created if missing) \
         or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
    )]
    UnsupportedDatabase {
        /// The setting, password hidden.
        database: String,
    },
    /// An SQLite URL that sqlx cannot read (e.g. an unknown `?param`).
    #[error("invalid SQLite database URL {database:?}: {reason}")]
    InvalidSqliteUrl {
        /// The setting as given.
        database: String,
        /// What sqlx objected to.
        reason: String,
    },
    /// An in-memory SQLite database: every pooled connection would see its own empty database.
    #[error(
        "{database:?} is an in-memory SQLite database, which the server's connection pool cannot \
         share: give a file instead, e.g. sqlite://DATA_DIR/viva.db"
    )]
    InMemorySqlite {
        /// The setting as given.
        database: String,
    },
    /// A directory the store needs could not be created.
    #[error(
        "cannot create directory {path}: {source} (check that the parent exists and is writable)"
    )]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why the file system refused.
        source: std::io::Error,
    },
    /// No connection to the database could be made.
    #[error("cannot open database at {database}: {source} ({hint})")]
    Open {
        /// The database URL, password hidden.
        database: String,
        /// The driver's reason.
        source: sqlx::Error,
        /// What to check, for this kind of database.
        hint: &'static str,
    },
    /// The schema could not be brought up to date.
    #[error(
        "cannot bring the schema of database {database} up to date: {source} (a database written \
         by a newer Viva needs that version; a schema changed by hand must be restored from a backup)"
    )]
    Migrate {
        /// The database URL, password hidden.
        database: String,
        /// What the migration run reported.
        source: MigrateError,
    },
    /// A statement failed on an open database.
    #[error("cannot {action}: {source}")]
    Database {
        /// What the store was doing, e.g. "start interview abc".
        action: String,
        /// The driver's reason.
        source: sqlx::Error,
    },
    /// A row holds a value this version cannot read.
    #[error(
        "interview {id} in the database has an invalid {column} ({value}); was the row edited by hand?"
    )]
    Corrupt {
        /// The interview.
        id: String,
        /// The column.
        column: &'static str,
        /// The offending value.
        value: String,
    },
    /// An account row holds a role this version does not know.
    #[error(
        "account {id} in the database has an invalid role ({value}); was the row edited by hand?"
    )]
    CorruptAccount {
        /// The account.
        id: String,
        /// The offending value.
        value: String,
    },
    /// An interview id with characters that could leave the data directory.
    #[error(
        "invalid interview id {id:?}: ids are 1-{MAX_ID_LEN} characters of A-Z, a-z, 0-9, '_' and '-'"
    )]
    InvalidId {
        /// The id as given.
        id: String,
    },
    /// No interview has this id.
    #[error("no interview with id {id}")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// The interview already ended; its first outcome stands.
    #[error("interview {id} already ended as {status} and cannot be finished again", status = .status.as_str())]
    AlreadyFinished {
        /// The interview.
        id: String,
        /// How it ended.
        status: Status,
    },
    /// Another account has this email.
    #[error("an account with email {email} already exists")]
    EmailTaken {
        /// The email, lower-cased.
        email: String,
    },
    /// Writers kept numbering the same job's new version at once.
    #[error(
        "cannot number a new version of job {job}: other versions of it kept being saved at the \
         same moment; try again"
    )]
    JobVersionContention {
        /// The job.
        job: String,
    },
    /// A job version row holds a version number this version cannot read.
    #[error(
        "a version of job {job} in the database has an invalid number ({value}); was the row \
         edited by hand?"
    )]
    CorruptJobVersion {
        /// The job.
        job: String,
        /// The offending value.
        value: String,
    },
    /// Every PIN tried belongs to an unfinished interview.
    #[error(
        "no free PIN found in {CREATE_ATTEMPTS} tries: too many interviews are scheduled or in \
         progress; finish or abandon old ones"
    )]
    NoFreePin,
}

/// The interview store: a connection pool and the data directory. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    data_dir: PathBuf,
}

impl Store {
    /// Opens the database and brings its schema up to date.
    ///
    /// `database` is `sqlite://PATH` (the file and its directory are created if missing) or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`. `data_dir` is the root of the
    /// interviews' files; it is created if missing.
    pub async fn open(database: &str, data_dir: &Path) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let shown = redacted(database);
        let backend = Backend::of(database)?;
        let url = match backend {
            Backend::Sqlite => sqlite_url(database)?,
            Backend::Postgres => database.to_string(),
        };
        create_dir(&data_dir.join(INTERVIEWS_DIR))?;

        let open_failed = |source| StoreError::Open {
            database: shown.clone(),
            source,
            hint: backend.hint(),
        };
        // A first connection of its own reports the driver's reason (connection refused,
        // unknown database, wrong password) at once; a pool retries until its timeout and then
        // only says that it timed out.
        let first = AnyConnection::connect(&url).await.map_err(open_failed)?;
        let _ = first.close().await;
        let pool = AnyPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(&url)
            .await
            .map_err(open_failed)?;
        if backend == Backend::Sqlite {
            // WAL lets the API read while a call writes; it is a property of the file, so once
            // is enough. Each connection also waits on a locked database (sqlx sets a 5 s busy
            // timeout) instead of failing at once.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .map_err(open_failed)?;
        }
        migrator()
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                database: shown.clone(),
                source,
            })?;
        tracing::info!(database = %shown, data_dir = %data_dir.display(), "interview store open");
        Ok(Store {
            pool,
            data_dir: data_dir.to_path_buf(),
        })
    }

    /// Schedules an interview under a new random id and a new PIN no unfinished interview has.
    pub async fn create_interview(&self, new: NewInterview) -> Result<Interview, StoreError> {
        self.create_with(new, Timestamp::now(), new_id, new_pin)
            .await
    }

    /// [`Store::create_interview`] with the clock and the id and PIN sources given, so tests
    /// can force collisions and order.
    async fn create_with(
        &self,
        new: NewInterview,
        created_at: Timestamp,
        mut id: impl FnMut() -> String,
        mut pin: impl FnMut() -> String,
    ) -> Result<Interview, StoreError> {
        for _ in 0..CREATE_ATTEMPTS {
            let interview = Interview {
                id: id(),
                job: new.job.clone(),
                candidate: new.candidate.clone(),
                pin: pin(),
                status: Status::Scheduled,
                created_at,
                expires_at: new.expires_at,
                started_at: None,
                ended_at: None,
                duration_ms: None,
                end_reason: None,
                failure: None,
                dial: None,
            };
            let inserted = sqlx::query(
                "INSERT INTO interviews (id, job, candidate_name, candidate_email, \
                 candidate_phone, pin, status, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&interview.id)
            .bind(&interview.job)
            .bind(&interview.candidate.name)
            .bind(&interview.candidate.email)
            .bind(&interview.candidate.phone)
            .bind(&interview.pin)
            .bind(interview.status.as_str())
            .bind(interview.created_at.unix_ms())
            .bind(interview.expires_at.unix_ms())
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(_) => return Ok(interview),
                // The PIN (or, astronomically rarely, the id) is taken: draw again.
                Err(sqlx::Error::Database(err)) if err.is_unique_violation() => {
                    tracing::debug!("the drawn PIN is in use, drawing another");
                }
                Err(source) => {
                    return Err(StoreError::Database {
                        action: "create an interview".to_string(),
                        source,
                    });
                }
            }
        }
        Err(StoreError::NoFreePin)
    }

    /// The interview with this id, if there is one.
    pub async fn interview(&self, id: &str) -> Result<Option<Interview>, StoreError> {
        let row = sqlx::query(select_interviews!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|source| StoreError::Database {
                action: format!("read interview {id}"),
                source,
            })?;
        row.as_ref().map(interview_from_row).transpose()
    }

    /// The scheduled or in-progress interview with this PIN, if there is one.
    pub async fn interview_by_pin(&self, pin: &str) -> Result<Option<Interview>, StoreError> {
        let row = sqlx::query(select_interviews!(
            "WHERE pin = $1 AND status IN ('scheduled', 'in_progress')"
        ))
        .bind(pin)
        .fetch_optional(&self.pool)
        .await
        .map_err(|source| StoreError::Database {
            action: "look an interview up by PIN".to_string(),
            source,
        })?;
        row.as_ref().map(interview_from_row).transpose()
    }

    /// A page of all interviews, newest first.
    pub async fn interviews(&self, page: Page) -> Result<Vec<Interview>, StoreError> {
        let rows = sqlx::query(select_interviews!(
            "ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"
        ))
        .bind(i64::from(page.limit))
        .bind(i64::from(page.offset))
        .fetch_all(&self.pool)
        .await
        .map_err(|source| StoreError::Database {
            action: "list interviews".to_string(),
            source,
        })?;
        rows.iter().map(interview_from_row).collect()
    }

    /// Marks a scheduled interview in progress from `at`, run by the node `lease` names,
    /// atomically: of two racing callers (on any nodes) exactly one gets `true`. `false` when
    /// the interview is not scheduled (already started, finished, or unknown).
    pub async fn start(&self, id: &str, at: Timestamp, lease: &Lease) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE interviews SET status = 'in_progress', started_at = $2, owner_node = $3, \
             lease_until = $4 WHERE id = $1 AND status = 'scheduled'",
        )
        .bind(id)
        .bind(at.unix_ms())
        .bind(&lease.node)
        .bind(lease.until.unix_ms())
        .execute(&self.pool)
        .await
        .map_err(|source| StoreError::Database {
            action: format!("start interview {id}"),
            source,
        })?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends a scheduled or in-progress interview as `ending` says. The first end stands:
    /// finishing an interview that already ended is [`StoreError::AlreadyFinished`].
    pub async fn finish(&self, id: &str, ending: &Ending) -> Result<(), StoreError> {
        let duration_ms = ending
            .duration_ms
            .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX));
        let done = sqlx::query(
            "UPDATE interviews SET status = $2, ended_at = $3, failure = $4, duration_ms = $5, \
             end_reason = $6 WHERE id = $1 AND status IN ('scheduled', 'in_progress')",
        )
        .bind(id)
        .bind(Status::from(ending.outcome).as_str())
        .bind(ending.at.unix_ms())
        .bind(ending.failure.as_deref())
        .bind(duration_ms)
        .bind(ending.reason.as_str())
        .execute(&self.pool)
        .await
        .map_err(|source| StoreError::Database {
            action: format!("finish interview {id}"),
            source,
        })?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        match self.interview(id).await? {
            Some(interview) => Err(StoreError::AlreadyFinished {
                id: id.to_string(),
                status: interview.status,
            }),
            None => Err(StoreError::NotFound { id: id.to_string() }),
        }
    }

    /// Records the state of the latest outgoing call to the candidate (`ringing`, `busy`, ...).
    pub async fn set_dial_status(
        &self,
        id: &str,
        status: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE interviews SET dial_status = $2, dial_updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(status)
            .bind(at.unix_ms())
            .execute(&self.pool)
            .await
            .map_err(|source| StoreError::Database {
                action: format!("record the dial status of interview {id}"),
                source,
            })?;
        Ok(())
    }

    /// Extends the leases of every interview the node `lease` names runs to `lease.until`;
    /// returns how many it holds.
    pub async fn renew_leases(&self, lease: &Lease) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE interviews SET lease_until = $2 \
             WHERE owner_node = $1 AND status = 'in_progress'",
        )
        .bind(&lease.node)
        .bind(lease.until.unix_ms())
        .execute(&self.pool)
        .await
        .map_err(|source| StoreError::Database {
            action: format!("renew the interview leases of node {}", lease.node),
            source,
        })?;
        Ok(done.rows_affected())
    }

    /// Gives up the leases `node` holds: at its start, the interviews it ran before it stopped
    /// are no longer running anywhere, so they need not wait for their leases to run out.
    pub async fn forfeit_leases(&self, node: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE interviews SET lease_until = 0 \
             WHERE owner_node = $1 AND status = 'in_progress'",
        )
        .bind(node)
        .execute(&self.pool)
        .await
        .map_err(|source| StoreError::Database {
            action: format!("give up the interview leases of node {node}"),
            source,
        })?;
        Ok(done.rows_affected())
    }

    /// Takes over the interviews left in progress whose leases ran out before `now` (their
    /// node died, or they predate leases), oldest first, leasing them to `lease.node` so that
    /// it can finish them. Each is won by exactly one of the nodes calling at the same time.
    pub async fn take_over_orphans(
        &self,
        now: Timestamp,
        lease: &Lease,
    ) -> Result<Vec<Interview>, StoreError> {
        // Both statements test the same condition: of nodes racing for an orphan, the first
        // update takes it and the others find its lease live again.
        let rows = sqlx::query(select_interviews!(
            "WHERE status = 'in_progress' AND (lease_until IS NULL OR lease_until < $1) \
             ORDER BY created_at, id"
        ))
        .bind(now.unix_ms())
        .fetch_all(&self.pool)
        .await
        .map_err(|source| StoreError::Database {
            action: "list interviews whose leases ran out".to_string(),
            source,
        })?;
        let mut taken = Vec::new();
        for row in &rows {
            let interview = interview_from_row(row)?;
            let done = sqlx::query(
                "UPDATE interviews SET owner_node = $2, lease_until = $3 WHERE id = $4 \
                 AND status = 'in_progress' AND (lease_until IS NULL OR lease_until < $1)",
            )
            .bind(now.unix_ms())
            .bind(&lease.node)
            .bind(lease.until.unix_ms())
            .bind(&interview.id)
            .execute(&self.pool)
            .await
            .map_err(|source| StoreError::Database {
                action: format!("take over interview {}", interview.id),
                source,
            })?;
            if done.rows_affected() == 1 {
                taken.push(interview);
            }
        }
        Ok(taken)
    }

    /// A stored setting (e.g. the generated API key), if it was ever set.
    pub async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        sqlx::query("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .and_then(|row| row.map(|row| row.try_get("value")).transpose())
            .map_err(|source| StoreError::Database {
                action: format!("read setting {name}"),
                source,
            })
    }

    /// Stores `value` under `name` unless a value is there already, and returns the value that
    /// is stored. Of several processes generating a key at once, all end up with the same one.
    pub async fn set_setting_if_absent(
        &self,
        name: &str,
        value: &str,
    ) -> Result<String, StoreError> {
        let action = || format!("store setting {name}");
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(|source| StoreError::Database {
            action: action(),
            source,
        })?;
        sqlx::query("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .and_then(|row| row.try_get("value"))
            .map_err(|source| StoreError::Database {
                action: action(),
                source,
            })
    }

    /// The files of this interview, in `<data_dir>/interviews/<id>/` (created if missing).
    /// The id is checked first, so no id can name a path outside the data directory.
    pub fn files(&self, id: &str) -> Result<InterviewFiles, StoreError> {
        check_id(id)?;
        let dir = self.data_dir.join(INTERVIEWS_DIR).join(id);
        create_dir(&dir)?;
        Ok(InterviewFiles::new(dir))
    }

    /// The ids of the interviews that have a directory in the data directory, in no order.
    pub fn interviews_with_files(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.data_dir.join(INTERVIEWS_DIR)) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|id| check_id(id).is_ok())
            .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of(database: &str) -> Result<Backend, StoreError> {
        if database.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if database.starts_with("postgres://") || database.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedDatabase {
                database: redacted(database),
            })
        }
    }

    /// What to check when the database cannot be opened.
    fn hint(self) -> &'static str {
        match self {
            Backend::Sqlite => {
                "check that the file's directory is writable and that the file, if it exists, is an \
                 SQLite database"
            }
            Backend::Postgres => {
                "check that the server is running and that the host, port, user, password and \
                 database name are right"
            }
        }
    }
}

/// The URL sqlx gets for an SQLite setting: the file's absolute path, opened read-write and
/// created if missing (unless the setting chose a mode), its directory created too.
///
/// The path is made absolute because the `Any` driver reparses the setting as a URL, where
/// `sqlite://data/viva.db` would make `data` a host name (and lowercase it).
fn sqlite_url(database: &str) -> Result<String, StoreError> {
    let rest = database.strip_prefix("sqlite:").unwrap_or(database);
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (file, params) = rest.split_once('?').unwrap_or((rest, ""));
    let mut params: Vec<&str> = params.split('&').filter(|p| !p.is_empty()).collect();
    if file.is_empty() || file == ":memory:" || params.contains(&"mode=memory") {
        return Err(StoreError::InMemorySqlite {
            database: database.to_string(),
        });
    }
    let options =
        SqliteConnectOptions::from_str(database).map_err(|err| StoreError::InvalidSqliteUrl {
            database: database.to_string(),
            reason: err.to_string(),
        })?;
    let path = std::path::absolute(options.get_filename()).map_err(|err| {
        StoreError::InvalidSqliteUrl {
            database: database.to_string(),
            reason: err.to_string(),
        }
    })?;
    if let Some(parent) = path.parent() {
        create_dir(parent)?;
    }
    let Some(path_text) = path.to_str() else {
        return Err(StoreError::InvalidSqliteUrl {
            database: database.to_string(),
            reason: "the path is not valid UTF-8".to_string(),
        });
    };
    let mut url = format!("sqlite://{}", percent_encode_path(path_text));
    if !params.iter().any(|p| p.starts_with("mode=")) {
        params.push("mode=rwc");
    }
    url.push('?');
    url.push_str(&params.join("&"));
    Ok(url)
}

/// Escapes what a URL path cannot hold literally (sqlx decodes it again).
fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"/._~-".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The database setting with any password replaced by `***`, for messages and logs.
fn redacted(database: &str) -> String {
    let Some((scheme, rest)) = database.split_once("://") else {
        return database.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    // `?password=...` is the other place a PostgreSQL URL can carry one.
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some(("password", _)) => "password=***".to_string(),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

fn create_dir(path: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(path).map_err(|source| StoreError::Directory {
        path: path.to_path_buf(),
        source,
    })
}

/// Whether `id` can be an interview id: 1-64 characters of `[A-Za-z0-9_-]`. Ids become path
/// components, so no separator, `.` or `..` passes. Lets a caller turn a malformed id from a
/// request into "not found" without a database round trip.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check_id(id: &str) -> Result<(), StoreError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(StoreError::InvalidId { id: id.to_string() })
    }
}

/// A new interview id: lowercase letters and digits only, so two ids never differ by case
/// alone (interview directories may sit on a case-insensitive file system).
fn new_id() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .map(|b| char::from(b).to_ascii_lowercase())
        .take(ID_LEN)
        .collect()
}

/// A new PIN: [`PIN_DIGITS`] digits, never starting with 0, so no client that reads it as a
/// number (a spreadsheet, a JSON number) can shorten it.
fn new_pin() -> String {
    let low = 10u64.pow(PIN_DIGITS as u32 - 1);
    rand::rng().random_range(low..low * 10).to_string()
}

fn migrator() -> Migrator {
    // Never edit an applied migration (its checksum is stored); add a new file instead.
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            "interviews".into(),
            MigrationType::Simple,
            include_str!("../migrations/0001_interviews.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            "dial status".into(),
            MigrationType::Simple,
            include_str!("../migrations/0002_dial_status.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            3,
            "end reason".into(),
            MigrationType::Simple,
            include_str!("../migrations/0003_end_reason.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            4,
            "accounts".into(),
            MigrationType::Simple,
            include_str!("../migrations/0004_accounts.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            5,
            "decisions".into(),
            MigrationType::Simple,
            include_str!("../migrations/0005_decisions.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            6,
            "webhooks".into(),
            MigrationType::Simple,
            include_str!("../migrations/0006_webhooks.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            7,
            "workspace".into(),
            MigrationType::Simple,
            include_str!("../migrations/0007_workspace.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            8,
            "job versions".into(),
            MigrationType::Simple,
            include_str!("../migrations/0008_job_versions.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            9,
            "interview leases".into(),
            MigrationType::Simple,
            include_str!("../migrations/0009_interview_leases.sql").into_sql_str(),
            false,
        ),
    ])
}

pub(crate) fn interview_from_row(row: &AnyRow) -> Result<Interview, StoreError> {
    let id: String = column(row, "id", "the id")?;
    let corrupt = |column: &'static str, value: String| StoreError::Corrupt {
        id: id.clone(),
        column,
        value,
    };
    let status: String = column(row, "status", &id)?;
    let status = Status::from_name(&status).ok_or_else(|| corrupt("status", status.clone()))?;
    let duration_ms = column::<Option<i64>>(row, "duration_ms", &id)?
        .map(|ms| u64::try_from(ms).map_err(|_| corrupt("duration_ms", ms.to_string())))
        .transpose()?;
    let at = |name: &str| column::<i64>(row, name, &id).map(Timestamp::from_unix_ms);
    let maybe_at = |name: &str| {
        column::<Option<i64>>(row, name, &id).map(|ms| ms.map(Timestamp::from_unix_ms))
    };
    Ok(Interview {
        job: column(row, "job", &id)?,
        candidate: Candidate {
            name: column(row, "candidate_name", &id)?,
            email: column(row, "candidate_email", &id)?,
            phone: column(row, "candidate_phone", &id)?,
        },
        pin: column(row, "pin", &id)?,
        status,
        created_at: at("created_at")?,
        expires_at: at("expires_at")?,
        started_at: maybe_at("started_at")?,
        ended_at: maybe_at("ended_at")?,
        duration_ms,
        end_reason: column::<Option<String>>(row, "end_reason", &id)?
            .map(|name| EndReason::from_name(&name).ok_or_else(|| corrupt("end_reason", name)))
            .transpose()?,
        failure: column(row, "failure", &id)?,
        dial: column::<Option<String>>(row, "dial_status", &id)?
            .zip(maybe_at("dial_updated_at")?)
            .map(|(status, at)| Dial { status, at }),
        id,
    })
}

fn column<'r, T>(row: &'r AnyRow, name: &str, id: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(name).map_err(|source| StoreError::Database {
        action: format!("read column {name} of interview {id}"),
        source,
    })
}
