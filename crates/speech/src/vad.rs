//! Voice activity detection: the gate that keeps silence and noise away from whisper.
//!
//! Whisper invents text ("thanks for watching") when it is fed silence or noise, so nothing
//! reaches it unless this detector has heard speech. The detector is earshot's small neural
//! model: 16 kHz mono audio in 256-sample (16 ms) frames, one score in `[0, 1]` per frame.
//!
//! Two shapes of use:
//! - [`VoiceActivity`] scores a live stream chunk by chunk (the call loop builds end-of-turn
//!   detection on it);
//! - [`find_speech`] finds the speech regions of a whole recording (file transcription).
//!
//! ```
//! use viva_speech::{find_speech, SpeechRegionConfig};
//! let silence = vec![0.0f32; 16_000];
//! assert!(find_speech(&silence, &SpeechRegionConfig::default()).is_empty());
//! ```

use std::ops::Range;

/// Sample rate the detector (and whisper) works at.
pub const VAD_SAMPLE_RATE: u32 = 16_000;
/// Samples per detector frame (16 ms at 16 kHz).
pub const VAD_FRAME_SAMPLES: usize = 256;
/// Duration of one detector frame in milliseconds.
pub const VAD_FRAME_MS: u32 = 16;

/// Streaming voice activity scores for one audio stream (one per call direction).
pub struct VoiceActivity {
    detector: Box<earshot::Detector>,
    pending: Vec<f32>,
}

impl Default for VoiceActivity {
    fn default() -> Self {
        Self::new()
    }
}

impl VoiceActivity {
    /// A detector with fresh state.
    pub fn new() -> Self {
        Self {
            detector: earshot::Detector::default_boxed(),
            pending: Vec::with_capacity(VAD_FRAME_SAMPLES),
        }
    }

    /// Feeds 16 kHz mono samples of any length and appends one score per completed 16 ms
    /// frame to `scores`. Leftover samples wait for the next call.
    pub fn push(&mut self, samples: &[f32], scores: &mut Vec<f32>) {
        let mut rest = samples;
        if !self.pending.is_empty() {
            let need = VAD_FRAME_SAMPLES - self.pending.len();
            let take = need.min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == VAD_FRAME_SAMPLES {
                let frame = std::mem::take(&mut self.pending);
                scores.push(self.score(&frame));
                self.pending = frame;
                self.pending.clear();
            }
        }
        let mut frames = rest.chunks_exact(VAD_FRAME_SAMPLES);
        for frame in &mut frames {
            scores.push(self.score(frame));
        }
        self.pending.extend_from_slice(frames.remainder());
    }

    /// Forgets all history (e.g. after the interviewer finished speaking).
    pub fn reset(&mut self) {
        self.detector.reset();
        self.pending.clear();
    }

    fn score(&mut self, frame: &[f32]) -> f32 {
        // earshot expects samples in [-1, 1]; clipped input from a hot microphone may exceed it.
        let mut clamped = [0.0f32; VAD_FRAME_SAMPLES];
        for (dst, src) in clamped.iter_mut().zip(frame) {
            *dst = src.clamp(-1.0, 1.0);
        }
        self.detector.predict_f32(&clamped)
    }
}

/// A talkspurt's loudness is the level held over this many detector frames (48 ms), so a
/// click or a pop cannot set the level the voice is compared with.
const LOUDNESS_FRAMES: usize = 3;
/// A voiced frame this much quieter than the talkspurt's loudest stretch is the voice fading
/// out (or the room), not speech: the detector's score decays for 100-300 ms after the voice
/// stops and calls such frames voiced. The load client marks the end of speech the same way.
const FADING_DB: f32 = 30.0;
/// A voiced frame less than this much above the background (the line's or the room's noise)
/// is the noise the detector's score decays into, not speech. On a noisy line the fading
/// rule alone keeps the noise: speech 30 dB over its peak is beneath the hiss.
const ABOVE_BACKGROUND_DB: f32 = 10.0;
/// The background is the level this share of the talkspurt's frames (voiced and not) stays
/// under: its quiet gaps between words...
const BACKGROUND_QUANTILE: f32 = 0.1;
/// ...once there are this many (512 ms): in a short "yes" every frame is speech.
const BACKGROUND_MIN_FRAMES: u32 = 32;
/// However loud the background, a frame this close to the loudest stretch is speech: a fast
/// talker's gaps are speech too.
const SPEECH_DB: f32 = 20.0;
/// Levels are counted in 1 dB steps from this floor (the level of digital silence) to 0 dBFS.
const QUIETEST_DB: f32 = -120.0;
const LEVEL_STEPS: usize = 121;
/// The real end of speech is never put further back than this before the last voiced frame:
/// the detector does not hold on longer, so an earlier mark would be a misjudged level.
const MAX_HANGOVER_FRAMES: u64 = 25;

/// The loudness of a stretch of samples in dB relative to full scale (`-120` for silence).
pub fn level_db(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return -120.0;
    }
    let power = samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32;
    10.0 * power.max(1e-12).log10()
}

/// Where one talkspurt's speech really ended, as opposed to where the detector stopped calling
/// frames voiced: the end of the last voiced frame still within `FADING_DB` (30 dB) of the
/// talkspurt's loudest stretch and `ABOVE_BACKGROUND_DB` (10 dB) over its background, with
/// the frame before it. A lone frame over that line is a bump of room noise in the voice's
/// tail, not a word: on a phone line the detector hears a quiet speaker's room as voice for
/// 200 ms more, and one 16 ms bump there put the end 110 ms after the word (a fading word, a
/// sound resuming, holds for two frames). Fed every frame in order from the first voiced one,
/// with its loudness.
///
/// ```
/// use viva_speech::Talkspurt;
/// // Speech at -20 dBFS on a line hissing at -50, then 100 ms of its fading tail, which the
/// // detector still calls voice.
/// let mut talkspurt = Talkspurt::new(1, -20.0);
/// for end in 2..=40 {
///     if end % 5 == 0 {
///         talkspurt.unvoiced(-50.0); // the gaps between words
///     } else {
///         talkspurt.voiced(end, -20.0);
///     }
/// }
/// for end in 41..=46 {
///     talkspurt.voiced(end, -45.0);
/// }
/// assert_eq!(talkspurt.last_voiced(), 46);
/// assert_eq!(talkspurt.speech_end(1), 39);
/// ```
#[derive(Debug, Clone)]
pub struct Talkspurt {
    /// Levels of the last few voiced frames, for the level held over them.
    recent: [f32; LOUDNESS_FRAMES],
    frames: u64,
    loudest_db: f32,
    /// How many frames were heard at each level, for the background.
    levels: [u32; LEVEL_STEPS],
    heard: u32,
    /// Whether the last frame heard was speech by its level.
    last_was_speech: bool,
    speech_end: u64,
    last_voiced: u64,
}

impl Talkspurt {
    /// A talkspurt whose first voiced frame ends at `end` (any position unit, e.g. samples)
    /// with loudness `level_db`.
    pub fn new(end: u64, level_db: f32) -> Self {
        let mut talkspurt = Self {
            recent: [0.0; LOUDNESS_FRAMES],
            frames: 0,
            loudest_db: f32::NEG_INFINITY,
            levels: [0; LEVEL_STEPS],
            heard: 0,
            last_was_speech: true,
            speech_end: end,
            last_voiced: end,
        };
        talkspurt.voiced(end, level_db);
        talkspurt
    }

    /// A voiced frame ending at `end`, `level_db` loud.
    pub fn voiced(&mut self, end: u64, level_db: f32) {
        self.count(level_db);
        self.recent[(self.frames % LOUDNESS_FRAMES as u64) as usize] = level_db;
        self.frames += 1;
        if self.frames >= LOUDNESS_FRAMES as u64 {
            let held = self.recent.iter().copied().fold(f32::INFINITY, f32::min);
            self.loudest_db = self.loudest_db.max(held);
        }
        let above_background =
            (self.background_db() + ABOVE_BACKGROUND_DB).min(self.loudest_db - SPEECH_DB);
        let speech = level_db >= self.loudest_db - FADING_DB && level_db >= above_background;
        if speech && self.last_was_speech {
            self.speech_end = end;
        }
        self.last_was_speech = speech;
        self.last_voiced = self.last_voiced.max(end);
    }

    /// A frame the detector did not call voiced, `level_db` loud: it tells the background.
    pub fn unvoiced(&mut self, level_db: f32) {
        self.count(level_db);
        self.last_was_speech = false;
    }

    fn count(&mut self, level_db: f32) {
        let step = (level_db.clamp(QUIETEST_DB, 0.0) - QUIETEST_DB).round() as usize;
        self.levels[step] += 1;
        self.heard += 1;
    }

    /// The level [`BACKGROUND_QUANTILE`] of the frames heard so far stay under (digital
    /// silence until enough were heard).
    fn background_db(&self) -> f32 {
        if self.heard < BACKGROUND_MIN_FRAMES {
            return QUIETEST_DB;
        }
        let rank = (self.heard as f32 * BACKGROUND_QUANTILE) as u32;
        let mut below = 0;
        for (step, &count) in self.levels.iter().enumerate() {
            below += count;
            if below > rank {
                return QUIETEST_DB + step as f32;
            }
        }
        QUIETEST_DB
    }

    /// The end of speech by the level alone: the last voiced frame loud enough to be speech,
    /// however long the detector held on after it.
    pub fn level_end(&self) -> u64 {
        self.speech_end
    }

    /// The end of the last voiced frame (the detector's own end of speech).
    pub fn last_voiced(&self) -> u64 {
        self.last_voiced
    }

    /// The real end of speech, `frame` being the length of a detector frame in the
    /// positions' unit.
    pub fn speech_end(&self, frame: u64) -> u64 {
        self.speech_end
            .max(self.last_voiced.saturating_sub(MAX_HANGOVER_FRAMES * frame))
    }
}

/// How [`find_speech`] turns frame scores into regions.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechRegionConfig {
    /// Frame score at or above which a frame counts as speech.
    pub threshold: f32,
    /// Regions with less speech than this are dropped as clicks or noise bursts.
    pub min_speech_ms: u32,
    /// Pauses shorter than this stay inside one region, so whisper sees whole sentences.
    pub max_pause_ms: u32,
    /// Audio kept before and after each region so word onsets and endings are not clipped.
    pub padding_ms: u32,
    /// Regions longer than this are split (whisper's window is 30 s).
    pub max_region_ms: u32,
}

impl Default for SpeechRegionConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            min_speech_ms: 160,
            max_pause_ms: 800,
            padding_ms: 240,
            max_region_ms: 25_000,
        }
    }
}

/// Finds the speech in a whole 16 kHz mono recording, as sample ranges in order.
pub fn find_speech(samples: &[f32], config: &SpeechRegionConfig) -> Vec<Range<usize>> {
    let mut scores = Vec::with_capacity(samples.len() / VAD_FRAME_SAMPLES + 1);
    VoiceActivity::new().push(samples, &mut scores);
    regions_from_scores(&scores, config)
        .into_iter()
        .map(|frames| {
            let start = (frames.start * VAD_FRAME_SAMPLES).min(samples.len());
            let end = (frames.end * VAD_FRAME_SAMPLES).min(samples.len());
            start..end
        })
        .filter(|r| !r.is_empty())
        .collect()
}

/// Groups per-frame scores into padded frame ranges (pure, so it is tested without audio).
fn regions_from_scores(scores: &[f32], config: &SpeechRegionConfig) -> Vec<Range<usize>> {
    let frames_for = |ms: u32| (ms / VAD_FRAME_MS) as usize;
    let max_pause = frames_for(config.max_pause_ms);
    let min_speech = frames_for(config.min_speech_ms).max(1);
    let padding = frames_for(config.padding_ms);
    let max_len = frames_for(config.max_region_ms).max(1);

    // Runs of speech frames, with short pauses bridged; each run remembers its voiced count.
    let mut runs: Vec<(Range<usize>, usize)> = Vec::new();
    for (i, &score) in scores.iter().enumerate() {
        if score < config.threshold {
            continue;
        }
        match runs.last_mut() {
            Some((run, voiced)) if i - run.end <= max_pause => {
                run.end = i + 1;
                *voiced += 1;
            }
            _ => runs.push((i..i + 1, 1)),
        }
    }

    let mut regions: Vec<Range<usize>> = Vec::new();
    for (run, voiced) in runs {
        if voiced < min_speech {
            continue;
        }
        let start = run.start.saturating_sub(padding);
        let end = (run.end + padding).min(scores.len());
        // Padding can make neighbours touch; keep regions disjoint.
        let start = regions.last().map_or(start, |prev| start.max(prev.end));
        let mut from = start;
        while end - from > max_len {
            let cut = quietest_frame(scores, from + max_len / 2, from + max_len);
            regions.push(from..cut);
            from = cut;
        }
        regions.push(from..end);
    }
    regions
}

/// The frame with the lowest score in `range` (the best place to cut a long region).
fn quietest_frame(scores: &[f32], from: usize, to: usize) -> usize {
    (from..to)
        .min_by(|&a, &b| scores[a].total_cmp(&scores[b]))
        .unwrap_or(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(pattern: &[(f32, usize)]) -> Vec<f32> {
        pattern
            .iter()
            .flat_map(|&(s, n)| std::iter::repeat_n(s, n))
            .collect()
    }

    #[test]
    fn bridges_short_pauses_and_pads() {
        let cfg = SpeechRegionConfig {
            padding_ms: 32,
            ..Default::default()
        };
        // 20 speech frames, a 10-frame (160 ms) pause, 20 speech frames, long silence.
        let s = scores(&[(0.0, 50), (0.9, 20), (0.1, 10), (0.9, 20), (0.0, 100)]);
        assert_eq!(regions_from_scores(&s, &cfg), vec![48..102]);
    }

    #[test]
    fn long_pause_splits_regions() {
        let cfg = SpeechRegionConfig {
            padding_ms: 0,
            ..Default::default()
        };
        let s = scores(&[(0.9, 20), (0.0, 100), (0.9, 20)]);
        assert_eq!(regions_from_scores(&s, &cfg), vec![0..20, 120..140]);
    }

    #[test]
    fn drops_clicks() {
        let s = scores(&[(0.0, 50), (0.9, 3), (0.0, 50)]);
        assert!(regions_from_scores(&s, &SpeechRegionConfig::default()).is_empty());
    }

    #[test]
    fn splits_overlong_regions_at_quiet_frames() {
        let cfg = SpeechRegionConfig {
            padding_ms: 0,
            max_region_ms: 1600, // 100 frames
            ..Default::default()
        };
        let mut s = scores(&[(0.9, 250)]);
        s[70] = 0.6; // the quietest frame in the second half of the first window
        let regions = regions_from_scores(&s, &cfg);
        assert_eq!(regions.first(), Some(&(0..70)));
        assert!(regions.iter().all(|r| r.len() <= 100));
        assert_eq!(regions.last().map(|r| r.end), Some(250));
        assert!(regions.windows(2).all(|w| w[0].end == w[1].start));
    }

    #[test]
    fn silence_and_noise_have_no_speech() {
        let cfg = SpeechRegionConfig::default();
        assert!(find_speech(&vec![0.0; 32_000], &cfg).is_empty());
        // Deterministic white noise at a moderate level.
        let mut state = 0x2545_f491_u32;
        let noise: Vec<f32> = (0..48_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32 - 0.5) * 0.2
            })
            .collect();
        assert!(find_speech(&noise, &cfg).is_empty());
    }

    #[test]
    fn the_fading_tail_is_not_speech() {
        // 16-sample frames: a voice at -20 dB, a click at 0 dB, then a tail the detector
        // still calls voiced, fading from -40 to -60 dB.
        let mut talkspurt = Talkspurt::new(16, -20.0);
        for end in (32..=320).step_by(16) {
            talkspurt.voiced(end, -20.0);
        }
        talkspurt.voiced(336, 0.0);
        talkspurt.voiced(352, -20.0);
        for (i, level) in [-40.0, -45.0, -52.0, -60.0].into_iter().enumerate() {
            talkspurt.voiced(368 + 16 * i as u64, level);
        }
        assert_eq!(talkspurt.last_voiced(), 416);
        assert_eq!(
            talkspurt.speech_end(16),
            384,
            "the click did not raise the bar"
        );
    }

    #[test]
    fn the_background_counts_only_once_enough_was_heard_and_never_silences_speech() {
        // A short "yes" at -20 dB (10 frames) fading to -35: too little to tell a background
        // from, so only the fading rule applies and the fade is still speech.
        let mut yes = Talkspurt::new(1, -20.0);
        for end in 2..=10 {
            yes.voiced(end, -20.0);
        }
        yes.voiced(11, -35.0);
        assert_eq!(yes.speech_end(1), 11);

        // A fast talker: 2 s of speech whose quietest tenth is -28 dB, the loudest -10. The
        // background rule would put the bar at -18; it stays at -30 (20 dB under the
        // loudest), so the quieter syllables at the end still count.
        let mut fast = Talkspurt::new(1, -10.0);
        for end in 2..=125 {
            fast.voiced(end, if end % 5 == 0 { -28.0 } else { -10.0 });
        }
        fast.voiced(126, -29.0);
        fast.voiced(127, -45.0);
        assert_eq!(fast.speech_end(1), 126);
    }

    #[test]
    fn a_lone_bump_of_room_noise_after_the_voice_is_not_speech() {
        // A quiet reader at -22 dB over a room at -45 (its tenth of quietest frames), then
        // the room, which the detector still calls voice, with a 16 ms bump to -41: within
        // 20 dB of the loudest, so as loud as speech may be.
        let mut talkspurt = Talkspurt::new(1, -22.0);
        for end in 2..=100 {
            if end % 4 == 2 {
                talkspurt.unvoiced(-45.0);
            } else {
                talkspurt.voiced(end, -22.0);
            }
        }
        for (end, level) in (101..).zip([-38.0, -44.0, -41.0, -46.0, -41.5, -47.0]) {
            talkspurt.voiced(end, level);
        }
        assert_eq!(
            talkspurt.speech_end(1),
            101,
            "the bumps at 103 and 105 are noise"
        );
        // A word that comes back holds for two frames: its second ends the speech.
        talkspurt.voiced(107, -36.0);
        talkspurt.voiced(108, -37.0);
        talkspurt.voiced(109, -46.0);
        assert_eq!(talkspurt.speech_end(1), 108);
    }

    #[test]
    fn the_end_is_kept_near_the_last_voiced_frame() {
        // A loud start (held long enough to set the bar), then a long quiet stretch the
        // detector still calls voiced.
        let mut talkspurt = Talkspurt::new(16, 0.0);
        talkspurt.voiced(32, 0.0);
        talkspurt.voiced(48, 0.0);
        for end in (64..=1600).step_by(16) {
            talkspurt.voiced(end, -70.0);
        }
        assert_eq!(talkspurt.speech_end(16), 1600 - MAX_HANGOVER_FRAMES * 16);
        assert_eq!(level_db(&[]), -120.0);
        assert!((level_db(&[0.1; 64]) + 20.0).abs() < 1e-3);
    }

    #[test]
    fn streaming_scores_do_not_depend_on_chunking() {
        let tone: Vec<f32> = (0..8000).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
        let mut whole = Vec::new();
        VoiceActivity::new().push(&tone, &mut whole);
        let mut chunked = Vec::new();
        let mut vad = VoiceActivity::new();
        for chunk in tone.chunks(100) {
            vad.push(chunk, &mut chunked);
        }
        assert_eq!(whole.len(), 8000 / VAD_FRAME_SAMPLES);
        assert_eq!(whole, chunked);
    }
}
