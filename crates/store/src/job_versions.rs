//! Job versions: every text a job had, numbered 1, 2, ... per job, and which version each
//! interview was scheduled with and ran with.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, Timestamp};

/// Tries at numbering a new version: each failed try means another writer added a version of
/// the same job in between, so a few are plenty.
const RECORD_ATTEMPTS: usize = 8;
/// What `author` holds for a version found on disk rather than saved by an account (account
/// ids are 16 random characters, so none is `file`).
const FILE_AUTHOR: &str = "file";

/// The columns [`version_from_row`] reads.
macro_rules! select_versions {
    ($rest:literal) => {
        concat!(
            "SELECT v.job, v.version, v.fingerprint, v.author, v.created_at, u.email ",
            "FROM job_versions v LEFT JOIN users u ON u.id = v.author ",
            $rest
        )
    };
}

/// Who made a job version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    /// The job file changed on disk (edited by hand, or shipped with a new release).
    File,
    /// The account with this id saved it in the workspace.
    User(String),
}

impl Author {
    fn stored(&self) -> &str {
        match self {
            Author::File => FILE_AUTHOR,
            Author::User(id) => id,
        }
    }
}

/// One version of a job, without its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobVersion {
    /// The job's name (its file in the jobs directory, without `.toml`).
    pub job: String,
    /// 1 for the first text seen, then one more for each change.
    pub version: u32,
    /// The fingerprint of the text, as the job's reports quote it.
    pub fingerprint: String,
    pub author: Author,
    /// The author's email, when the author is an account.
    pub author_email: Option<String>,
    pub created_at: Timestamp,
}

/// The outcome of [`Store::record_job_version`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The version that has the text now.
    pub version: u32,
    /// Whether that version was added now (false: the latest version already had the text).
    pub added: bool,
}

impl Store {
    /// Records `toml` (with its `fingerprint`) as the next version of `job`, unless the latest
    /// version has the same fingerprint; either way, says which version has it now.
    pub async fn record_job_version(
        &self,
        job: &str,
        fingerprint: &str,
        toml: &str,
        author: &Author,
        at: Timestamp,
    ) -> Result<Recorded, StoreError> {
        let failed = |source| StoreError::Database {
            action: format!("record a version of job {job}"),
            source,
        };
        for _ in 0..RECORD_ATTEMPTS {
            let latest = sqlx::query(
                "SELECT version, fingerprint FROM job_versions WHERE job = $1 \
                 ORDER BY version DESC LIMIT 1",
            )
            .bind(job)
            .fetch_optional(&self.pool)
            .await
            .map_err(failed)?;
            let next = match latest {
                Some(row) => {
                    let version = version_of(job, row.try_get("version").map_err(failed)?)?;
                    let latest_fingerprint: String = row.try_get("fingerprint").map_err(failed)?;
                    if latest_fingerprint == fingerprint {
                        return Ok(Recorded {
                            version,
                            added: false,
                        });
                    }
                    version + 1
                }
                None => 1,
            };
            let inserted = sqlx::query(
                "INSERT INTO job_versions (job, version, fingerprint, toml, author, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(job)
            .bind(i64::from(next))
            .bind(fingerprint)
            .bind(toml)
            .bind(author.stored())
            .bind(at.unix_ms())
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(_) => {
                    return Ok(Recorded {
                        version: next,
                        added: true,
                    });
                }
                // Another writer took this number: look at the latest version again.
                Err(sqlx::Error::Database(err)) if err.is_unique_violation() => {}
                Err(source) => return Err(failed(source)),
            }
        }
        Err(StoreError::JobVersionContention {
            job: job.to_owned(),
        })
    }

    /// The versions of `job`, the latest first.
    pub async fn job_versions(&self, job: &str) -> Result<Vec<JobVersion>, StoreError> {
        let rows = sqlx::query(select_versions!("WHERE v.job = $1 ORDER BY v.version DESC"))
            .bind(job)
            .fetch_all(&self.pool)
            .await
            .map_err(|source| StoreError::Database {
                action: format!("list the versions of job {job}"),
                source,
            })?;
        rows.iter().map(version_from_row).collect()
    }

    /// Version `version` of `job` and its TOML text, if there is one.
    pub async fn job_version(
        &self,
        job: &str,
        version: u32,
    ) -> Result<Option<(JobVersion, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT v.job, v.version, v.fingerprint, v.author, v.created_at, u.email, v.toml \
             FROM job_versions v LEFT JOIN users u ON u.id = v.author \
             WHERE v.job = $1 AND v.version = $2",
        )
        .bind(job)
        .bind(i64::from(version))
        .fetch_optional(&self.pool)
        .await
        .map_err(|source| StoreError::Database {
            action: format!("read version {version} of job {job}"),
            source,
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let toml: String = row.try_get("toml").map_err(|source| StoreError::Database {
            action: format!("read version {version} of job {job}"),
            source,
        })?;
        Ok(Some((version_from_row(&row)?, toml)))
    }

    /// The latest version of every job that has one, by job name.
    pub async fn latest_job_versions(&self) -> Result<HashMap<String, JobVersion>, StoreError> {
        let rows = sqlx::query(select_versions!(
            "WHERE v.version = (SELECT MAX(w.version) FROM job_versions w WHERE w.job = v.job)"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(|source| StoreError::Database {
            action: "list the latest job versions".to_string(),
            source,
        })?;
        rows.iter()
            .map(|row| version_from_row(row).map(|v| (v.job.clone(), v)))
            .collect()
    }

    /// How many interviews each job has (jobs without any are absent).
    pub async fn interviews_per_job(&self) -> Result<HashMap<String, u64>, StoreError> {
        let failed = |source| StoreError::Database {
            action: "count the interviews of each job".to_string(),
            source,
        };
        let rows = sqlx::query("SELECT job, COUNT(*) AS n FROM interviews GROUP BY job")
            .fetch_all(&self.pool)
            .await
            .map_err(failed)?;
        rows.iter()
            .map(|row| {
                let n: i64 = row.try_get("n").map_err(failed)?;
                Ok((
                    row.try_get("job").map_err(failed)?,
                    u64::try_from(n).unwrap_or(0),
                ))
            })
            .collect()
    }

    /// Records that interview `id` uses version `version` of its job.
    pub async fn set_interview_job_version(
        &self,
        id: &str,
        version: u32,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE interviews SET job_version = $2 WHERE id = $1")
            .bind(id)
            .bind(i64::from(version))
            .execute(&self.pool)
            .await
            .map_err(|source| StoreError::Database {
                action: format!("record the job version of interview {id}"),
                source,
            })?;
        Ok(())
    }

    /// The version of its job interview `id` uses; `None` when not recorded (an interview
    /// from before jobs were versioned) or when there is no such interview.
    pub async fn interview_job_version(&self, id: &str) -> Result<Option<u32>, StoreError> {
        let failed = |source| StoreError::Database {
            action: format!("read the job version of interview {id}"),
            source,
        };
        let row = sqlx::query("SELECT job, job_version FROM interviews WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(failed)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let job: String = row.try_get("job").map_err(failed)?;
        row.try_get::<Option<i64>, _>("job_version")
            .map_err(failed)?
            .map(|version| version_of(&job, version))
            .transpose()
    }
}

fn version_of(job: &str, stored: i64) -> Result<u32, StoreError> {
    u32::try_from(stored)
        .ok()
        .filter(|&version| version > 0)
        .ok_or_else(|| StoreError::CorruptJobVersion {
            job: job.to_owned(),
            value: stored.to_string(),
        })
}

fn version_from_row(row: &AnyRow) -> Result<JobVersion, StoreError> {
    let failed = |source| StoreError::Database {
        action: "read a job version".to_string(),
        source,
    };
    let job: String = row.try_get("job").map_err(failed)?;
    let author: String = row.try_get("author").map_err(failed)?;
    Ok(JobVersion {
        version: version_of(&job, row.try_get("version").map_err(failed)?)?,
        fingerprint: row.try_get("fingerprint").map_err(failed)?,
        author: if author == FILE_AUTHOR {
            Author::File
        } else {
            Author::User(author)
        },
        author_email: row.try_get("email").map_err(failed)?,
        created_at: Timestamp::from_unix_ms(row.try_get("created_at").map_err(failed)?),
        job,
    })
}
