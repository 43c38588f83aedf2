//! How long the interviewer took to answer, step by step, for one candidate turn, and who
//! watches it as the call goes.

use std::time::Duration;

use serde::Serialize;

/// Watches a call's timing as it happens, for an operator's metrics: times only, never words
/// or audio. The unit type watches nothing.
pub trait CallObserver: Send + Sync {
    /// A candidate turn was answered, or overtaken by the candidate speaking again.
    fn turn_answered(&self, latency: &TurnLatency);
    /// The interviewer's audio ran dry mid-line for `gap` (synthesis slower than playback):
    /// the candidate heard a hole.
    fn audio_gap(&self, gap: Duration);
}

impl CallObserver for () {
    fn turn_answered(&self, _: &TurnLatency) {}
    fn audio_gap(&self, _: Duration) {}
}

/// The moments of one response on the call clock, in milliseconds.
///
/// Speech recognition runs during the candidate's pauses, so `transcribed_ms` can come before
/// `end_of_turn_ms`: the end-of-turn wait then hides the recognition time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TurnLatency {
    /// The candidate turn this answers (1 for the first).
    pub turn: u32,
    /// The real end of the candidate's voice: the detector's last voiced frame drawn back
    /// over the voice's fading tail ([`viva_speech::Talkspurt`]), so the response time reads
    /// what the candidate hears, not 100-300 ms less.
    pub speech_end_ms: u64,
    /// When the silence was judged to end the turn.
    pub end_of_turn_ms: u64,
    /// When the transcript of the whole turn was ready.
    pub transcribed_ms: u64,
    /// When the interviewer decided what to say; `None` if the candidate spoke again first.
    pub decided_ms: Option<u64>,
    /// When the first interviewer audio was sent; `None` if the reply was never played.
    pub first_audio_ms: Option<u64>,
}

impl TurnLatency {
    /// End of candidate speech to the first interviewer audio: the silence the candidate
    /// hears.
    pub fn response_ms(&self) -> Option<u64> {
        self.first_audio_ms
            .map(|first| first.saturating_sub(self.speech_end_ms))
    }

    /// End of candidate speech to the end-of-turn decision.
    pub fn end_of_turn_wait_ms(&self) -> u64 {
        self.end_of_turn_ms.saturating_sub(self.speech_end_ms)
    }
}

/// Nearest-rank percentile (`p` in 0..=100) of the response times that exist; `None` when no
/// turn got a reply.
pub fn response_percentile(latencies: &[TurnLatency], p: u32) -> Option<u64> {
    let mut times: Vec<u64> = latencies
        .iter()
        .filter_map(TurnLatency::response_ms)
        .collect();
    if times.is_empty() {
        return None;
    }
    times.sort_unstable();
    let rank = (p.min(100) as usize * times.len()).div_ceil(100).max(1);
    Some(times[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency(speech_end_ms: u64, first: Option<u64>) -> TurnLatency {
        TurnLatency {
            turn: 1,
            speech_end_ms,
            end_of_turn_ms: speech_end_ms + 700,
            transcribed_ms: speech_end_ms + 500,
            decided_ms: Some(speech_end_ms + 701),
            first_audio_ms: first,
        }
    }

    #[test]
    fn percentiles_use_nearest_rank_over_answered_turns() {
        let turns = [
            latency(1000, Some(1700)),
            latency(5000, Some(5900)),
            latency(9000, None),
            latency(12_000, Some(12_750)),
        ];
        assert_eq!(turns[0].response_ms(), Some(700));
        assert_eq!(turns[0].end_of_turn_wait_ms(), 700);
        assert_eq!(response_percentile(&turns, 50), Some(750));
        assert_eq!(response_percentile(&turns, 95), Some(900));
        assert_eq!(response_percentile(&turns, 0), Some(700));
        assert_eq!(response_percentile(&turns[2..3], 50), None);
    }
}
