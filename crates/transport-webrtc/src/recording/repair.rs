//! Making a call recording whole after the server died mid-call.
//!
//! libwebm writes a recording's Segment size, Duration and Cues only when the call finishes;
//! a server killed mid-call leaves a file whose header says it lasts 0.001 s, with no index to
//! seek by and a last cluster that may stop mid-block. Every frame before that point is intact,
//! so the repair reads the frames back (webm-iterable) and writes them again through the muxer
//! the call used, which then writes the index as a finished call would have.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::Duration;

use webm_iterable::WebmIterator;
use webm_iterable::errors::TagIteratorError;
use webm_iterable::matroska_spec::{Master, MatroskaSpec, SimpleBlock};

use super::{FrameKind, MicrophoneTrack, Muxer, RecordingError, TrackLayout};

/// How far a finished file's Duration may sit from its last frame: the muxer declares the
/// last frame's exact time while blocks keep it in whole milliseconds, and a crashed file
/// declares 0.001 s whatever it holds, so anything this close is the real duration.
const DURATION_TOLERANCE: Duration = Duration::from_millis(100);

/// Matroska's default TimestampScale (nanoseconds per tick), used when Info leaves it out.
const DEFAULT_TIMESTAMP_SCALE: u64 = 1_000_000;

/// What [`repair_call_recording`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingRepair {
    /// The recording was finished when its call ended (it reads to the end, has Cues and a
    /// Duration that matches its last frame): left byte for byte as it was.
    AlreadyFinished {
        /// The duration its header declares.
        duration: Duration,
    },
    /// The recording was cut off by the crash. It was rewritten with every whole frame it
    /// held, its real duration, Segment size and Cues.
    Repaired {
        /// The recording's duration now: the time of its last frame.
        duration: Duration,
        /// How many frames (camera and microphone) were kept.
        frames: u64,
        /// Why reading stopped before the end of the file, if it did; the bytes from there
        /// on (a frame cut mid-write) were dropped.
        dropped_tail: Option<String>,
    },
    /// No frame reached the file before the crash, so there was nothing to play; the file
    /// was removed, as finishing the call would have done.
    NoMedia,
}

/// Makes the call recording at `path` playable and seekable again after the server died
/// during its call. Crash recovery calls it on every `video*.webm` of an interview that was
/// in progress.
///
/// A file the call finished is left untouched. A file cut off mid-call is read frame by
/// frame up to the first damaged byte, and everything before it is written again through the
/// muxer the call used, so it gets the real Duration, a valid Segment size and Cues. The new
/// file is written beside the old one (`<name>.repairing`), flushed to disk, then renamed
/// over it, so a crash during the repair leaves one whole file or the other. Calling it again
/// on the result reports [`RecordingRepair::AlreadyFinished`].
///
/// # Errors
/// - [`RecordingError::NotACallRecording`] if the file is not a WebM with the tracks a call
///   records (VP8 camera, Opus microphone); it is left as it is.
/// - [`RecordingError::ChangedDuringRepair`] if something still writes the file; it is left
///   as it is.
/// - [`RecordingError::Io`] or [`RecordingError::Muxer`] if reading or writing fails; the
///   original file is then kept as it was.
pub fn repair_call_recording(path: &Path) -> Result<RecordingRepair, RecordingError> {
    let survey = read_recording(path, |_| Ok(()))?;
    let Some(layout) = survey.layout.clone().filter(|_| survey.frames > 0) else {
        std::fs::remove_file(path).map_err(|source| RecordingError::Io {
            action: "remove the frameless recording",
            path: path.to_owned(),
            source,
        })?;
        return Ok(RecordingRepair::NoMedia);
    };
    if let Some(duration) = survey.finished_duration() {
        return Ok(RecordingRepair::AlreadyFinished { duration });
    }

    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".repairing");
    let replacement = path.with_file_name(name);
    let replaced = rewrite(path, &replacement, &layout, survey.frames).and_then(|()| {
        std::fs::rename(&replacement, path).map_err(|source| RecordingError::Io {
            action: "move the repaired recording over",
            path: path.to_owned(),
            source,
        })
    });
    if let Err(err) = replaced {
        // Best effort: a leftover replacement is overwritten by the next attempt anyway.
        let _ = std::fs::remove_file(&replacement);
        return Err(err);
    }
    // The rename is only durable once the directory entry is on disk.
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(directory)
        .and_then(|directory| directory.sync_all())
        .map_err(|source| RecordingError::Io {
            action: "flush the directory entry of",
            path: path.to_owned(),
            source,
        })?;
    tracing::info!(
        path = %path.display(),
        duration = ?survey.end,
        frames = survey.frames,
        dropped_tail = survey.damage.as_deref(),
        "repaired a call recording the server had not finished"
    );
    Ok(RecordingRepair::Repaired {
        duration: survey.end,
        frames: survey.frames,
        dropped_tail: survey.damage,
    })
}

/// Writes the readable frames of `original` into `replacement` and finishes it.
fn rewrite(
    original: &Path,
    replacement: &Path,
    layout: &TrackLayout,
    expected_frames: u64,
) -> Result<(), RecordingError> {
    let file = File::create(replacement).map_err(|source| RecordingError::Io {
        action: "create the repaired copy",
        path: replacement.to_owned(),
        source,
    })?;
    let mut muxer = Muxer::start(replacement, file, layout)?;
    let reread = read_recording(original, |frame| {
        muxer
            .add_frame(frame.kind, frame.data, frame.position)
            .map(drop)
    })?;
    if reread.frames != expected_frames {
        return Err(RecordingError::ChangedDuringRepair {
            path: original.to_owned(),
            before: expected_frames,
            after: reread.frames,
        });
    }
    muxer.finish()
}

/// A frame read back from a recording.
struct RecordedFrame<'a> {
    kind: FrameKind,
    /// Time from the start of the recording.
    position: Duration,
    data: &'a [u8],
}

/// What reading a recording from its start found.
#[derive(Debug, Default)]
struct Survey {
    /// The tracks, once the Tracks element has been read.
    layout: Option<TrackLayout>,
    /// The Duration the Segment Info declares, if any.
    declared_duration: Option<Duration>,
    has_cues: bool,
    frames: u64,
    /// The position of the latest frame: the recording's real duration.
    end: Duration,
    /// Why reading stopped before the end of the file, if it did.
    damage: Option<String>,
}

impl Survey {
    /// The declared duration if the file is finished: read to its end, indexed, and with the
    /// duration of what it holds.
    fn finished_duration(&self) -> Option<Duration> {
        let declared = self.declared_duration?;
        (self.damage.is_none()
            && self.has_cues
            && declared.abs_diff(self.end) <= DURATION_TOLERANCE)
            .then_some(declared)
    }
}

/// Track numbers of a recording's two kinds of track.
#[derive(Debug, Clone, Copy)]
struct TrackNumbers {
    camera: Option<u64>,
    microphone: u64,
}

/// Reads the recording at `path` from its start, handing every whole frame to `on_frame`,
/// until the end of the file or the first damaged element.
fn read_recording(
    path: &Path,
    mut on_frame: impl FnMut(RecordedFrame<'_>) -> Result<(), RecordingError>,
) -> Result<Survey, RecordingError> {
    let not_ours = |detail: String| RecordingError::NotACallRecording {
        path: path.to_owned(),
        detail,
    };
    let file = File::open(path).map_err(|source| RecordingError::Io {
        action: "read the recording",
        path: path.to_owned(),
        source,
    })?;
    // Header elements come whole; clusters come element by element, so a recording of any
    // length is read with little memory and a cut in the last cluster loses only what follows.
    let buffered = [
        MatroskaSpec::Ebml(Master::Start),
        MatroskaSpec::Info(Master::Start),
        MatroskaSpec::Tracks(Master::Start),
    ];
    let mut tags = WebmIterator::new(BufReader::new(file), &buffered);
    let mut survey = Survey::default();
    let mut scale = DEFAULT_TIMESTAMP_SCALE;
    let mut tracks: Option<TrackNumbers> = None;
    let mut cluster_timestamp: Option<u64> = None;

    match tags.next() {
        // An empty file: the server died before the first frame was written.
        None => return Ok(survey),
        Some(Ok(MatroskaSpec::Ebml(Master::Full(header)))) => {
            let doc_type = header.iter().find_map(|tag| match tag {
                MatroskaSpec::DocType(doc_type) => Some(doc_type.as_str()),
                _ => None,
            });
            if doc_type != Some("webm") {
                return Err(not_ours(format!(
                    "its document type is {doc_type:?}, not webm"
                )));
            }
        }
        Some(_) => return Err(not_ours("it does not start with a WebM header".to_owned())),
    }

    for tag in tags {
        let tag = match tag {
            Ok(tag) => tag,
            Err(TagIteratorError::ReadError { source }) => {
                return Err(RecordingError::Io {
                    action: "read the recording",
                    path: path.to_owned(),
                    source,
                });
            }
            Err(damage) => {
                survey.damage = Some(damage.to_string());
                break;
            }
        };
        match tag {
            MatroskaSpec::Info(Master::Full(info)) => {
                let mut declared_ticks = None;
                for field in &info {
                    match field {
                        MatroskaSpec::TimestampScale(value) => scale = *value,
                        MatroskaSpec::Duration(ticks) => declared_ticks = Some(*ticks),
                        _ => {}
                    }
                }
                survey.declared_duration = declared_ticks
                    .and_then(|ticks| Duration::try_from_secs_f64(ticks * scale as f64 / 1e9).ok());
            }
            MatroskaSpec::Tracks(Master::Full(entries)) => {
                let (numbers, layout) = track_layout(&entries).map_err(not_ours)?;
                tracks = Some(numbers);
                survey.layout = Some(layout);
            }
            MatroskaSpec::Cluster(Master::Start) => cluster_timestamp = None,
            MatroskaSpec::Timestamp(ticks) => cluster_timestamp = Some(ticks),
            MatroskaSpec::Cues(Master::Start) => survey.has_cues = true,
            MatroskaSpec::SimpleBlock(_) => {
                let block = SimpleBlock::try_from(&tag)
                    .map_err(|err| not_ours(format!("a block is malformed: {err}")))?;
                let numbers =
                    tracks.ok_or_else(|| not_ours("a block comes before the tracks".to_owned()))?;
                let cluster = cluster_timestamp.ok_or_else(|| {
                    not_ours("a block comes before its cluster's timestamp".to_owned())
                })?;
                if block.lacing.is_some() {
                    return Err(not_ours(
                        "a block is laced, which the call recorder never writes".to_owned(),
                    ));
                }
                let kind = if block.track == numbers.microphone {
                    FrameKind::Audio
                } else if Some(block.track) == numbers.camera {
                    FrameKind::Video {
                        keyframe: block.keyframe,
                    }
                } else {
                    return Err(not_ours(format!(
                        "a block belongs to track {}, which the header does not declare",
                        block.track
                    )));
                };
                let ticks = (cluster as i128 + i128::from(block.timestamp)).max(0);
                let nanos = ticks * i128::from(scale);
                let position = Duration::from_nanos(nanos.min(i128::from(u64::MAX)) as u64);
                on_frame(RecordedFrame {
                    kind,
                    position,
                    data: block.raw_frame_data(),
                })?;
                survey.frames += 1;
                survey.end = survey.end.max(position);
            }
            MatroskaSpec::Block(_) => {
                return Err(not_ours(
                    "it has block groups, which the call recorder never writes".to_owned(),
                ));
            }
            _ => {}
        }
    }
    Ok(survey)
}

/// The call recording's tracks from the Tracks element: a microphone (Opus) and at most one
/// camera (VP8), nothing else.
fn track_layout(entries: &[MatroskaSpec]) -> Result<(TrackNumbers, TrackLayout), String> {
    let mut camera: Option<(u64, (u32, u32))> = None;
    let mut microphone: Option<(u64, MicrophoneTrack)> = None;
    for entry in entries {
        let MatroskaSpec::TrackEntry(Master::Full(fields)) = entry else {
            continue;
        };
        let mut number = None;
        let mut codec = None;
        let mut codec_private = Vec::new();
        let mut picture = (None, None);
        // Matroska's defaults for an audio track that leaves these out.
        let mut sample_rate = 8_000.0;
        let mut channels = 1;
        for field in fields {
            match field {
                MatroskaSpec::TrackNumber(value) => number = Some(*value),
                MatroskaSpec::CodecID(value) => codec = Some(value.as_str()),
                MatroskaSpec::CodecPrivate(value) => codec_private = value.clone(),
                MatroskaSpec::Video(Master::Full(video)) => {
                    for setting in video {
                        match setting {
                            MatroskaSpec::PixelWidth(width) => picture.0 = Some(*width),
                            MatroskaSpec::PixelHeight(height) => picture.1 = Some(*height),
                            _ => {}
                        }
                    }
                }
                MatroskaSpec::Audio(Master::Full(audio)) => {
                    for setting in audio {
                        match setting {
                            MatroskaSpec::SamplingFrequency(rate) => sample_rate = *rate,
                            MatroskaSpec::Channels(count) => channels = *count,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        let number = number.ok_or("a track has no number")?;
        match codec {
            Some("V_VP8") if camera.is_none() => {
                let (Some(width), Some(height)) = picture else {
                    return Err(format!("camera track {number} has no picture size"));
                };
                let size = (u32::try_from(width), u32::try_from(height));
                let (Ok(width), Ok(height)) = size else {
                    return Err(format!(
                        "camera track {number} has an impossible picture size"
                    ));
                };
                camera = Some((number, (width, height)));
            }
            Some("A_OPUS") if microphone.is_none() => {
                microphone = Some((
                    number,
                    MicrophoneTrack {
                        sample_rate: sample_rate as u32,
                        channels: u32::try_from(channels)
                            .map_err(|_| format!("track {number} has {channels} channels"))?,
                        opus_head: codec_private,
                    },
                ));
            }
            other => {
                return Err(format!(
                    "track {number} is {other:?}; a call recording has one Opus microphone \
                     track and at most one VP8 camera track"
                ));
            }
        }
    }
    let (microphone_number, microphone) = microphone.ok_or("it has no Opus microphone track")?;
    Ok((
        TrackNumbers {
            camera: camera.map(|(number, _)| number),
            microphone: microphone_number,
        },
        TrackLayout {
            camera: camera.map(|(_, size)| size),
            microphone,
        },
    ))
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::Instant;

    use viva_media::OpusEncoder;
    use viva_test_support::scratch_dir;
    use viva_test_support::video::{mkvinfo, probe, try_probe, vp8_test_pattern};

    use super::*;
    use crate::recording::{CallRecording, CameraTrack};
    use crate::vp8::Vp8Frame;

    /// How close the repaired duration must come to the last frame on disk before the repair.
    const MEASURE_TOLERANCE: f64 = 0.1;

    /// The camera's frame rate in these tests.
    const CAMERA_FPS: u32 = 25;

    /// Feeds a call as the network delivers it: 20 ms Opus packets and, if given, 25 fps
    /// camera frames, interleaved by arrival time over `seconds`.
    fn feed_call(recording: &mut CallRecording, seconds: u32, camera: Option<&[Vec<u8>]>) {
        let start = Instant::now();
        let mut encoder = OpusEncoder::new().unwrap();
        for tick in 0..seconds * 50 {
            let arrival = start + Duration::from_millis(20 * u64::from(tick));
            let samples: Vec<f32> = (0..960)
                .map(|n| 0.3 * ((tick * 960 + n) as f32 * 0.06).sin())
                .collect();
            recording.add_audio(tick * 960, arrival, &encoder.encode(&samples).unwrap());
            let Some(frames) = camera else { continue };
            if tick % 2 == 0
                && let Some(data) = frames.get(tick as usize / 2)
            {
                let frame = Vp8Frame {
                    data: data.clone(),
                    // VP8 frame tag (RFC 6386 section 9.1): bit 0 clear marks a key frame.
                    keyframe: data[0] & 1 == 0,
                    rtp_timestamp: tick / 2 * 3_600,
                };
                recording.add_video(frame, arrival);
            }
        }
    }

    /// Stops writing the way `kill -9` does: no finalize, and whatever sat in the write
    /// buffer never reaches the file.
    fn crash(recording: CallRecording) {
        std::mem::forget(recording);
    }

    /// The times of the packets ffprobe can read from the file, of every stream or only of
    /// `streams` ("v", "a"), whatever its header claims: what the file really holds.
    fn packet_times(path: &Path, streams: Option<&str>) -> Vec<f64> {
        let mut ffprobe = Command::new("ffprobe");
        ffprobe.args(["-v", "quiet"]);
        if let Some(streams) = streams {
            ffprobe.args(["-select_streams", streams]);
        }
        let output = ffprobe
            .args(["-show_entries", "packet=pts_time", "-of", "csv=p=0"])
            .arg(path)
            .output()
            .expect("ffprobe must be installed");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.trim().trim_end_matches(',').parse::<f64>().ok())
            .collect()
    }

    fn last(times: &[f64]) -> f64 {
        times.iter().copied().fold(0.0, f64::max)
    }

    /// The duration mkvmerge reads from the Segment Info, in seconds (0 if none); fails if
    /// mkvmerge reports an error.
    fn mkvmerge_duration(path: &Path) -> f64 {
        let output = Command::new("mkvmerge")
            .arg("-J")
            .arg(path)
            .output()
            .expect("mkvmerge (mkvtoolnix) must be installed");
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|err| panic!("mkvmerge -J printed no JSON ({err})"));
        assert_eq!(
            report["errors"],
            serde_json::json!([]),
            "mkvmerge: {report:#}"
        );
        report["container"]["properties"]["duration"]
            .as_f64()
            .unwrap_or(0.0)
            / 1e9
    }

    /// How many cue points mkvinfo lists (each is a place a player can seek to directly).
    fn mkvinfo_cue_points(path: &Path) -> usize {
        mkvinfo(path)
            .lines()
            .filter(|line| line.ends_with("+ Cue point"))
            .count()
    }

    /// Checks a repaired file with the real tools: duration within the tolerance of
    /// `expected` seconds in mkvmerge and ffprobe, cues, and a clean read.
    fn assert_whole(path: &Path, expected: f64, codecs: &[&str]) {
        let probed = probe(path);
        assert_eq!(probed.codecs(), codecs);
        let by_mkvmerge = mkvmerge_duration(path);
        let by_ffprobe = probed.duration;
        let cue_points = mkvinfo_cue_points(path);
        println!(
            "{}: after repair mkvmerge {by_mkvmerge:.3} s, ffprobe {by_ffprobe:.3} s (expected {expected:.3} s), {cue_points} cue points",
            path.display()
        );
        assert!(
            (by_mkvmerge - expected).abs() <= MEASURE_TOLERANCE,
            "mkvmerge says {by_mkvmerge} s, the frames end at {expected} s"
        );
        assert!(
            (by_ffprobe - expected).abs() <= MEASURE_TOLERANCE,
            "ffprobe says {by_ffprobe} s, the frames end at {expected} s"
        );
        assert!(
            mkvinfo_cue_points(path) > 0,
            "no cues in {}",
            path.display()
        );
    }

    /// Measures a crashed file as players see it; returns the packets it holds.
    fn measure_crashed(path: &Path) -> Vec<f64> {
        let header = mkvmerge_duration(path);
        // What players show: 0 when ffprobe reads no duration at all.
        let shown = try_probe(path).map_or(0.0, |probe| probe.duration);
        let packets = packet_times(path, None);
        println!(
            "{}: before repair mkvmerge {header:.3} s, ffprobe {shown:.3} s, {} packets, the last at {:.3} s, {} cue points",
            path.display(),
            packets.len(),
            last(&packets),
            mkvinfo_cue_points(path)
        );
        assert!(
            header < 0.01 && shown < 0.01,
            "the crashed file already declares {header} s; the test no longer simulates the bug"
        );
        packets
    }

    /// Checks that the repair kept every packet of the crashed file; ffprobe may also list
    /// the one frame the crash cut in half, which the repair drops.
    fn assert_kept(path: &Path, crashed: &[f64]) {
        let repaired = packet_times(path, None);
        assert!(
            (crashed.len() - 1..=crashed.len()).contains(&repaired.len()),
            "{} packets before the repair, {} after",
            crashed.len(),
            repaired.len()
        );
    }

    #[test]
    fn a_crashed_camera_recording_gets_its_duration_and_cues_back() {
        let scratch = scratch_dir("webrtc-repair-camera");
        let path = scratch.path().join("video.webm");
        let frames = vp8_test_pattern(scratch.path(), 12, CAMERA_FPS);
        let mut recording = CallRecording::create(&path, CameraTrack::Vp8).unwrap();
        feed_call(&mut recording, 12, Some(&frames));
        crash(recording);
        let crashed = measure_crashed(&path);
        let held = last(&crashed);
        assert!(
            held > 10.0,
            "only {held} s reached the file before the crash"
        );

        let outcome = repair_call_recording(&path).unwrap();
        let RecordingRepair::Repaired { duration, .. } = outcome else {
            panic!("a crashed recording was not repaired: {outcome:?}");
        };
        assert!((duration.as_secs_f64() - held).abs() <= MEASURE_TOLERANCE);
        assert_whole(&path, held, &["vp8", "opus"]);
        assert_kept(&path, &crashed);
        assert!(!scratch.path().join("video.webm.repairing").exists());

        // A second recovery finds the repaired file finished and leaves it alone.
        let repaired = std::fs::read(&path).unwrap();
        let again = repair_call_recording(&path).unwrap();
        assert!(
            matches!(again, RecordingRepair::AlreadyFinished { duration: declared } if declared.abs_diff(duration) < Duration::from_millis(2)),
            "{again:?}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), repaired);
    }

    #[test]
    fn a_recording_cut_mid_frame_keeps_every_whole_frame() {
        let scratch = scratch_dir("webrtc-repair-cut");
        let path = scratch.path().join("video.webm");
        let frames = vp8_test_pattern(scratch.path(), 8, CAMERA_FPS);
        let mut recording = CallRecording::create(&path, CameraTrack::Vp8).unwrap();
        feed_call(&mut recording, 8, Some(&frames));
        recording.finish().unwrap();
        // Cut through the middle of the camera frame at 5 s: the last cluster ends
        // mid-block and the index after it is gone.
        let mut bytes = std::fs::read(&path).unwrap();
        let frame = &frames[125];
        let at = bytes
            .windows(frame.len())
            .position(|window| window == frame.as_slice())
            .expect("the frame at 5 s is in the file");
        bytes.truncate(at + frame.len() / 2);
        std::fs::write(&path, &bytes).unwrap();
        println!("{}: cut mid-frame at byte {}", path.display(), bytes.len());

        let outcome = repair_call_recording(&path).unwrap();
        let RecordingRepair::Repaired { dropped_tail, .. } = outcome else {
            panic!("a cut recording was not repaired: {outcome:?}");
        };
        assert!(dropped_tail.is_some(), "the cut frame went unnoticed");
        // The 125 camera frames before the cut one (0 to 4.96 s) and the sound up to it.
        assert_whole(&path, 5.0, &["vp8", "opus"]);
        assert_eq!(packet_times(&path, Some("v")).len(), 125);
    }

    #[test]
    fn a_recording_killed_while_finishing_gets_its_cues() {
        let scratch = scratch_dir("webrtc-repair-finishing");
        let path = scratch.path().join("video.webm");
        let frames = vp8_test_pattern(scratch.path(), 4, CAMERA_FPS);
        let mut recording = CallRecording::create(&path, CameraTrack::Vp8).unwrap();
        feed_call(&mut recording, 4, Some(&frames));
        recording.finish().unwrap();
        let duration = mkvmerge_duration(&path);
        // libwebm writes the Duration before the Cues: a kill in between leaves the right
        // duration, a file that reads cleanly to its end, and nothing to seek by.
        let mut bytes = std::fs::read(&path).unwrap();
        let cues = bytes
            .windows(4)
            .rposition(|id| id == [0x1c, 0x53, 0xbb, 0x6b])
            .expect("the finished file has cues");
        bytes.truncate(cues);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(mkvinfo_cue_points(&path), 0);

        let outcome = repair_call_recording(&path).unwrap();
        assert!(
            matches!(
                outcome,
                RecordingRepair::Repaired {
                    dropped_tail: None,
                    ..
                }
            ),
            "{outcome:?}"
        );
        assert_whole(&path, duration, &["vp8", "opus"]);
    }

    #[test]
    fn a_crashed_audio_recording_gets_its_duration_and_cues_back() {
        let scratch = scratch_dir("webrtc-repair-audio");
        let path = scratch.path().join("video.webm");
        let mut recording = CallRecording::create(&path, CameraTrack::None).unwrap();
        feed_call(&mut recording, 20, None);
        crash(recording);
        let crashed = measure_crashed(&path);
        let held = last(&crashed);
        assert!(
            held > 15.0,
            "only {held} s reached the file before the crash"
        );

        let outcome = repair_call_recording(&path).unwrap();
        assert!(
            matches!(outcome, RecordingRepair::Repaired { .. }),
            "{outcome:?}"
        );
        assert_whole(&path, held, &["opus"]);
        assert_kept(&path, &crashed);
    }

    #[test]
    fn a_finished_recording_is_left_byte_for_byte() {
        let scratch = scratch_dir("webrtc-repair-finished");
        let path = scratch.path().join("video.webm");
        let frames = vp8_test_pattern(scratch.path(), 4, CAMERA_FPS);
        let mut recording = CallRecording::create(&path, CameraTrack::Vp8).unwrap();
        feed_call(&mut recording, 4, Some(&frames));
        recording.finish().unwrap();
        let finished = std::fs::read(&path).unwrap();
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();

        let outcome = repair_call_recording(&path).unwrap();
        let RecordingRepair::AlreadyFinished { duration } = outcome else {
            panic!("a finished recording was rewritten: {outcome:?}");
        };
        assert!(
            (duration.as_secs_f64() - mkvmerge_duration(&path)).abs() < 0.002,
            "{duration:?}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), finished);
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            modified
        );
    }

    #[test]
    fn a_call_that_crashed_before_any_media_leaves_no_file() {
        let scratch = scratch_dir("webrtc-repair-empty");
        let path = scratch.path().join("video.webm");
        crash(CallRecording::create(&path, CameraTrack::Vp8).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        assert_eq!(
            repair_call_recording(&path).unwrap(),
            RecordingRepair::NoMedia
        );
        assert!(!path.exists());
    }

    #[test]
    fn a_file_that_is_not_a_call_recording_is_left_alone() {
        let scratch = scratch_dir("webrtc-repair-foreign");
        let text = scratch.path().join("video-notes.webm");
        std::fs::write(&text, "not a video").unwrap();
        let err = repair_call_recording(&text).unwrap_err();
        assert!(
            matches!(err, RecordingError::NotACallRecording { .. }),
            "{err}"
        );
        assert_eq!(std::fs::read(&text).unwrap(), b"not a video");

        // A WebM another program wrote, with a track a call never records.
        let foreign = scratch.path().join("video-foreign.webm");
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i", "sine=duration=1"])
            .args(["-c:a", "libvorbis"])
            .arg(&foreign)
            .status()
            .expect("ffmpeg must be installed");
        assert!(status.success());
        let before = std::fs::read(&foreign).unwrap();
        let err = repair_call_recording(&foreign).unwrap_err();
        assert!(err.to_string().contains("A_VORBIS"), "{err}");
        assert_eq!(std::fs::read(&foreign).unwrap(), before);
    }
}
