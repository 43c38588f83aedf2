//! What a caller's phone makes of the interviewer's audio as it arrives: it buffers a little,
//! then plays 20 ms per frame. A frame that arrives after the buffer ran dry left a hole the
//! caller heard (late audio); a hole of more than [`CUT_SHORT_GAP`] ended the reply for the
//! caller, who takes the turn, so the rest of the reply comes too late (a reply cut short).
//!
//! Pure arithmetic on arrival times (offsets from the start of a call), so it works the same
//! whether the server streams in real time or faster: audio sent ahead just waits in the
//! buffer, and the reply ends when the buffer has played out.

use std::time::Duration;

/// One `media` message of the interviewer: 20 ms of 8 kHz mu-law.
pub(super) const FRAME: Duration = Duration::from_millis(20);

/// What a phone (or a CPaaS in front of one) buffers before it starts playing a talkspurt,
/// so that ordinary network and scheduling jitter is not heard.
pub(super) const JITTER_BUFFER: Duration = Duration::from_millis(100);

/// Silence after which a caller takes the turn: the caller answers once the reply has played
/// out and this much silence followed, so audio after a longer hole is heard as a new reply,
/// over the caller's answer.
pub(super) const CUT_SHORT_GAP: Duration = Duration::from_secs(1);

/// The interviewer's audio of one reply, as played to the caller.
#[derive(Debug, Default, Clone)]
pub(super) struct Playout {
    /// Arrival of the first and of the latest frame.
    first: Option<Duration>,
    last: Option<Duration>,
    /// When what arrived so far has finished playing.
    playing_until: Option<Duration>,
    /// The next frame starts a new talkspurt (playback was cleared): no hole to count.
    restart: bool,
    frames: usize,
    /// Holes the caller heard, up to [`CUT_SHORT_GAP`] each.
    late: usize,
    /// Holes longer than [`CUT_SHORT_GAP`] followed by more of the reply.
    cut_short: usize,
}

impl Playout {
    /// A frame arrived at `at`.
    pub fn frame(&mut self, at: Duration) {
        self.frames += 1;
        self.first.get_or_insert(at);
        self.last = Some(at);
        let restart = std::mem::take(&mut self.restart);
        let until = match self.playing_until {
            Some(until) if at <= until => until,
            Some(until) if !restart => {
                if at - until > CUT_SHORT_GAP {
                    self.cut_short += 1;
                } else {
                    self.late += 1;
                }
                // The phone buffers again before it resumes.
                at + JITTER_BUFFER
            }
            _ => at + JITTER_BUFFER,
        };
        self.playing_until = Some(until + FRAME);
    }

    /// The server cleared playback at `at` (a barge-in): what is buffered is dropped.
    pub fn clear(&mut self, at: Duration) {
        if let Some(until) = &mut self.playing_until {
            *until = (*until).min(at);
            self.restart = true;
        }
    }

    /// When the audio received so far has finished playing; None before any arrived.
    pub fn ends_at(&self) -> Option<Duration> {
        self.playing_until
    }

    /// Whether the caller considers the reply over at `now`: it has played out and
    /// [`CUT_SHORT_GAP`] of silence followed.
    pub fn is_over(&self, now: Duration) -> bool {
        self.playing_until
            .is_some_and(|until| now >= until + CUT_SHORT_GAP)
    }

    pub fn first_frame(&self) -> Option<Duration> {
        self.first
    }

    pub fn frames(&self) -> usize {
        self.frames
    }

    /// From the first frame's arrival to the latest's: with [`frames`](Self::frames), how
    /// fast the server sends audio (real time: one frame per 20 ms).
    pub fn arrival_span(&self) -> Duration {
        match (self.first, self.last) {
            (Some(first), Some(last)) => last - first,
            _ => Duration::ZERO,
        }
    }

    /// The caller heard at least one hole in this reply.
    pub fn was_late(&self) -> bool {
        self.late > 0
    }

    /// Part of this reply came after the caller had taken the turn.
    pub fn was_cut_short(&self) -> bool {
        self.cut_short > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn play(arrivals: impl IntoIterator<Item = u64>) -> Playout {
        let mut playout = Playout::default();
        for at in arrivals {
            playout.frame(ms(at));
        }
        playout
    }

    #[test]
    fn a_real_time_stream_with_jitter_plays_without_holes() {
        // One frame every 20 ms, each up to 80 ms late: the buffer hides it.
        let playout = play((0..250).map(|n| 1_000 + n * 20 + (n * 37) % 80));
        assert!(!playout.was_late() && !playout.was_cut_short());
        assert_eq!(playout.frames(), 250);
        assert_eq!(playout.first_frame(), Some(ms(1_000)));
        assert_eq!(playout.arrival_span(), ms(249 * 20 + (249 * 37) % 80));
        // 250 frames of 20 ms starting after the buffer's 100 ms.
        assert_eq!(playout.ends_at(), Some(ms(1_000 + 100 + 5_000)));
    }

    #[test]
    fn audio_sent_faster_than_real_time_plays_out_later_than_it_arrived() {
        // Five seconds of audio arriving within 50 ms: the reply is over when it has played.
        let playout = play((0..250).map(|n| 2_000 + n / 5));
        assert!(!playout.was_late());
        assert_eq!(playout.arrival_span(), ms(49));
        assert_eq!(playout.ends_at(), Some(ms(2_000 + 100 + 5_000)));
        assert!(!playout.is_over(ms(7_100 + 999)));
        assert!(playout.is_over(ms(7_100 + 1_000)));
    }

    #[test]
    fn a_hole_after_playback_began_is_late_audio() {
        // 1 s of audio, then the next sentence 300 ms after the buffer ran dry.
        let first: Vec<u64> = (0..50).map(|n| n * 20).collect();
        let dry_at = 100 + 1_000;
        let mut playout = play(first);
        playout.frame(ms(dry_at + 300));
        assert!(playout.was_late());
        assert!(!playout.was_cut_short());
        assert_eq!(playout.ends_at(), Some(ms(dry_at + 300 + 100 + 20)));
    }

    #[test]
    fn a_hole_over_a_second_cuts_the_reply_short() {
        let mut playout = play((0..50).map(|n| n * 20));
        let dry_at = ms(1_100);
        assert!(playout.is_over(dry_at + CUT_SHORT_GAP));
        playout.frame(dry_at + CUT_SHORT_GAP + ms(1));
        assert!(playout.was_cut_short());
        assert!(!playout.was_late(), "a cut is counted once, as a cut");
    }

    #[test]
    fn nothing_heard_is_never_over() {
        let playout = Playout::default();
        assert_eq!(playout.ends_at(), None);
        assert!(!playout.is_over(ms(60_000)));
    }

    #[test]
    fn a_cleared_playback_stops_at_once_and_restarts_without_a_hole() {
        // 5 s of audio sent at once, cleared after 1 s: over 1 s after the clear.
        let mut playout = play((0..250).map(|_| 0));
        playout.clear(ms(1_000));
        assert_eq!(playout.ends_at(), Some(ms(1_000)));
        assert!(playout.is_over(ms(2_000)));
        // The interviewer answers the barge-in 600 ms later: a new talkspurt, not a hole.
        playout.frame(ms(1_600));
        assert!(!playout.was_late() && !playout.was_cut_short());
        assert_eq!(playout.ends_at(), Some(ms(1_600 + 100 + 20)));
    }
}
