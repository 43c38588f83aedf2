//! The job files interviews are created from: `jobs_dir/NAME.toml`, loaded by name with
//! every problem listed, and the answer judge for each.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use viva_interview::{Embedder, Job, Judge};

/// Longest job name accepted.
const MAX_NAME_LEN: usize = 100;

/// The jobs directory and the sentence-embedding model the judges share.
pub struct Jobs {
    dir: PathBuf,
    embedder: Arc<Embedder>,
}

impl Jobs {
    pub fn new(dir: PathBuf, embedder: Arc<Embedder>) -> Self {
        Self { dir, embedder }
    }

    /// The file a job name refers to, if the name is one: 1-100 letters, digits, `-` and
    /// `_`, so no name reaches outside the directory.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        job_path(&self.dir, name)
    }

    /// Loads the job `name`, listing every problem in it.
    pub fn load(&self, name: &str) -> anyhow::Result<Job> {
        let path = self
            .path(name)
            .with_context(|| format!("`{name}` is not a job name (letters, digits, - and _)"))?;
        Job::load(&path).map_err(|errors| anyhow::anyhow!("{errors}"))
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

    /// The answer judge for the job `name`.
    pub fn judge(&self, name: &str) -> anyhow::Result<Judge> {
        let job = self.load(name)?;
        Ok(Judge::new(Arc::new(job), Arc::clone(&self.embedder))?)
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
            &"x".repeat(101),
        ] {
            assert_eq!(job_path(dir, bad), None, "{bad:?}");
        }
    }
}
