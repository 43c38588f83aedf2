//! The `Call` port: what every transport turns its network call into.

use tokio::sync::mpsc;
use viva_media::PcmFrame;

/// Length of one outbound audio frame: the packet size of RTP telephony and WebRTC Opus.
pub const FRAME_MS: u32 = 20;

/// The sample rate of the phone network (G.711 over SIP, mu-law media streams).
pub const PHONE_RATE: u32 = 8_000;

/// Samples in one [`FRAME_MS`] frame at `rate` (160 at [`PHONE_RATE`]).
pub const fn frame_samples(rate: u32) -> usize {
    (rate as usize) * (FRAME_MS as usize) / 1000
}

/// A caller's audio that stops for longer than this is a hole, not jitter: transports fill a
/// shorter one with silence to keep the stream continuous; the conversation realigns a longer
/// one to its clock with silence.
pub const MAX_GAP_FILL: std::time::Duration = std::time::Duration::from_millis(200);

/// How many messages each direction of a [`Call::pair`] buffers: a second of 20 ms frames, so
/// a briefly busy transport or conversation loses nothing.
const CHANNEL_FRAMES: usize = 50;

/// What a transport delivers to the conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum CallInput {
    /// The caller's audio, mono, at any rate the transport has (8 kHz phone, 48 kHz WebRTC).
    ///
    /// Frames form one continuous stream: the transport conceals lost packets (silence or
    /// PLC). The conversation places the stream on the call clock by arrival time, so frame
    /// timestamps are not used; a stream that stalls for more than [`MAX_GAP_FILL`] is
    /// realigned with silence.
    Audio(PcmFrame),
    /// A DTMF key the caller pressed (`0-9`, `*`, `#`, `A-D`).
    Dtmf(char),
    /// The caller hung up or the connection died.
    HangUp,
}

/// What the conversation asks a transport to do.
///
/// Interviewer audio comes in talkspurts: [`CallOutput::Audio`] frames, then
/// [`CallOutput::EndOfSpeech`] (or [`CallOutput::ClearPlayback`] when the candidate cut in).
/// The next frame after either starts a new talkspurt (an RTP marker bit, a fresh mark):
/// transports never have to infer it from timestamps.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutput {
    /// One 20 ms frame of interviewer audio at [`Call::output_rate`], stamped with its place
    /// on the call clock. Frames are sent when they are due (paced in real time).
    Audio(PcmFrame),
    /// The interviewer stopped speaking after the last frame: a line ended, or it pauses
    /// while the rest of it is synthesized.
    EndOfSpeech,
    /// The candidate barged in: drop any interviewer audio still queued for playing. The
    /// talkspurt ends here.
    ClearPlayback,
    /// The interview is over: end the call.
    HangUp,
}

/// One live call as the conversation sees it, whatever network carries it.
///
/// A transport keeps the other ends of the two channels (see [`Call::pair`]): it sends
/// [`CallInput`]s and receives [`CallOutput`]s. Dropping the input sender counts as a hang-up.
#[derive(Debug)]
pub struct Call {
    /// Identifies the call in logs (the tracing span's `call_id`) and in storage.
    pub id: String,
    /// Caller audio and events, in order.
    pub inbound: mpsc::Receiver<CallInput>,
    /// Interviewer audio and commands, in order.
    pub outbound: mpsc::Sender<CallOutput>,
    /// Sample rate the transport wants interviewer audio at (a multiple of 50 Hz, so a 20 ms
    /// frame is a whole number of samples).
    pub output_rate: u32,
}

/// The transport's side of a [`Call`].
#[derive(Debug)]
pub struct CallPeer {
    /// Where the transport sends caller audio and events.
    pub inbound: mpsc::Sender<CallInput>,
    /// Where the transport receives interviewer audio and commands.
    pub outbound: mpsc::Receiver<CallOutput>,
}

impl Call {
    /// A call and the transport end that feeds it, connected by bounded channels.
    pub fn pair(id: impl Into<String>, output_rate: u32) -> (Call, CallPeer) {
        let (inbound_tx, inbound_rx) = mpsc::channel(CHANNEL_FRAMES);
        let (outbound_tx, outbound_rx) = mpsc::channel(CHANNEL_FRAMES);
        (
            Call {
                id: id.into(),
                inbound: inbound_rx,
                outbound: outbound_tx,
                output_rate,
            },
            CallPeer {
                inbound: inbound_tx,
                outbound: outbound_rx,
            },
        )
    }
}
