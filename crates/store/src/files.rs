//! The files of one interview: where each lives in its directory. The one place that knows
//! the layout: the transcript log, the stereo recording, the camera videos and the report.

use std::path::{Path, PathBuf};

/// The turn log, written line by line as the call goes.
const TRANSCRIPT_LOG: &str = "transcript.jsonl";
/// The stereo call recording (candidate left, interviewer right).
const RECORDING: &str = "recording.wav";
/// The first browser connection's camera and microphone; each rejoin records its own part.
const VIDEO: &str = "video.webm";
/// The scored report, written when the interview ends.
const REPORT: &str = "report.json";

/// The directory of one interview and the files in it. Made by
/// [`Store::files`](crate::Store::files), which checked the id and created the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterviewFiles {
    dir: PathBuf,
}

impl InterviewFiles {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The interview's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The transcript's turn log.
    pub fn transcript_log(&self) -> PathBuf {
        self.dir.join(TRANSCRIPT_LOG)
    }

    /// The stereo call recording.
    pub fn recording(&self) -> PathBuf {
        self.dir.join(RECORDING)
    }

    /// The scored report.
    pub fn report(&self) -> PathBuf {
        self.dir.join(REPORT)
    }

    /// The video of the first browser connection.
    pub fn video(&self) -> PathBuf {
        self.dir.join(VIDEO)
    }

    /// Where connection `conn` records its video: the first connection `video.webm`, a rejoin
    /// a part of its own beside it, so a reconnect never overwrites what was recorded.
    pub fn video_for(&self, conn: u64) -> PathBuf {
        let first = self.video();
        if first.exists() {
            self.dir.join(format!("video-{conn}.webm"))
        } else {
            first
        }
    }

    /// Every video recorded for the interview.
    pub fn videos(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut videos: Vec<PathBuf> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("video") && n.ends_with(".webm"))
            })
            .collect();
        videos.sort();
        videos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejoin_records_its_own_video_beside_the_first() {
        let scratch = viva_test_support::scratch_dir("store-files");
        let dir = scratch.path().to_owned();
        let files = InterviewFiles::new(dir.clone());
        assert_eq!(files.video_for(7), dir.join("video.webm"));
        std::fs::write(files.video(), b"x").unwrap();
        assert_eq!(files.video_for(8), dir.join("video-8.webm"));
        std::fs::write(files.video_for(8), b"x").unwrap();
        std::fs::write(files.recording(), b"x").unwrap();
        assert_eq!(
            files.videos(),
            [dir.join("video-8.webm"), dir.join("video.webm")]
        );
    }
}
