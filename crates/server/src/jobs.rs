//! The job files interviews are created from: `jobs_dir/NAME.toml`, loaded by name with
//! every problem listed, saved from the workspace, versioned in the store, the answer judge
//! for each, and each job's planned lines spoken into the voice cache before anyone calls.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use viva_interview::{
    Embedder, Job, JobError, JobErrors, Judge, Problem, TranscriptError, planned_lines,
};
use viva_speech::Tts;
use viva_store::{Author, Store, StoreError, Timestamp};

/// Longest job name accepted.
const MAX_NAME_LEN: usize = 100;
/// Largest job text the workspace saves: the shipped example is about 11 KiB, so this leaves
/// room for very long jobs while bounding what one request can make the server parse and keep.
pub const MAX_JOB_BYTES: usize = 256 * 1024;

/// The jobs directory and the sentence-embedding model the judges share.
pub struct Jobs {
    dir: PathBuf,
    embedder: Arc<Embedder>,
    /// The interviewer's voice, whose cache each job's planned lines are spoken into.
    voice: Arc<Tts>,
    /// Held while a job is written and its version recorded, so two saves cannot interleave
    /// their temporary files or record versions out of the order the files were written.
    saving: tokio::sync::Mutex<()>,
}

/// A job as read from its file: the validated job and the exact text it came from.
pub struct JobFile {
    pub job: Job,
    pub text: String,
}

/// Why a job was not saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("`{name}` is not a job name: use 1-{MAX_NAME_LEN} letters, digits, - and _")]
    NotAName { name: String },
    #[error("there is already a job named `{name}`: edit it instead, or choose another name")]
    Exists { name: String },
    #[error(
        "the job is {} KiB; at most {} KiB are accepted",
        bytes.div_ceil(1024),
        MAX_JOB_BYTES / 1024
    )]
    TooLarge { bytes: usize },
    /// The text is not a valid job: every problem, as the command line reports them.
    #[error("{0}")]
    Invalid(JobErrors),
    #[error("cannot write the job file: {0}")]
    Write(#[from] TranscriptError),
    /// The file was written, but its version could not be recorded.
    #[error("the job file was saved, but its version could not be recorded: {0}")]
    Version(#[from] StoreError),
}

/// Whether a save may replace an existing job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Save {
    /// A new job: refused when the name is taken.
    Create,
    /// A new text for a job, which may or may not exist yet.
    Replace,
}

impl Jobs {
    pub fn new(dir: PathBuf, embedder: Arc<Embedder>, voice: Arc<Tts>) -> Self {
        Self {
            dir,
            embedder,
            voice,
            saving: tokio::sync::Mutex::new(()),
        }
    }

    /// The file a job name refers to, if the name is one: 1-100 letters, digits, `-` and
    /// `_`, so no name reaches outside the directory.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        job_path(&self.dir, name)
    }

    /// Reads and validates the job `name`, listing every problem in it.
    pub fn read(&self, name: &str) -> anyhow::Result<JobFile> {
        let path = self
            .path(name)
            .with_context(|| format!("`{name}` is not a job name (letters, digits, - and _)"))?;
        // Read here rather than by `Job::load` so the text kept is the text validated; the
        // problem reported when it cannot be read is `Job::load`'s.
        let text = std::fs::read_to_string(&path).map_err(|err| {
            anyhow::anyhow!(
                "{}",
                JobError {
                    file: path.clone(),
                    field: String::new(),
                    line: None,
                    problem: Problem::Unreadable {
                        reason: err.to_string(),
                    },
                }
            )
        })?;
        let job = Job::from_toml(&text, &path).map_err(|errors| anyhow::anyhow!("{errors}"))?;
        Ok(JobFile { job, text })
    }

    /// Loads the job `name`, listing every problem in it.
    pub fn load(&self, name: &str) -> anyhow::Result<Job> {
        Ok(self.read(name)?.job)
    }

    /// The names of the jobs in the directory, sorted (files whose name is not a job name
    /// are left out).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let stem = name.strip_suffix(".toml")?;
                job_path(&self.dir, stem).map(|_| stem.to_owned())
            })
            .collect();
        names.sort();
        names
    }

    /// Speaks the planned lines of every job into the voice cache in the background, after
    /// anything a caller is waiting to hear.
    pub fn prepare_voice(&self) {
        for name in self.names() {
            match self.load(&name) {
                Ok(job) => self.prepare_voice_of(&job),
                Err(error) => tracing::warn!(job = name, "{error:#}"),
            }
        }
    }

    /// Speaks `job`'s planned lines into the voice cache in the background.
    fn prepare_voice_of(&self, job: &Job) {
        let lines = planned_lines(job);
        let (voice, id) = (Arc::clone(&self.voice), job.id.clone());
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            for line in &lines {
                if let Err(error) = voice.prepare(line) {
                    tracing::warn!(job = id, %error, line, "a planned line could not be synthesized");
                }
            }
            tracing::info!(
                job = id,
                lines = lines.len(),
                seconds = started.elapsed().as_secs_f32(),
                "the job's planned lines are in the voice cache"
            );
        });
    }

    /// The answer judge for the job `name`.
    pub fn judge(&self, name: &str) -> anyhow::Result<Judge> {
        self.judge_of(self.load(name)?)
    }

    /// The answer judge for `job`.
    pub fn judge_of(&self, job: Job) -> anyhow::Result<Judge> {
        Ok(Judge::new(Arc::new(job), Arc::clone(&self.embedder))?)
    }

    /// Checks `text` as the job `name` with exactly the checks a job file gets when it is
    /// loaded, writes it to the job's file atomically (readers see the old text or the new,
    /// never a mix) and records it as a version by `author`. Nothing is written when the name
    /// or the text is refused.
    pub async fn save(
        &self,
        store: &Store,
        name: &str,
        text: &str,
        save: Save,
        author: &Author,
    ) -> Result<(Job, u32), SaveError> {
        let not_a_name = || SaveError::NotAName {
            name: name.to_owned(),
        };
        let path = self.path(name).ok_or_else(not_a_name)?;
        if text.len() > MAX_JOB_BYTES {
            return Err(SaveError::TooLarge { bytes: text.len() });
        }
        let job = Job::from_toml(text, &path).map_err(SaveError::Invalid)?;
        let _saving = self.saving.lock().await;
        if save == Save::Create && path.exists() {
            return Err(SaveError::Exists {
                name: name.to_owned(),
            });
        }
        viva_interview::write_atomically(&path, text.as_bytes())?;
        let recorded = store
            .record_job_version(name, job.fingerprint(), text, author, Timestamp::now())
            .await?;
        self.prepare_voice_of(&job);
        Ok((job, recorded.version))
    }

    /// Records the text `file` was read from as the latest version of the job `name`, unless
    /// it is already; returns its version. A file edited by hand since it was last seen
    /// becomes a version by [`Author::File`].
    pub async fn record(
        &self,
        store: &Store,
        name: &str,
        file: &JobFile,
    ) -> Result<u32, StoreError> {
        let _saving = self.saving.lock().await;
        let recorded = store
            .record_job_version(
                name,
                file.job.fingerprint(),
                &file.text,
                &Author::File,
                Timestamp::now(),
            )
            .await?;
        if recorded.added {
            tracing::info!(
                job = name,
                version = recorded.version,
                "a changed job file is a new version"
            );
        }
        Ok(recorded.version)
    }

    /// Records a version for every job file whose text changed since it was last recorded, so
    /// files edited by hand while the server was down are versioned too. Files that do not
    /// load are left for their author to fix (interviews cannot use them either).
    pub async fn record_all(&self, store: &Store) -> Result<(), StoreError> {
        for name in self.names() {
            match self.read(&name) {
                Ok(file) => {
                    self.record(store, &name, &file).await?;
                }
                Err(err) => {
                    tracing::warn!(job = %name, error = %format!("{err:#}"), "a job file does not load; no version recorded");
                }
            }
        }
        Ok(())
    }
}

fn job_path(dir: &Path, name: &str) -> Option<PathBuf> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    valid.then(|| dir.join(format!("{name}.toml")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_name_cannot_leave_the_jobs_directory() {
        let dir = Path::new("/srv/jobs");
        assert_eq!(
            job_path(dir, "backend-developer_2"),
            Some(PathBuf::from("/srv/jobs/backend-developer_2.toml"))
        );
        for bad in [
            "",
            "../secret",
            "a/b",
            "a.b",
            "/etc/passwd",
            "é",
            "%2e%2e",
            "..",
            "a\\b",
            &"x".repeat(101),
        ] {
            assert_eq!(job_path(dir, bad), None, "{bad:?}");
        }
    }
}
