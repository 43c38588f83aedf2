//! The candidate's camera and microphone written to WebM as the call goes: VP8 frames and
//! Opus packets exactly as the browser sent them (no re-encoding). A file the server could not
//! finish (it was killed mid-call) is made whole again by [`repair_call_recording`].

mod repair;

pub use repair::{RecordingRepair, repair_call_recording};

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use webm::mux::{
    AudioCodecId, AudioTrack, Segment, SegmentBuilder, SegmentMode, VideoCodecId, VideoTrack,
    Writer,
};

use crate::vp8::Vp8Frame;

/// Frames are held this long before they are written, so packets from the two tracks that
/// arrive slightly out of step still go into the file in timestamp order (WebM requires it).
const INTERLEAVE_HOLD: Duration = Duration::from_millis(500);

/// How long to wait for the first camera key frame (which gives the picture size) before the
/// file is started without it (browsers send one within a second of connecting).
const FIRST_KEYFRAME_WAIT: Duration = Duration::from_secs(10);

/// Picture size declared when the camera sent no key frame in time; players take the real
/// size from the VP8 stream.
const FALLBACK_SIZE: (u32, u32) = (640, 480);

/// RTP clock rates of the two tracks.
const OPUS_CLOCK_RATE: u64 = 48_000;
const VP8_CLOCK_RATE: u64 = 90_000;

/// Whether the recording has a camera track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CameraTrack {
    /// The browser sends VP8: it is recorded.
    Vp8,
    /// No camera, or a codec WebM cannot hold here (H.264): audio only.
    None,
}

/// Why a call recording could not be written or repaired.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The file system refused a read or write.
    #[error(
        "could not {action} {path}: {source}; check that the disk is not full and the \
         directory is writable"
    )]
    Io {
        /// What was being done, e.g. "read the recording".
        action: &'static str,
        /// The file (or its temporary replacement) concerned.
        path: PathBuf,
        /// The file system's error.
        source: std::io::Error,
    },
    /// libwebm refused a step; it reports no detail, and the usual cause is a failed write.
    #[error(
        "the WebM muxer (libwebm) failed to {operation} for {path}; check that the disk is not \
         full and the file was not removed while it was written"
    )]
    Muxer {
        /// The file being written.
        path: PathBuf,
        /// The step that failed.
        operation: &'static str,
    },
    /// The file is not a recording this crate wrote, so a repair could lose what it holds.
    #[error(
        "{path} is not a call recording the server wrote ({detail}); it was left as it is, \
         check it with `mkvinfo` before deleting or replacing it"
    )]
    NotACallRecording {
        /// The file asked for.
        path: PathBuf,
        /// What did not match a call recording.
        detail: String,
    },
    /// The file grew or changed between the two reads of a repair.
    #[error(
        "{path} changed while it was being repaired ({before} frames, then {after}); it was \
         left as it is. Repair a recording only once no server is writing it (after its call \
         ended or its server died)"
    )]
    ChangedDuringRepair {
        /// The recording.
        path: PathBuf,
        /// Frames read the first time.
        before: u64,
        /// Frames read the second time.
        after: u64,
    },
}

/// Maps one track's RTP timestamps onto the recording's timeline, which starts at the first
/// packet of any track. A track starts at its first packet's arrival; after that its own RTP
/// clock places every frame, so network jitter does not bend the timeline.
#[derive(Debug)]
struct TrackClock {
    rate: u64,
    first: i64,
    /// Highest unwrapped timestamp seen: the reference for unwrapping the next one.
    highest: i64,
    offset: Duration,
}

impl TrackClock {
    fn new(rtp_timestamp: u32, rate: u64, offset: Duration) -> Self {
        TrackClock {
            rate,
            first: i64::from(rtp_timestamp),
            highest: i64::from(rtp_timestamp),
            offset,
        }
    }

    fn position(&mut self, rtp_timestamp: u32) -> Duration {
        let delta = i64::from(rtp_timestamp.wrapping_sub(self.highest as u32) as i32);
        let unwrapped = self.highest + delta;
        self.highest = self.highest.max(unwrapped);
        let since_first = unwrapped - self.first;
        let nanos = i128::from(since_first) * 1_000_000_000 / i128::from(self.rate);
        let position = self.offset.as_nanos() as i128 + nanos;
        Duration::from_nanos(position.clamp(0, i128::from(u64::MAX)) as u64)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum FrameKind {
    Audio,
    Video { keyframe: bool },
}

/// A frame waiting to be written; ordered by position, then arrival.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct HeldFrame {
    position: Duration,
    arrival_order: u64,
    kind: FrameKind,
    data: Vec<u8>,
}

/// The tracks a recording declares in its header.
#[derive(Debug, Clone, PartialEq)]
struct TrackLayout {
    /// Picture size of the camera (VP8) track; `None` for an audio-only recording.
    camera: Option<(u32, u32)>,
    /// The microphone (Opus) track.
    microphone: MicrophoneTrack,
}

#[derive(Debug, Clone, PartialEq)]
struct MicrophoneTrack {
    sample_rate: u32,
    channels: u32,
    /// The Opus identification header, kept as the track's codec private data.
    opus_head: Vec<u8>,
}

impl MicrophoneTrack {
    /// A browser's microphone as a live call records it.
    fn browser() -> MicrophoneTrack {
        MicrophoneTrack {
            sample_rate: OPUS_CLOCK_RATE as u32,
            channels: 1,
            opus_head: opus_head(),
        }
    }
}

/// A WebM file open for frames: libwebm's segment and the tracks it declared.
struct Muxer {
    path: PathBuf,
    segment: Segment<BufWriter<File>>,
    audio: AudioTrack,
    video: Option<VideoTrack>,
}

impl Muxer {
    /// Declares the tracks at the start of `file` (which is `path`). Seekable file mode, so
    /// [`finish`](Self::finish) can go back and write the duration, the sizes and the cues.
    fn start(path: &Path, file: File, layout: &TrackLayout) -> Result<Muxer, RecordingError> {
        let muxer_error = |operation| RecordingError::Muxer {
            path: path.to_owned(),
            operation,
        };
        let writer = Writer::new(BufWriter::new(file));
        let builder = SegmentBuilder::new(writer)
            .and_then(|builder| builder.set_mode(SegmentMode::File))
            .and_then(|builder| builder.set_writing_app("viva"))
            .map_err(|_| muxer_error("start the file"))?;
        let (builder, video) = if let Some((width, height)) = layout.camera {
            let (builder, track) = builder
                .add_video_track(width, height, VideoCodecId::VP8, None)
                .map_err(|_| muxer_error("add the camera track"))?;
            (builder, Some(track))
        } else {
            (builder, None)
        };
        let microphone = &layout.microphone;
        let (builder, audio) = builder
            .add_audio_track(
                microphone.sample_rate,
                microphone.channels,
                AudioCodecId::Opus,
                None,
            )
            .map_err(|_| muxer_error("add the microphone track"))?;
        let builder = builder
            .set_codec_private(audio, &microphone.opus_head)
            .map_err(|_| muxer_error("describe the microphone track"))?;
        Ok(Muxer {
            path: path.to_owned(),
            segment: builder.build(),
            audio,
            video,
        })
    }

    /// Writes one frame at `position` on the recording's timeline. Returns `false` (and
    /// writes nothing) for a camera frame when the file has no camera track.
    fn add_frame(
        &mut self,
        kind: FrameKind,
        data: &[u8],
        position: Duration,
    ) -> Result<bool, RecordingError> {
        let (track, keyframe) = match (kind, self.video) {
            (FrameKind::Audio, _) => (u64::from(self.audio), true),
            (FrameKind::Video { keyframe }, Some(video)) => (u64::from(video), keyframe),
            (FrameKind::Video { .. }, None) => return Ok(false),
        };
        self.segment
            .add_frame(track, data, position.as_nanos() as u64, keyframe)
            .map_err(|_| RecordingError::Muxer {
                path: self.path.clone(),
                operation: "add a frame",
            })?;
        Ok(true)
    }

    /// Writes the index (duration, sizes, cues) and waits until the file is on disk.
    fn finish(self) -> Result<(), RecordingError> {
        let Muxer { path, segment, .. } = self;
        let writer = segment.finalize(None).map_err(|_| RecordingError::Muxer {
            path: path.clone(),
            operation: "write the index at the end of the file",
        })?;
        writer
            .into_inner()
            .into_inner()
            .map_err(|err| err.into_error())
            .and_then(|file| file.sync_all())
            .map_err(|source| RecordingError::Io {
                action: "write the recording",
                path,
                source,
            })
    }
}

enum State {
    /// Frames are collected until the tracks' parameters are known.
    Waiting {
        file: File,
    },
    Writing(Muxer),
    Finished,
}

/// A WebM file being written during a call.
pub(crate) struct CallRecording {
    path: PathBuf,
    camera: CameraTrack,
    state: State,
    origin: Option<Instant>,
    audio_clock: Option<TrackClock>,
    video_clock: Option<TrackClock>,
    held: BinaryHeap<Reverse<HeldFrame>>,
    arrivals: u64,
    newest: Duration,
    last_written: Duration,
    write_failures: u64,
}

impl CallRecording {
    /// Creates (truncates) the file; frames go in as they arrive.
    pub fn create(path: &Path, camera: CameraTrack) -> std::io::Result<Self> {
        let file = File::create(path)?;
        Ok(CallRecording {
            path: path.to_owned(),
            camera,
            state: State::Waiting { file },
            origin: None,
            audio_clock: None,
            video_clock: None,
            held: BinaryHeap::new(),
            arrivals: 0,
            newest: Duration::ZERO,
            last_written: Duration::ZERO,
            write_failures: 0,
        })
    }

    /// Adds one Opus packet from the candidate's microphone.
    pub fn add_audio(&mut self, rtp_timestamp: u32, arrival: Instant, packet: &[u8]) {
        if packet.is_empty() {
            return;
        }
        let offset = self.offset(arrival);
        let position = self
            .audio_clock
            .get_or_insert_with(|| TrackClock::new(rtp_timestamp, OPUS_CLOCK_RATE, offset))
            .position(rtp_timestamp);
        self.hold(position, FrameKind::Audio, packet.to_vec());
    }

    /// Adds one VP8 frame from the candidate's camera.
    pub fn add_video(&mut self, frame: Vp8Frame, arrival: Instant) {
        if self.camera != CameraTrack::Vp8 {
            return;
        }
        let offset = self.offset(arrival);
        let position = self
            .video_clock
            .get_or_insert_with(|| TrackClock::new(frame.rtp_timestamp, VP8_CLOCK_RATE, offset))
            .position(frame.rtp_timestamp);
        let kind = FrameKind::Video {
            keyframe: frame.keyframe,
        };
        self.hold(position, kind, frame.data);
    }

    /// Writes everything still held and the index (cues, duration). A call with no media at
    /// all leaves no file, since a WebM file needs at least one frame.
    pub fn finish(&mut self) -> Result<(), RecordingError> {
        if let Err(err) = self.pump(true) {
            // Close the file properly even if some frames could not be written.
            self.note_failure(&err);
        }
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Waiting { file } => {
                drop(file);
                tracing::warn!(path = %self.path.display(), "no media reached the recording; removing the empty file");
                std::fs::remove_file(&self.path).map_err(|source| RecordingError::Io {
                    action: "remove the empty recording",
                    path: self.path.clone(),
                    source,
                })
            }
            State::Writing(muxer) => muxer.finish(),
            State::Finished => Ok(()),
        }
    }

    fn offset(&mut self, arrival: Instant) -> Duration {
        let origin = *self.origin.get_or_insert(arrival);
        arrival.saturating_duration_since(origin)
    }

    fn hold(&mut self, position: Duration, kind: FrameKind, data: Vec<u8>) {
        if matches!(self.state, State::Finished) {
            return;
        }
        self.arrivals += 1;
        self.newest = self.newest.max(position);
        self.held.push(Reverse(HeldFrame {
            position,
            arrival_order: self.arrivals,
            kind,
            data,
        }));
        if let Err(err) = self.pump(false) {
            self.note_failure(&err);
        }
    }

    /// Starts the file once the tracks are known, then writes the frames old enough to be in
    /// order (all of them when `everything`).
    fn pump(&mut self, everything: bool) -> Result<(), RecordingError> {
        if let State::Waiting { .. } = self.state {
            let Some(camera_size) = self.camera_track(everything) else {
                return Ok(());
            };
            let State::Waiting { file } = std::mem::replace(&mut self.state, State::Finished)
            else {
                return Ok(());
            };
            let layout = TrackLayout {
                camera: camera_size,
                microphone: MicrophoneTrack::browser(),
            };
            self.state = State::Writing(Muxer::start(&self.path, file, &layout)?);
        }
        let State::Writing(muxer) = &mut self.state else {
            return Ok(());
        };
        while let Some(Reverse(oldest)) = self.held.peek() {
            if !everything && oldest.position + INTERLEAVE_HOLD > self.newest {
                break;
            }
            let Some(Reverse(frame)) = self.held.pop() else {
                break;
            };
            // WebM needs non-decreasing timestamps across tracks; a frame that arrives later
            // than the hold allows is placed at the current end rather than dropped.
            let position = frame.position.max(self.last_written);
            if muxer.add_frame(frame.kind, &frame.data, position)? {
                self.last_written = position;
            }
        }
        Ok(())
    }

    /// The camera track to declare: `None` to keep waiting for the first key frame (which
    /// carries the picture size), `Some(None)` for an audio-only file, `Some(Some(size))` for
    /// a file with the camera.
    fn camera_track(&self, everything: bool) -> Option<Option<(u32, u32)>> {
        if self.held.is_empty() {
            return None;
        }
        if self.camera == CameraTrack::None {
            return Some(None);
        }
        let mut video = self
            .held
            .iter()
            .filter_map(|Reverse(frame)| match frame.kind {
                FrameKind::Video { keyframe } => Some((frame.position, keyframe, &frame.data)),
                FrameKind::Audio => None,
            });
        let first_keyframe = video
            .clone()
            .filter(|(_, keyframe, _)| *keyframe)
            .min_by_key(|(position, _, _)| *position)
            .and_then(|(_, _, data)| vp8_size(data));
        if first_keyframe.is_some() {
            return Some(first_keyframe);
        }
        let oldest = self.held.peek().map(|Reverse(frame)| frame.position)?;
        if everything || self.newest.saturating_sub(oldest) >= FIRST_KEYFRAME_WAIT {
            // The call ended or the wait is over: a camera track only if the camera sent
            // anything at all. (With a camera track, libwebm holds audio back until video
            // arrives, so an empty camera track would keep the file from being written.)
            return Some(video.next().map(|_| FALLBACK_SIZE));
        }
        None
    }

    fn note_failure(&mut self, err: &RecordingError) {
        self.write_failures += 1;
        // The first failure explains; the rest would only repeat it 50 times a second.
        if self.write_failures == 1 {
            tracing::error!(%err, "the call recording is failing; the call goes on without it");
        }
    }
}

/// Picture size from a VP8 key frame.
fn vp8_size(data: &[u8]) -> Option<(u32, u32)> {
    Vp8Frame {
        data: data.to_vec(),
        keyframe: true,
        rtp_timestamp: 0,
    }
    .dimensions()
}

/// The Opus identification header (RFC 7845 section 5.1) WebM keeps as the track's codec
/// private data: mono, no pre-skip (the packets are the browser's, starting mid-stream), 48 kHz.
fn opus_head() -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.push(1); // version
    head.push(1); // channels
    head.extend_from_slice(&0u16.to_le_bytes()); // pre-skip
    head.extend_from_slice(&48_000u32.to_le_bytes()); // input sample rate
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // channel mapping family: mono/stereo
    head
}

impl Drop for CallRecording {
    fn drop(&mut self) {
        // Normally finished by the call's shutdown; this covers an early exit so the file is
        // still playable.
        if !matches!(self.state, State::Finished)
            && let Err(err) = self.finish()
        {
            tracing::warn!(%err, "could not finish the call recording");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use viva_media::OpusEncoder;
    use viva_test_support::scratch_dir;
    use viva_test_support::video::probe;

    /// Feeds `seconds` of 20 ms Opus packets arriving in real-time order, each pair of
    /// neighbours swapped (jitter), starting at RTP timestamp `first`.
    fn feed_speech(recording: &mut CallRecording, start: Instant, first: u32, seconds: u32) {
        let mut encoder = OpusEncoder::new().unwrap();
        let packets: Vec<(u32, Vec<u8>)> = (0..seconds * 50)
            .map(|index| {
                let frame: Vec<f32> = (0..960)
                    .map(|n| 0.3 * ((index * 960 + n) as f32 * 0.06).sin())
                    .collect();
                (
                    first.wrapping_add(index * 960),
                    encoder.encode(&frame).unwrap(),
                )
            })
            .collect();
        for (index, pair) in packets.chunks(2).enumerate() {
            for (timestamp, packet) in pair.iter().rev() {
                let arrival = start + Duration::from_millis(40 * index as u64 + 25);
                recording.add_audio(*timestamp, arrival, packet);
            }
        }
    }

    #[test]
    fn an_audio_recording_is_playable_and_lasts_the_call() {
        let scratch = scratch_dir("webrtc-audio");
        let path = scratch.path().join("call.webm");
        let mut recording = CallRecording::create(&path, CameraTrack::None).unwrap();
        // The RTP clock wraps during the call.
        feed_speech(&mut recording, Instant::now(), u32::MAX - 48_000, 3);
        recording.finish().unwrap();
        let probe = probe(&path);
        assert_eq!(probe.codecs(), ["opus"]);
        assert!((2.9..3.1).contains(&probe.duration), "{probe:?}");
    }

    #[test]
    fn a_camera_that_never_sends_does_not_hold_the_audio_back() {
        let scratch = scratch_dir("webrtc-silent-camera");
        let path = scratch.path().join("call.webm");
        let mut recording = CallRecording::create(&path, CameraTrack::Vp8).unwrap();
        feed_speech(&mut recording, Instant::now(), 0, 15);
        // Written as the call goes: after the key frame wait, most of the audio is on disk.
        let written = std::fs::metadata(&path).unwrap().len();
        assert!(
            written > 10_000,
            "only {written} bytes on disk during the call"
        );
        recording.finish().unwrap();
        let probe = probe(&path);
        assert_eq!(probe.codecs(), ["opus"]);
        assert!((14.9..15.1).contains(&probe.duration), "{probe:?}");
    }

    #[test]
    fn a_call_without_media_leaves_no_file() {
        let scratch = scratch_dir("webrtc-empty");
        let path = scratch.path().join("call.webm");
        let mut recording = CallRecording::create(&path, CameraTrack::Vp8).unwrap();
        assert!(path.exists());
        recording.finish().unwrap();
        assert!(!path.exists());
        // Finishing twice (close after a failure) changes nothing.
        recording.finish().unwrap();
    }

    #[test]
    fn track_clock_unwraps_and_offsets() {
        let mut clock = TrackClock::new(u32::MAX - 959, 48_000, Duration::from_millis(100));
        assert_eq!(clock.position(u32::MAX - 959), Duration::from_millis(100));
        assert_eq!(clock.position(0), Duration::from_millis(120));
        assert_eq!(clock.position(960), Duration::from_millis(140));
        // A reordered older packet maps before the newest one.
        assert_eq!(clock.position(0), Duration::from_millis(120));
        // Before the first packet: clamped at the start of the file.
        let mut clock = TrackClock::new(48_000, 48_000, Duration::ZERO);
        assert_eq!(clock.position(0), Duration::ZERO);
    }

    #[test]
    fn opus_head_is_the_rfc_7845_layout() {
        let head = opus_head();
        assert_eq!(head.len(), 19);
        assert_eq!(&head[..8], b"OpusHead");
        assert_eq!(head[9], 1);
        assert_eq!(
            u32::from_le_bytes([head[12], head[13], head[14], head[15]]),
            48_000
        );
    }
}
