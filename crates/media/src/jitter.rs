//! A jitter buffer for the 20 ms audio packets of a phone call's RTP stream.

use std::collections::BTreeMap;

/// Duration of one frame, in and out.
const FRAME_MS: u64 = 20;
/// Concealment repeats the last frame fading to silence over this many frames (60 ms): long
/// enough to bridge a lost packet smoothly, short enough not to buzz through a loss burst.
const FADE_FRAMES: usize = 3;
/// After this many frames (1 s) with nothing to play the stream counts as stalled and output
/// stops until the next packet.
const STALL_FRAMES: u32 = 50;
/// The buffer's depth is judged by its minimum over this many frames (1 s), so jitter does not
/// look like excess delay.
const DEPTH_WINDOW_FRAMES: u32 = 50;
/// A packet further behind the newest one than this is not a straggler but a sign the sender
/// restarted its sequence numbers (RFC 3550 appendix A.1 uses the same idea).
const MAX_MISORDER: i64 = 100;
/// A packet further ahead of the newest one than this (5 s) likewise; it also bounds how many
/// frames the buffer holds when its owner stops popping.
const MAX_DROPOUT: i64 = 250;
/// How many played positions are remembered to tell a duplicate from a late packet.
const HISTORY: i64 = 128;

/// Reorders 20 ms audio packets by RTP sequence number (wrapping), drops duplicates and late
/// packets, holds a playout delay, and conceals losses so the output is a continuous stream of
/// 20 ms frames. Time is passed in (milliseconds on any monotonic clock), never read, so the
/// owner decides the clock and tests are deterministic.
///
/// Clock drift and network hiccups are absorbed: when the buffer runs dry, concealment is
/// inserted without skipping a packet (the delay grows; if the packets turn out lost, the
/// concealment stands in for them), and when the buffer has held more than the playout delay
/// for a whole second, the excess is discarded over the next second, quiet frames first. A jump
/// in sequence numbers (a new source after a re-INVITE) is followed after two consecutive
/// packets.
#[derive(Debug)]
pub struct JitterBuffer {
    frame_samples: usize,
    playout_delay_ms: u64,
    /// Frames expected in the buffer when one is due, at the playout delay.
    target_depth: i64,
    /// Received frames not yet played, by extended (unwrapped) sequence number.
    frames: BTreeMap<i64, Vec<f32>>,
    /// The newest extended sequence number accepted: the reference for unwrapping.
    newest: Option<i64>,
    /// The sequence number to play next; `None` until playout starts.
    next: Option<i64>,
    /// Playout (re)starts at the earliest buffered frame rather than at `next`.
    resync: bool,
    /// When the next frame is due; `None` before the first packet and while stalled.
    next_due_ms: Option<u64>,
    /// The latest time `pop_due` was called with: every slot up to it has been handed out.
    last_pop_ms: Option<u64>,
    /// After a dry spell, playout resumes at this time (the returning packet's arrival plus
    /// the playout delay); slots before it are concealed.
    resume_ms: Option<u64>,
    /// Bit `i` set: position `next - 1 - i` was received (played or discarded).
    history: u128,
    /// A packet that looked like a sequence restart, kept until the next packet confirms it.
    probation: Option<(i64, Vec<f32>, u64)>,
    /// Subtracted from incoming sequence numbers: after a restart the new source's numbers
    /// are mapped to continue the old ones.
    sequence_offset: u16,
    last_frame: Vec<f32>,
    /// Consecutive concealment frames so far (drives the fade).
    concealed_run: usize,
    /// Consecutive frames due with nothing buffered.
    dry_frames: u32,
    depth_window_frames: u32,
    depth_window_min: i64,
    /// Frames to discard because the delay stayed above the playout delay for a whole window.
    discards_wanted: i64,
    /// Frames played since a discard was wanted without finding a quiet one.
    discard_waited: i64,
    /// After how many frames without a quiet one a discard is forced: the wanted discards
    /// are spread over one window.
    discard_patience: i64,
    /// Running mean energy per sample of played frames, to recognise quiet ones.
    mean_power: f32,
    stats: JitterStats,
}

/// What a [`JitterBuffer`] has seen and done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets handed to [`JitterBuffer::push`], including late and duplicate ones.
    pub received: u64,
    /// Packets that arrived after their frame had been played (or concealed), and dropped.
    pub late: u64,
    /// Packets whose sequence number was already buffered or played, and dropped.
    pub duplicate: u64,
    /// Concealment frames output in place of missing packets.
    pub concealed: u64,
    /// Received packets discarded to bring the delay back to the playout delay (sender clock
    /// faster than ours, or a burst after a network hiccup).
    pub discarded: u64,
}

impl JitterBuffer {
    /// A buffer for frames of `sample_rate / 50` samples (20 ms) that plays each packet
    /// `playout_delay_ms` after the first packet's arrival schedule (40-100 ms suits most
    /// networks).
    pub fn new(sample_rate: u32, playout_delay_ms: u32) -> Self {
        let playout_delay_ms = u64::from(playout_delay_ms);
        JitterBuffer {
            frame_samples: (sample_rate / 50) as usize,
            playout_delay_ms,
            // The frame due now plus those that arrived during the delay.
            target_depth: (playout_delay_ms / FRAME_MS) as i64 + 1,
            frames: BTreeMap::new(),
            newest: None,
            next: None,
            resync: false,
            next_due_ms: None,
            last_pop_ms: None,
            resume_ms: None,
            history: 0,
            probation: None,
            sequence_offset: 0,
            last_frame: Vec::new(),
            concealed_run: 0,
            dry_frames: 0,
            depth_window_frames: 0,
            depth_window_min: i64::MAX,
            discards_wanted: 0,
            discard_waited: 0,
            discard_patience: 0,
            mean_power: 0.0,
            stats: JitterStats::default(),
        }
    }

    /// Adds the packet with RTP `sequence`, whose decoded `samples` should be one 20 ms frame
    /// (longer packets are truncated, shorter ones padded with silence), arriving at `now_ms`.
    pub fn push(&mut self, sequence: u16, mut samples: Vec<f32>, now_ms: u64) {
        self.stats.received += 1;
        samples.resize(self.frame_samples, 0.0);
        // An oversized packet must not keep its allocation for as long as it is buffered.
        samples.shrink_to_fit();
        let sequence = sequence.wrapping_sub(self.sequence_offset);
        let Some(newest) = self.newest else {
            self.accept(i64::from(sequence), samples, now_ms);
            return;
        };
        // The nearest extended number with these low 16 bits: wrap-around just continues.
        let sequence = newest + i64::from(sequence.wrapping_sub(newest as u16) as i16);
        let stalled = self.next_due_ms.is_none();
        let ahead = sequence - newest;
        if ahead < -MAX_MISORDER || (ahead > MAX_DROPOUT && !stalled) {
            self.probe_restart(sequence, samples, now_ms);
            return;
        }
        if let Some(next) = self.next
            && sequence < next
        {
            let behind = next - sequence;
            if behind <= HISTORY && self.history >> (behind - 1) & 1 == 1 {
                self.stats.duplicate += 1;
            } else {
                self.stats.late += 1;
            }
            return;
        }
        if self.frames.contains_key(&sequence) {
            self.stats.duplicate += 1;
            return;
        }
        self.accept(sequence, samples, now_ms);
    }

    /// The frames due at `now_ms` (call every 20 ms or so): real audio, or concealment (the
    /// last frame repeated and fading out over 60 ms, then silence) where a packet is missing.
    /// Empty before the first packet arrives and after a second with nothing to play (the
    /// stream stalled: on hold, silence suppression, or gone); the next packet restarts it.
    pub fn pop_due(&mut self, now_ms: u64) -> Vec<Vec<f32>> {
        let mut due = Vec::new();
        while let Some(due_ms) = self.next_due_ms
            && due_ms <= now_ms
        {
            match self.next_frame(due_ms) {
                Some(frame) => {
                    due.push(frame);
                    self.next_due_ms = Some(due_ms + FRAME_MS);
                }
                None => self.next_due_ms = None,
            }
        }
        self.last_pop_ms = Some(self.last_pop_ms.map_or(now_ms, |last| last.max(now_ms)));
        due
    }

    /// Counters since the buffer was created.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    fn accept(&mut self, sequence: i64, samples: Vec<f32>, now_ms: u64) {
        if self.probation.take().is_some() {
            // It was a straggler after all, and is dropped.
            self.stats.late += 1;
        }
        self.frames.insert(sequence, samples);
        if self.dry_frames as i64 >= self.target_depth
            && self.next == Some(sequence)
            && self.resume_ms.is_none()
        {
            // The packet awaited through a dry spell longer than the playout delay (a pause in
            // the sender's talk, or packets held up in the network): it gets the playout delay
            // afresh, like a first packet, or the talk spurt would play with no room for
            // jitter. (After lost packets the old schedule still holds and stays.)
            self.resume_ms = Some(now_ms + self.playout_delay_ms);
        }
        self.newest = Some(self.newest.map_or(sequence, |newest| newest.max(sequence)));
        if self.next_due_ms.is_none() {
            // First packet, or the first after a stall: give the packets behind it the playout
            // delay to arrive, then start from the earliest one. Never in a slot already popped,
            // so output stays paced in real time whatever the arrival times claim.
            let start = now_ms + self.playout_delay_ms;
            self.next_due_ms = Some(self.last_pop_ms.map_or(start, |last| start.max(last + 1)));
            self.resync = true;
        }
        // Only an owner that stopped popping lets the buffer grow this far.
        while self.frames.len() as i64 > MAX_DROPOUT {
            self.frames.pop_first();
            self.stats.discarded += 1;
        }
    }

    /// A packet far from the expected sequence numbers: a straggler, or the first packet of a
    /// restarted sequence. Two in a row confirm a restart.
    fn probe_restart(&mut self, sequence: i64, samples: Vec<f32>, now_ms: u64) {
        match (self.probation.take(), self.newest) {
            (Some((previous, previous_samples, arrived_ms)), Some(newest))
                if previous + 1 == sequence =>
            {
                // Renumber the new source to follow on from the old one, so what is still
                // buffered of the old one plays first and nothing else needs resetting.
                let shift = previous - (newest + 1);
                self.sequence_offset = self.sequence_offset.wrapping_add(shift as u16);
                self.accept(newest + 1, previous_samples, arrived_ms);
                self.accept(newest + 2, samples, now_ms);
            }
            (unconfirmed, _) => {
                if unconfirmed.is_some() {
                    self.stats.late += 1;
                }
                self.probation = Some((sequence, samples, now_ms));
            }
        }
    }

    /// The frame for the 20 ms slot due at `due_ms`, or `None` when the stream has stalled.
    fn next_frame(&mut self, due_ms: u64) -> Option<Vec<f32>> {
        if let Some(resume_ms) = self.resume_ms {
            if due_ms < resume_ms {
                return self.dry();
            }
            self.resume_ms = None;
            // Depth measured during the dry spell says nothing about the delay from now on.
            self.depth_window_frames = 0;
            self.depth_window_min = i64::MAX;
        }
        if self.resync
            && let Some((&first, _)) = self.frames.first_key_value()
        {
            if let Some(next) = self.next {
                self.advance_history(first - next, false);
            }
            self.next = Some(first);
            self.resync = false;
        }
        let Some(mut next) = self.next else {
            return self.dry();
        };
        self.track_depth(next);

        if !self.frames.contains_key(&next) {
            let Some((&first, _)) = self.frames.first_key_value() else {
                return self.dry();
            };
            // A gap with later packets waiting. The frames concealed while the buffer was dry
            // stood for the first packets of the gap, which were lost rather than delayed.
            let credit = i64::from(std::mem::take(&mut self.dry_frames)).min(first - next);
            self.advance_history(credit, false);
            next += credit;
            if next < first && self.frames.len() as i64 <= self.target_depth + 1 {
                // This packet is lost (or later than the delay allows).
                self.advance_history(1, false);
                self.next = Some(next + 1);
                return Some(self.conceal());
            }
            // More is waiting than the delay needs (after a loss burst, or a jump in sequence
            // numbers): resume at the next packet instead of concealing the rest of the gap.
            self.advance_history(first - next, false);
            next = first;
        }
        let mut frame = self.frames.remove(&next)?;
        if self.discards_wanted > 0 && self.frames.contains_key(&(next + 1)) {
            // Prefer a quiet frame (a pause between words), but keep to the window.
            if power(&frame) <= self.mean_power / 2.0
                || self.discard_waited >= self.discard_patience
            {
                self.stats.discarded += 1;
                self.advance_history(1, true);
                next += 1;
                frame = self.frames.remove(&next)?;
                self.discards_wanted -= 1;
                self.discard_waited = 0;
            } else {
                self.discard_waited += 1;
            }
        }
        self.advance_history(1, true);
        self.next = Some(next + 1);
        self.dry_frames = 0;
        self.concealed_run = 0;
        let frame_power = power(&frame);
        if frame_power.is_finite() {
            self.mean_power += (frame_power - self.mean_power) / 16.0;
        }
        self.last_frame.clone_from(&frame);
        Some(frame)
    }

    /// Nothing buffered: the sender paused, the network held packets back, or the sender's
    /// clock is slower than ours. Conceal without skipping, so the packet still plays when it
    /// comes, until a second has passed: then the stream has stalled.
    fn dry(&mut self) -> Option<Vec<f32>> {
        self.dry_frames += 1;
        if self.dry_frames > STALL_FRAMES {
            self.dry_frames = 0;
            self.resume_ms = None;
            self.concealed_run = 0;
            self.last_frame.clear();
            self.resync = true;
            return None;
        }
        Some(self.conceal())
    }

    /// The last frame again, fading linearly to silence over [`FADE_FRAMES`], then silence.
    fn conceal(&mut self) -> Vec<f32> {
        self.stats.concealed += 1;
        let fade_len = (FADE_FRAMES * self.frame_samples) as f32;
        let start = self.concealed_run * self.frame_samples;
        self.concealed_run += 1;
        if self.last_frame.len() != self.frame_samples {
            return vec![0.0; self.frame_samples];
        }
        self.last_frame
            .iter()
            .enumerate()
            .map(|(i, &sample)| sample * (1.0 - (start + i) as f32 / fade_len).max(0.0))
            .collect()
    }

    /// Watches the buffer's minimum depth over each window; a window that never came down to
    /// the target depth asks for the excess to be discarded (the minimum already allows for
    /// the jitter seen).
    fn track_depth(&mut self, next: i64) {
        let depth = self.newest.map_or(0, |newest| (newest - next + 1).max(0));
        self.depth_window_min = self.depth_window_min.min(depth);
        self.depth_window_frames += 1;
        if self.depth_window_frames >= DEPTH_WINDOW_FRAMES {
            self.discards_wanted = (self.depth_window_min - self.target_depth).max(0);
            self.discard_patience = i64::from(DEPTH_WINDOW_FRAMES) / self.discards_wanted.max(1);
            self.depth_window_frames = 0;
            self.depth_window_min = i64::MAX;
        }
    }

    /// Moves the played-history window forward by `positions`, the last one `received`.
    fn advance_history(&mut self, positions: i64, received: bool) {
        if positions <= 0 {
            return;
        }
        self.history = if positions >= HISTORY {
            0
        } else {
            self.history << positions
        };
        if received {
            self.history |= 1;
        }
    }
}

/// Mean energy per sample.
fn power(frame: &[f32]) -> f32 {
    if frame.is_empty() {
        return 0.0;
    }
    frame.iter().map(|s| s * s).sum::<f32>() / frame.len() as f32
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const RATE: u32 = 8_000;
    const FRAME: usize = 160;

    /// A frame that carries its sequence number in its first two samples and ends in 0.5, so
    /// the output can be traced back to packets (concealment never ends in 0.5: it fades).
    fn frame(sequence: u16) -> Vec<f32> {
        let mut samples = vec![0.5; FRAME];
        samples[0] = f32::from(sequence >> 8) / 256.0;
        samples[1] = f32::from(sequence & 0xff) / 256.0;
        samples
    }

    /// The packet a frame came from, or `None` for concealment.
    fn source(samples: &[f32]) -> Option<u16> {
        assert_eq!(samples.len(), FRAME, "every frame is 20 ms");
        (samples[FRAME - 1] == 0.5)
            .then(|| ((samples[0] * 256.0) as u16) << 8 | (samples[1] * 256.0) as u16)
    }

    /// One run: packets `(arrival_ms, sequence)` pushed at their arrival times, `pop_due` every
    /// 20 ms (at 3, 23, 43, ... ms) until `until_ms`.
    struct Run {
        /// `(tick_ms, packet or concealment)` for every frame output.
        frames: Vec<(u64, Option<u16>)>,
        /// Ticks that returned nothing.
        silent_ticks: Vec<u64>,
        /// Arrival time of each packet (the last copy for duplicates).
        arrivals: HashMap<u16, u64>,
        stats: JitterStats,
    }

    impl Run {
        fn new(delay_ms: u32, mut packets: Vec<(u64, u16)>, until_ms: u64) -> Run {
            packets.sort_by_key(|&(arrival, _)| arrival);
            let mut buffer = JitterBuffer::new(RATE, delay_ms);
            let mut run = Run {
                frames: Vec::new(),
                silent_ticks: Vec::new(),
                arrivals: HashMap::new(),
                stats: JitterStats::default(),
            };
            let mut pending = packets.into_iter().peekable();
            for tick in (3..until_ms).step_by(20) {
                while let Some(&(arrival, sequence)) = pending.peek()
                    && arrival <= tick
                {
                    buffer.push(sequence, frame(sequence), arrival);
                    run.arrivals.entry(sequence).or_insert(arrival);
                    pending.next();
                }
                let due = buffer.pop_due(tick);
                if due.is_empty() {
                    run.silent_ticks.push(tick);
                }
                run.frames
                    .extend(due.iter().map(|samples| (tick, source(samples))));
            }
            run.stats = buffer.stats();
            run
        }

        fn played(&self) -> Vec<u16> {
            self.frames
                .iter()
                .filter_map(|&(_, packet)| packet)
                .collect()
        }

        /// Concealment frames up to the last real one (after it, the end of the stream fades).
        fn concealed(&self) -> usize {
            let last_real = self.frames.iter().rposition(|(_, packet)| packet.is_some());
            self.frames[..last_real.map_or(0, |i| i + 1)]
                .iter()
                .filter(|(_, packet)| packet.is_none())
                .count()
        }

        /// The longest time from a packet's arrival to its playout, in ms.
        fn max_latency(&self) -> u64 {
            self.max_latency_between(0, u64::MAX)
        }

        /// Like [`Run::max_latency`], for packets played from `from_ms` until `to_ms`.
        fn max_latency_between(&self, from_ms: u64, to_ms: u64) -> u64 {
            self.frames
                .iter()
                .filter(|&&(tick, _)| (from_ms..to_ms).contains(&tick))
                .filter_map(|&(tick, packet)| packet.map(|seq| tick - self.arrivals[&seq]))
                .max()
                .unwrap_or(0)
        }
    }

    /// Packets `first..first+count` (wrapping), sent every 20 ms from `start_ms`, each arriving
    /// after `delay(i)` ms.
    fn stream(
        first: u16,
        count: u16,
        start_ms: u64,
        delay: impl Fn(u16) -> u64,
    ) -> Vec<(u64, u16)> {
        (0..count)
            .map(|i| {
                (
                    start_ms + u64::from(i) * 20 + delay(i),
                    first.wrapping_add(i),
                )
            })
            .collect()
    }

    fn consecutive(first: u16, count: usize) -> Vec<u16> {
        (0..count).map(|i| first.wrapping_add(i as u16)).collect()
    }

    /// Deterministic pseudo-random jitter in `0..max_ms`.
    fn jitter(i: u16, max_ms: u64) -> u64 {
        let mut x = u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5851_F42D;
        x ^= x >> 29;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        (x >> 32) % max_ms.max(1)
    }

    #[test]
    fn plays_a_steady_stream_after_the_playout_delay() {
        let mut buffer = JitterBuffer::new(RATE, 60);
        assert!(
            buffer.pop_due(0).is_empty(),
            "nothing before the first packet"
        );
        assert!(buffer.pop_due(1_000).is_empty());
        let run = Run::new(60, stream(100, 100, 10, |_| 0), 2_100);
        assert_eq!(run.played(), consecutive(100, 100));
        assert_eq!(run.concealed(), 0);
        // First packet at 10 ms, due at 70: the first tick at or after it is 83.
        assert_eq!(run.frames[0].0, 83);
        assert!(run.max_latency() <= 60 + 20, "{}", run.max_latency());
        let stats = run.stats;
        assert_eq!(
            (stats.received, stats.late, stats.duplicate, stats.discarded),
            (100, 0, 0, 0)
        );
    }

    #[test]
    fn reorders_within_the_delay_and_drops_duplicates() {
        // Up to 50 ms of jitter against a 60 ms delay, and every packet sent twice, the copy 0
        // to 150 ms later (after its frame played, for many).
        let mut packets = stream(0, 200, 0, |i| jitter(i, 50));
        packets.extend(stream(0, 200, 0, |i| jitter(i, 50) + jitter(i ^ 0x55, 150)));
        let run = Run::new(60, packets, 4_400);
        assert_eq!(run.played(), consecutive(0, 200));
        assert_eq!(run.concealed(), 0, "{:?}", run.stats);
        assert_eq!(run.stats.received, 400);
        assert_eq!(run.stats.duplicate, 200);
        assert_eq!(run.stats.late, 0);
        // Adjacent pairs swapped.
        let swapped = stream(0, 100, 0, |i| if i % 2 == 0 { 25 } else { 0 });
        let run = Run::new(40, swapped, 2_400);
        assert_eq!(run.played(), consecutive(0, 100));
        assert_eq!(run.concealed(), 0);
    }

    #[test]
    fn conceals_losses_with_a_fade_then_silence() {
        let mut buffer = JitterBuffer::new(RATE, 40);
        let loud = vec![0.8f32; FRAME];
        for sequence in 0..10u16 {
            if !(3..9).contains(&sequence) {
                buffer.push(sequence, loud.clone(), u64::from(sequence) * 20);
            }
        }
        let frames = buffer.pop_due(40 + 9 * 20);
        assert_eq!(frames.len(), 10);
        assert!(frames[..3].iter().all(|f| f == &loud));
        assert_eq!(frames[9], loud);
        // The fade: the last frame repeated at falling level, reaching silence after 60 ms.
        let peaks: Vec<f32> = frames[3..9]
            .iter()
            .map(|f| f.iter().fold(0.0f32, |m, s| m.max(s.abs())))
            .collect();
        let levels: Vec<f32> = frames[3..9]
            .iter()
            .map(|f| f.iter().map(|s| s.abs()).sum::<f32>() / FRAME as f32)
            .collect();
        assert!(peaks[0] <= 0.8 && levels[0] > 0.6, "{levels:?}");
        assert!(
            levels.windows(2).all(|w| w[1] < w[0] || w[1] == 0.0),
            "{levels:?}"
        );
        assert!(frames[3][FRAME - 1] < frames[3][0], "fades within a frame");
        assert!(frames[6..9].iter().all(|f| f.iter().all(|&s| s == 0.0)));
        assert_eq!(buffer.stats().concealed, 6);
    }

    #[test]
    fn loss_bursts_keep_the_output_continuous_and_on_time() {
        let lost = |s: &u16| (50..56).contains(s) || *s == 100 || (150..165).contains(s);
        let packets: Vec<(u64, u16)> = stream(0, 300, 0, |i| jitter(i, 30))
            .into_iter()
            .filter(|(_, s)| !lost(s))
            .collect();
        let run = Run::new(60, packets, 6_200);
        let expected: Vec<u16> = (0..300).filter(|s| !lost(s)).collect();
        assert_eq!(run.played(), expected);
        // One concealment frame per lost packet, in the right places.
        assert_eq!(run.concealed(), 6 + 1 + 15, "{:?}", run.stats);
        let outputs: Vec<Option<u16>> = run.frames.iter().map(|&(_, p)| p).take(300).collect();
        for (i, output) in outputs.iter().enumerate() {
            let s = i as u16;
            assert_eq!(*output, (!lost(&s)).then_some(s), "slot {i}");
        }
        // The delay did not creep up across the bursts.
        let before = run.max_latency_between(0, 1_000);
        assert!(before <= 60 + 30 + 20, "{before}");
        assert!(
            run.max_latency() <= before,
            "{} > {before}",
            run.max_latency()
        );
        assert_eq!(
            run.silent_ticks
                .iter()
                .filter(|&&t| t > 100 && t < 6_000)
                .count(),
            0
        );
    }

    #[test]
    fn drops_packets_that_come_after_their_turn() {
        // Packet 30 is held back 200 ms, 31 300 ms: their slots are concealed, they are dropped.
        let packets = stream(0, 100, 0, |i| match i {
            30 => 200,
            31 => 300,
            _ => 0,
        });
        let run = Run::new(60, packets, 2_300);
        let expected: Vec<u16> = (0..100).filter(|s| !(30..32).contains(s)).collect();
        assert_eq!(run.played(), expected);
        assert_eq!(run.concealed(), 2);
        assert_eq!(run.stats.late, 2);
        assert_eq!(run.stats.duplicate, 0);
    }

    #[test]
    fn follows_sequence_numbers_across_the_wrap() {
        let run = Run::new(60, stream(65_500, 100, 0, |i| jitter(i, 40)), 2_200);
        assert_eq!(run.played(), consecutive(65_500, 100));
        assert_eq!(run.concealed(), 0);
        // A duplicate from before the wrap, after it, is still a duplicate, not a restart.
        let mut packets = stream(65_530, 20, 0, |_| 0);
        packets.push((250, 65_530));
        packets.push((260, 65_535));
        let run = Run::new(40, packets, 600);
        assert_eq!(run.played(), consecutive(65_530, 20));
        assert_eq!(run.stats.duplicate, 2);
    }

    #[test]
    fn absorbs_clock_drift_both_ways() {
        for (interval_us, name) in [(20_200u64, "sender 1% slow"), (19_800, "sender 1% fast")] {
            let packets: Vec<(u64, u16)> = (0..3_000u16)
                .map(|i| (u64::from(i) * interval_us / 1_000 + jitter(i, 20), i))
                .collect();
            let end = 3_000 * interval_us / 1_000 + 200;
            let run = Run::new(60, packets, end);
            let played = run.played();
            let stats = run.stats;
            eprintln!("{name}: {stats:?}, max latency {} ms", run.max_latency());
            assert!(played.windows(2).all(|w| w[0] < w[1]), "{name}: in order");
            assert_eq!(stats.late, 0, "{name}");
            // Every packet is played or deliberately discarded.
            assert_eq!(played.len() as u64 + stats.discarded, 3_000, "{name}");
            // 60 s at 1% is 30 frames of drift, to be made up one way or the other.
            if interval_us > 20_000 {
                assert!((25..=45).contains(&stats.concealed), "{name}: {stats:?}");
                assert!(stats.discarded <= 5, "{name}: {stats:?}");
            } else {
                assert!((25..=40).contains(&stats.discarded), "{name}: {stats:?}");
                assert!(stats.concealed <= 5, "{name}: {stats:?}");
            }
            assert!(
                run.max_latency() <= 60 + 80,
                "{name}: {} ms",
                run.max_latency()
            );
        }
    }

    #[test]
    fn a_network_hiccup_delays_then_recovers() {
        // Packets 100-114 are held up and arrive together 300 ms late: none is lost, the delay
        // grows, and discarding quiet frames brings it back within seconds.
        let packets = stream(0, 1_000, 0, |i| match i {
            100..115 => 300 - (u64::from(i) - 100) * 20,
            _ => jitter(i, 10),
        });
        let run = Run::new(60, packets, 20_300);
        let played = run.played();
        assert!(played.windows(2).all(|w| w[0] < w[1]));
        assert!(
            (100..115).all(|s| played.contains(&s)),
            "the held packets play"
        );
        assert_eq!(run.stats.late, 0);
        let before = run.max_latency_between(0, 2_000);
        let after = |from_ms: u64| run.max_latency_between(from_ms, u64::MAX);
        let recovery: Vec<u64> = (3..10).map(|s| after(s * 1_000)).collect();
        eprintln!(
            "hiccup: {:?}, latency {before} ms before, after 3..10 s: {recovery:?}",
            run.stats
        );
        assert!(after(2_500) > 200, "the hiccup added delay");
        // Discarding starts after a full second at the higher delay and takes about another.
        assert!(after(6_000) <= before + 20, "{recovery:?}, was {before} ms");
    }

    #[test]
    fn an_outage_costs_the_lost_packets_and_no_delay() {
        // 300 ms of packets lost outright: concealed, and playout continues at the old delay.
        let packets: Vec<(u64, u16)> = stream(0, 300, 0, |i| jitter(i, 10))
            .into_iter()
            .filter(|&(_, s)| !(100..115).contains(&s))
            .collect();
        let run = Run::new(60, packets, 6_200);
        assert_eq!(run.played().len(), 285);
        assert_eq!(run.concealed(), 15, "{:?}", run.stats);
        assert!(run.max_latency() <= 60 + 20, "{}", run.max_latency());
    }

    #[test]
    fn a_pause_in_the_talk_gets_the_delay_back_for_the_next_spurt() {
        // Silence suppression: the sender stops for 400 ms and carries on with the next
        // sequence number. With 20 ms of jitter the second spurt must again have the full
        // playout delay, or it would break up.
        let mut packets = stream(0, 50, 0, |i| jitter(i, 20));
        packets.extend(stream(50, 50, 1_400, |i| jitter(i + 50, 20)));
        let run = Run::new(60, packets, 3_000);
        assert_eq!(run.played(), consecutive(0, 100));
        assert_eq!(run.stats.late, 0);
        let first_of_spurt = run.frames.iter().position(|f| f.1 == Some(50)).unwrap();
        let last = run.frames.iter().position(|f| f.1 == Some(99)).unwrap();
        assert!(
            run.frames[first_of_spurt..=last]
                .iter()
                .all(|f| f.1.is_some()),
            "the second spurt plays without gaps"
        );
        // The delay, the jitter of the spurt's first packet, and up to 20 ms each for the
        // slot grid and the pop grid: not the 400 ms of the pause.
        let latency = run.max_latency_between(1_400, 3_000);
        assert!((60..=60 + 20 + 40).contains(&latency), "{latency} ms");
    }

    #[test]
    fn stalls_when_the_stream_stops_and_restarts_with_it() {
        // 2 s of audio, 3 s of nothing (on hold), then the stream resumes, once with the next
        // sequence numbers and once from a new random base (a new source).
        for resume_at in [100u16, 40_000] {
            let mut packets = stream(0, 100, 0, |_| 0);
            packets.extend(stream(resume_at, 100, 5_000, |_| 0));
            let run = Run::new(60, packets, 7_300);
            let mut expected = consecutive(0, 100);
            expected.extend(consecutive(resume_at, 100));
            assert_eq!(run.played(), expected, "resume at {resume_at}");
            // 1 s of concealment (fade, then silence), then no output until the stream returns.
            assert_eq!(run.concealed(), 50, "{:?}", run.stats);
            assert!(
                run.silent_ticks
                    .iter()
                    .any(|&t| (3_200..5_000).contains(&t))
            );
            assert!(
                !run.silent_ticks
                    .iter()
                    .any(|&t| (5_100..6_900).contains(&t))
            );
            // Back at the playout delay after the restart, not at a delay grown by the pause.
            assert!(run.max_latency() <= 60 + 20, "{}", run.max_latency());
        }
    }

    #[test]
    fn follows_a_new_sequence_base_mid_stream() {
        // The source changes (a re-INVITE) without a pause: after one packet of probation the
        // new numbers play; a lone stray far away is dropped.
        let mut packets = stream(1_000, 100, 0, |_| 0);
        packets.push((1_010, 9_000));
        packets.extend(stream(30_000, 100, 2_000, |_| 0));
        let run = Run::new(60, packets, 4_200);
        let played = run.played();
        assert_eq!(played[..100], consecutive(1_000, 100)[..]);
        assert_eq!(played[100..], consecutive(30_000, 100)[..]);
        assert!(!played.contains(&9_000));
        assert_eq!(run.stats.late, 1, "the stray");
        assert!(run.concealed() <= 2, "{:?}", run.stats);
    }

    #[test]
    fn output_stays_paced_when_a_restart_is_confirmed_late() {
        // A stalled stream; a packet from a new source arrives at 5 000 ms, the owner pops at
        // 5 100 and 5 120, the second packet confirming the new source arrives at 5 130. The
        // schedule cannot start in slots already handed out.
        let mut buffer = JitterBuffer::new(RATE, 40);
        for (i, sequence) in (0..10u16).enumerate() {
            buffer.push(sequence, frame(sequence), i as u64 * 20);
        }
        assert_eq!(
            buffer.pop_due(3_000).len(),
            9 + 1 + 50,
            "played, then concealed to a stall"
        );
        assert!(buffer.pop_due(3_020).is_empty());
        buffer.push(50_000, frame(50_000), 5_000);
        assert!(buffer.pop_due(5_100).is_empty());
        assert!(buffer.pop_due(5_120).is_empty());
        buffer.push(50_001, frame(50_001), 5_130);
        let frames = buffer.pop_due(5_140);
        assert_eq!(frames.len(), 1, "one 20 ms slot since the last pop");
        assert_eq!(source(&frames[0]), Some(50_000));
        assert_eq!(source(&buffer.pop_due(5_160)[0]), Some(50_001));
    }

    #[test]
    fn odd_packet_sizes_and_clock_jumps_stay_safe() {
        let mut buffer = JitterBuffer::new(RATE, 40);
        buffer.push(1, vec![0.25; 80], 0);
        buffer.push(2, vec![0.25; 400], 20);
        buffer.push(3, Vec::new(), 40);
        let frames = buffer.pop_due(100);
        assert_eq!(frames.len(), 4);
        assert!(frames.iter().all(|f| f.len() == FRAME));
        assert_eq!(frames[0][79..81], [0.25, 0.0], "padded with silence");
        assert!(frames[1].iter().all(|&s| s == 0.25), "truncated");
        // Time going backwards gives nothing; a jump far ahead ends in a stall, not a flood.
        assert!(buffer.pop_due(50).is_empty());
        let flood = buffer.pop_due(10_000_000);
        assert!(flood.len() <= 60, "{}", flood.len());
        assert!(buffer.pop_due(20_000_000).is_empty());
        // An owner that never pops cannot make it grow without bound.
        let mut buffer = JitterBuffer::new(RATE, 40);
        for i in 0..2_000u16 {
            buffer.push(i, vec![0.1; FRAME], 0);
        }
        assert!(buffer.frames.len() <= MAX_DROPOUT as usize);
        // Garbage samples pass through without upsetting the buffer.
        let mut buffer = JitterBuffer::new(RATE, 0);
        buffer.push(0, vec![f32::NAN; FRAME], 0);
        buffer.push(1, vec![f32::INFINITY; FRAME], 20);
        buffer.push(2, frame(2), 40);
        let frames = buffer.pop_due(40);
        assert_eq!(frames.len(), 3);
        assert_eq!(source(&frames[2]), Some(2));
        // A zero sample rate gives empty frames rather than a panic.
        let mut buffer = JitterBuffer::new(0, 40);
        buffer.push(7, vec![0.1; 10], 0);
        assert_eq!(buffer.pop_due(40), vec![Vec::<f32>::new()]);
    }
}
