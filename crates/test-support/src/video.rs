//! Camera frames and media-file checks for the WebRTC recording tests: VP8 frames of a test
//! pattern (ffmpeg with libvpx), and what ffprobe and mkvinfo read from a recorded file. The
//! tools come with `scripts/setup` (ffmpeg, mkvtoolnix).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// VP8 frames of a moving test pattern: `seconds` at `fps` (320x240, a key frame every
/// second), encoded by ffmpeg (libvpx) into an IVF file in `dir` and split into frames.
pub fn vp8_test_pattern(dir: &Path, seconds: u32, fps: u32) -> Vec<Vec<u8>> {
    let ivf = dir.join("camera.ivf");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc=size=320x240:rate={fps}"))
        .args(["-t", &seconds.to_string(), "-c:v", "libvpx", "-g"])
        .arg(fps.to_string())
        .args(["-b:v", "300k", "-deadline", "realtime", "-f", "ivf"])
        .arg(&ivf)
        .status()
        .expect("ffmpeg (with libvpx) must be installed to make camera frames");
    assert!(status.success(), "ffmpeg failed to encode VP8");
    let data = std::fs::read(&ivf).expect("ffmpeg wrote the IVF file");
    ivf_frames(&data)
}

/// The frames of an IVF file: a header (`DKIF`, its own length at byte 6), then per frame a
/// 12-byte header starting with the frame's length.
fn ivf_frames(data: &[u8]) -> Vec<Vec<u8>> {
    assert_eq!(&data[..4], b"DKIF", "not an IVF file");
    let mut at = usize::from(u16::from_le_bytes([data[6], data[7]]));
    let mut frames = Vec::new();
    while at + 12 <= data.len() {
        let size = u32::from_le_bytes(data[at..at + 4].try_into().expect("four bytes")) as usize;
        frames.push(data[at + 12..at + 12 + size].to_vec());
        at += 12 + size;
    }
    frames
}

/// One stream of a media file, as ffprobe reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Stream {
    /// `opus`, `vp8`, `pcm_s16le`, ...
    pub codec: String,
    /// `audio` or `video`.
    pub kind: String,
    /// Audio channels.
    pub channels: Option<u32>,
    /// Frames decoded, when counted (see [`probe_counting_frames`]).
    pub frames: Option<u64>,
}

/// What ffprobe reads from a media file.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    pub streams: Vec<Stream>,
    /// Seconds, as players show it.
    pub duration: f64,
}

impl Probe {
    /// The streams' codec names, in file order.
    pub fn codecs(&self) -> Vec<&str> {
        self.streams.iter().map(|s| s.codec.as_str()).collect()
    }

    /// The first stream of `kind` (`audio`, `video`).
    pub fn stream(&self, kind: &str) -> Option<&Stream> {
        self.streams.iter().find(|s| s.kind == kind)
    }
}

/// Reads `path` with ffprobe; fails the test if ffprobe rejects the file or complains about
/// anything in it (what a recording must pass).
pub fn probe(path: &Path) -> Probe {
    strict(path, &[])
}

/// [`probe`], also decoding every frame to count them (slower).
pub fn probe_counting_frames(path: &Path) -> Probe {
    strict(path, &["-count_frames"])
}

/// What ffprobe reads from `path`, however damaged it is: `Err` with ffprobe's complaint when
/// it reads nothing. For files that are broken on purpose (a recording cut off by a crash).
pub fn try_probe(path: &Path) -> Result<Probe, String> {
    let output = ffprobe(path, &[]);
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
    }
    Ok(parse(&output.stdout))
}

fn strict(path: &Path, extra: &[&str]) -> Probe {
    let output = ffprobe(path, extra);
    let complaints = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && complaints.trim().is_empty(),
        "ffprobe on {}: {complaints}",
        path.display()
    );
    parse(&output.stdout)
}

fn ffprobe(path: &Path, extra: &[&str]) -> Output {
    Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(extra)
        .arg("-show_entries")
        .arg("stream=codec_name,codec_type,channels,nb_read_frames:format=duration")
        .arg(path)
        .output()
        .expect("ffprobe (ffmpeg) must be installed")
}

/// ffprobe's JSON report, where the duration and frame counts come as strings.
fn parse(json: &[u8]) -> Probe {
    let report: Value = serde_json::from_slice(json)
        .unwrap_or_else(|err| panic!("ffprobe printed no JSON ({err})"));
    let number = |value: &Value| -> Option<f64> {
        value
            .as_f64()
            .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
    };
    let streams = report["streams"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|stream| Stream {
            codec: stream["codec_name"].as_str().unwrap_or_default().to_owned(),
            kind: stream["codec_type"].as_str().unwrap_or_default().to_owned(),
            channels: number(&stream["channels"]).map(|n| n as u32),
            frames: number(&stream["nb_read_frames"]).map(|n| n as u64),
        })
        .collect();
    Probe {
        streams,
        duration: number(&report["format"]["duration"]).unwrap_or(0.0),
    }
}

/// mkvinfo's full report of a Matroska/WebM file (`--all`: every element, cue points
/// included); fails the test if mkvinfo rejects the file.
pub fn mkvinfo(path: &Path) -> String {
    let output = Command::new("mkvinfo")
        .arg("--all")
        .arg(path)
        .output()
        .expect("mkvinfo (mkvtoolnix) must be installed");
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "mkvinfo rejects {}: {report}",
        path.display()
    );
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ivf_frames_are_split_by_their_headers() {
        let mut ivf = b"DKIF".to_vec();
        ivf.extend([0, 0, 32, 0]);
        ivf.resize(32, 0);
        for frame in [&b"abc"[..], &b"de"[..]] {
            ivf.extend((frame.len() as u32).to_le_bytes());
            ivf.extend([0; 8]);
            ivf.extend(frame);
        }
        assert_eq!(ivf_frames(&ivf), [b"abc".to_vec(), b"de".to_vec()]);
    }

    #[test]
    fn ffprobe_json_gives_streams_and_duration() {
        let report = br#"{
            "streams": [
                {"codec_name": "vp8", "codec_type": "video", "nb_read_frames": "45"},
                {"codec_name": "opus", "codec_type": "audio", "channels": 1}
            ],
            "format": {"duration": "3.020000"}
        }"#;
        let probe = parse(report);
        assert_eq!(probe.codecs(), ["vp8", "opus"]);
        assert_eq!(probe.stream("video").and_then(|s| s.frames), Some(45));
        assert_eq!(probe.stream("audio").and_then(|s| s.channels), Some(1));
        assert!((probe.duration - 3.02).abs() < 1e-9);
    }
}
