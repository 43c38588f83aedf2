//! DTMF (touch-tone) keys, however a phone call carries them: RFC 4733 telephone-event RTP
//! payloads ([`TelephoneEvent`], [`TelephoneEventReceiver`]) or in-band tones in the audio
//! ([`InBandDetector`], [`tone`]).
//!
//! Keys are `char`s: `'0'`-`'9'`, `'*'`, `'#'` and `'A'`-`'D'`.

use std::collections::VecDeque;
use std::f32::consts::PI;

use crate::MediaError;

/// RFC 4733 event codes 0-15, in order.
const EVENT_KEYS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

/// The low ("row") frequencies of the keypad, in Hz.
const ROW_HZ: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// The high ("column") frequencies of the keypad, in Hz.
const COLUMN_HZ: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// The keypad: `KEYPAD[row][column]`.
const KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

fn event_code(key: char) -> Result<u8, MediaError> {
    EVENT_KEYS
        .iter()
        .position(|&k| k == key)
        .map(|code| code as u8)
        .ok_or_else(|| MediaError::InvalidDtmf {
            detail: format!("key {key:?}"),
        })
}

fn keypad_position(key: char) -> Result<(usize, usize), MediaError> {
    (0..16)
        .map(|i| (i / 4, i % 4))
        .find(|&(row, column)| KEYPAD[row][column] == key)
        .ok_or_else(|| MediaError::InvalidDtmf {
            detail: format!("key {key:?}"),
        })
}

/// One RFC 4733 telephone-event payload (4 bytes): which key, whether the event has ended, its
/// level and how long it has lasted so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The RFC 4733 event code, 0-15 (an index into `EVENT_KEYS`).
    event: u8,
    end: bool,
    volume: u8,
    duration: u16,
}

impl TelephoneEvent {
    /// An event for `key` with the end bit `end`, `volume` in -dBm0 (0-63) and `duration` in
    /// RTP timestamp units since the event began. Fails for keys other than 0-9, *, #, A-D and
    /// volumes above 63.
    pub fn new(key: char, end: bool, volume: u8, duration: u16) -> Result<Self, MediaError> {
        let event = event_code(key)?;
        if volume > 63 {
            return Err(MediaError::InvalidDtmf {
                detail: format!("volume {volume} (the field has 6 bits)"),
            });
        }
        Ok(TelephoneEvent {
            event,
            end,
            volume,
            duration,
        })
    }

    /// Parses a telephone-event payload. Events 0-15 map to `'0'`-`'9'`, `'*'`, `'#'`,
    /// `'A'`-`'D'`; other events (flash, fax tones) and payloads shorter than 4 bytes are errors.
    /// Bytes after the first 4 are ignored.
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent, MediaError> {
        let &[event, flags, duration_high, duration_low, ..] = payload else {
            return Err(MediaError::InvalidDtmf {
                detail: format!("telephone-event payload of {} bytes", payload.len()),
            });
        };
        if usize::from(event) >= EVENT_KEYS.len() {
            return Err(MediaError::InvalidDtmf {
                detail: format!("telephone-event {event} (not a keypad key)"),
            });
        }
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            // The R bit (0x40) is reserved: receivers must ignore it.
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([duration_high, duration_low]),
        })
    }

    /// The 4-byte payload (the reserved bit is sent as 0).
    pub fn to_bytes(&self) -> [u8; 4] {
        let [high, low] = self.duration.to_be_bytes();
        [self.event, u8::from(self.end) << 7 | self.volume, high, low]
    }

    /// The key pressed.
    pub fn key(&self) -> char {
        EVENT_KEYS[usize::from(self.event)]
    }

    /// Whether this packet marks the end of the event (the E bit).
    pub fn is_end(&self) -> bool {
        self.end
    }

    /// Power level in -dBm0 (0 is loudest, 63 quietest).
    pub fn volume(&self) -> u8 {
        self.volume
    }

    /// Duration so far, in RTP timestamp units (samples at the clock rate of the payload type).
    pub fn duration(&self) -> u16 {
        self.duration
    }
}

/// How many recent event timestamps a [`TelephoneEventReceiver`] remembers, so a packet of an
/// earlier press that arrives after a newer press has started is not taken for a new press.
const RECENT_EVENTS: usize = 8;

/// The press whose packets a [`TelephoneEventReceiver`] saw last.
#[derive(Debug, Clone, Copy)]
struct CurrentEvent {
    timestamp: u32,
    key: char,
    ended: bool,
    longest: u16,
}

/// Turns telephone-event RTP packets into one key per key press.
///
/// An event is identified by its RTP timestamp: the continuing updates and the retransmitted
/// end packets (usually 3) of one press share it and do not repeat the key; a second press of the
/// same key has a new timestamp and is reported again. Packets reordered from an earlier press,
/// lost start packets, timestamp wrap and RFC 4733 long-event segments (>8 s keys) are handled.
#[derive(Debug, Default)]
pub struct TelephoneEventReceiver {
    current: Option<CurrentEvent>,
    recent: VecDeque<u32>,
}

impl TelephoneEventReceiver {
    /// A receiver that has seen no events.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the RTP timestamp and payload of one telephone-event packet; returns the key when
    /// this packet is the first seen of a new key press. Malformed payloads and events that are
    /// not keys are ignored (`None`).
    pub fn push(&mut self, rtp_timestamp: u32, payload: &[u8]) -> Option<char> {
        let event = TelephoneEvent::parse(payload).ok()?;
        if let Some(current) = &mut self.current
            && current.timestamp == rtp_timestamp
        {
            current.ended |= event.end;
            current.longest = current.longest.max(event.duration);
            return None;
        }
        // Only timestamps are compared, never ordered, so wrap-around needs no special care.
        if self.recent.contains(&rtp_timestamp) {
            return None;
        }
        // RFC 4733 2.5.1.3: a key held past the 16-bit duration continues as a new segment with a
        // new timestamp; it is still the same press.
        let continues_long_press = self.current.is_some_and(|current| {
            !current.ended && current.key == event.key() && current.longest == u16::MAX
        });
        if self.recent.len() == RECENT_EVENTS {
            self.recent.pop_front();
        }
        self.recent.push_back(rtp_timestamp);
        self.current = Some(CurrentEvent {
            timestamp: rtp_timestamp,
            key: event.key(),
            ended: event.end,
            longest: event.duration,
        });
        (!continues_long_press).then_some(event.key())
    }
}

/// Analysis block: 20 ms gives 50 Hz bins, enough to tell 697 Hz from 770 Hz (the closest
/// pair) with about 13 dB of leakage margin while staying short next to a 40 ms tone.
const BLOCK_MS: u32 = 20;
/// A new block starts every quarter block (5 ms), so a 40 ms tone always fully covers at least
/// four blocks whatever its alignment.
const HOPS_PER_BLOCK: usize = 4;
/// Consecutive blocks with the same key that confirm it. Five 20 ms blocks 5 ms apart span 40
/// ms; a block passes once the tone fills about half of it, so every 40 ms tone is reported
/// (it passes about eight blocks) and tones shorter than about 22 ms never are (ITU-T Q.24
/// rejects under 23 ms), which keeps short clicks and chirps out.
const CONFIRM_BLOCKS: u32 = 5;
/// Consecutive blocks without the held key that end it (and let the same key be reported
/// again). A 40 ms pause fails about eight blocks (every block the tone fills less than half
/// of), while a phase jump inside a tone (a lost packet concealed by repeating the previous
/// frame) fails up to the three blocks straddling it, and must not split the key in two.
const RELEASE_BLOCKS: u32 = 5;
/// Quietest tone accepted: a peak amplitude of 0.01 (-40 dBFS) for each of the two sines, well
/// below the weakest DTMF a line should deliver (about -25 dBm0 per tone, near -28 dBFS).
const MIN_TONE_AMPLITUDE: f32 = 0.01;
/// How much stronger the row tone may be than the column tone (8 dB, power ratio).
const MAX_ROW_OVER_COLUMN: f32 = 6.31;
/// How much stronger the column tone may be than the row tone (8 dB, power ratio). Senders make
/// it a little louder on purpose, since lines attenuate high frequencies more.
const MAX_COLUMN_OVER_ROW: f32 = 6.31;
/// How far the strongest row (and column) must stand above the other rows (columns): 6 dB.
const MIN_PEAK_OVER_NEIGHBOURS: f32 = 4.0;
/// Share of the block's energy the two tones must hold. Pure DTMF holds nearly all of it, and
/// still about 59% when both tones are 1.5% off frequency (the most ITU-T Q.24 asks a receiver
/// to accept); blocks of speech hold at most 23% (the speech set at 8 and 16 kHz), since speech
/// and music spread their energy over many harmonics and formants, and noise over the band.
const MIN_TONE_SHARE: f32 = 0.5;

/// In-band DTMF detection: Goertzel filters on the 8 row/column frequencies over any chunking of
/// the audio. Each key is reported once, when it has lasted about 40 ms; twist,
/// peak-over-neighbour and tone-to-total-energy checks keep speech, music and noise from
/// triggering it.
#[derive(Debug)]
pub struct InBandDetector {
    block_len: usize,
    hop: usize,
    /// `2 cos(2 pi f / fs)` for the four rows, then the four columns.
    coefficients: [f32; 8],
    /// Samples not yet consumed by a hop: always less than one block plus whatever the last
    /// `push` brought.
    pending: Vec<f32>,
    /// The key of the current run of identical block results, and its length.
    run_key: Option<char>,
    run_blocks: u32,
    /// The key reported and not yet released, and how many blocks in a row lacked it.
    held: Option<char>,
    blocks_without_held: u32,
}

impl InBandDetector {
    /// A detector for mono audio at `sample_rate` Hz (8 000 and 16 000 are the rates phone
    /// calls use; any rate of at least 4 000 Hz works).
    ///
    /// # Panics
    ///
    /// If `sample_rate` is below 4 000 Hz, which cannot carry the 1 633 Hz column tone.
    pub fn new(sample_rate: u32) -> Self {
        assert!(
            sample_rate >= 4_000,
            "in-band DTMF needs a sample rate of at least 4000 Hz, got {sample_rate} Hz"
        );
        let block_len = (u64::from(sample_rate) * u64::from(BLOCK_MS) / 1_000) as usize;
        let mut coefficients = [0.0; 8];
        for (coefficient, hz) in coefficients.iter_mut().zip(ROW_HZ.iter().chain(&COLUMN_HZ)) {
            *coefficient = 2.0 * (2.0 * PI * hz / sample_rate as f32).cos();
        }
        InBandDetector {
            block_len,
            hop: block_len / HOPS_PER_BLOCK,
            coefficients,
            pending: Vec::with_capacity(block_len * 2),
            run_key: None,
            run_blocks: 0,
            held: None,
            blocks_without_held: 0,
        }
    }

    /// Feeds the next samples (any number, including none); returns the keys that became
    /// confirmed within them, in order.
    pub fn push(&mut self, samples: &[f32]) -> Vec<char> {
        self.pending.extend_from_slice(samples);
        let mut keys = Vec::new();
        let mut start = 0;
        // Blocks sit at fixed sample positions of the stream, so the chunking of the input
        // cannot change the result.
        while self.pending.len() - start >= self.block_len {
            let block_key = self.classify(&self.pending[start..start + self.block_len]);
            keys.extend(self.track(block_key));
            start += self.hop;
        }
        self.pending.drain(..start);
        keys
    }

    /// The key one block holds, if it passes every check.
    fn classify(&self, block: &[f32]) -> Option<char> {
        let n = block.len() as f32;
        let energy: f32 = block.iter().map(|s| s * s).sum();
        // A sine of amplitude A carries n A^2 / 2 of energy over the block.
        let min_tone_energy = n * MIN_TONE_AMPLITUDE * MIN_TONE_AMPLITUDE / 2.0;
        if energy < 2.0 * min_tone_energy {
            return None;
        }
        let mut tone_energy = [0.0f32; 8];
        for (energy_out, &coefficient) in tone_energy.iter_mut().zip(&self.coefficients) {
            let (mut s1, mut s2) = (0.0f32, 0.0f32);
            for &x in block {
                let s0 = x + coefficient * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            // |X(f)|^2, scaled so a sine at f reports its energy over the block.
            *energy_out = 2.0 * (s1 * s1 + s2 * s2 - coefficient * s1 * s2) / n;
        }
        let (rows, columns) = tone_energy.split_at(4);
        let (row, row_energy) = strongest(rows)?;
        let (column, column_energy) = strongest(columns)?;
        let accepted = row_energy >= min_tone_energy
            && column_energy >= min_tone_energy
            && row_energy <= column_energy * MAX_ROW_OVER_COLUMN
            && column_energy <= row_energy * MAX_COLUMN_OVER_ROW
            && stands_out(rows, row)
            && stands_out(columns, column)
            && row_energy + column_energy >= MIN_TONE_SHARE * energy;
        accepted.then_some(KEYPAD[row][column])
    }

    /// Advances the key tracking by one block; returns a key when it becomes confirmed.
    fn track(&mut self, block_key: Option<char>) -> Option<char> {
        if block_key.is_some() && block_key == self.run_key {
            self.run_blocks += 1;
        } else {
            self.run_key = block_key;
            self.run_blocks = u32::from(block_key.is_some());
        }
        if self.held.is_some() {
            if block_key == self.held {
                self.blocks_without_held = 0;
            } else {
                self.blocks_without_held += 1;
                if self.blocks_without_held >= RELEASE_BLOCKS {
                    self.held = None;
                }
            }
        }
        if self.held.is_none() && self.run_blocks >= CONFIRM_BLOCKS {
            self.held = self.run_key;
            self.blocks_without_held = 0;
            return self.run_key;
        }
        None
    }
}

/// The index and energy of the strongest of four tones.
fn strongest(energies: &[f32]) -> Option<(usize, f32)> {
    energies
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Whether tone `best` is at least [`MIN_PEAK_OVER_NEIGHBOURS`] above every other tone of its
/// group (a real key sounds exactly one row and one column).
fn stands_out(energies: &[f32], best: usize) -> bool {
    energies
        .iter()
        .enumerate()
        .all(|(i, &e)| i == best || e * MIN_PEAK_OVER_NEIGHBOURS <= energies[best])
}

/// A DTMF tone for `key`: its row and column frequencies, each at amplitude 0.25, for
/// `duration_ms`. For tests and for sending digits in-band. Fails for keys other than 0-9, *, #,
/// A-D and for a sample rate of 0.
pub fn tone(key: char, sample_rate: u32, duration_ms: u32) -> Result<Vec<f32>, MediaError> {
    let (row, column) = keypad_position(key)?;
    if sample_rate == 0 {
        return Err(MediaError::ZeroSampleRate {
            context: "DTMF tone",
        });
    }
    let len = (u64::from(sample_rate) * u64::from(duration_ms) / 1_000) as usize;
    let (row_step, column_step) = (
        2.0 * std::f64::consts::PI * f64::from(ROW_HZ[row]) / f64::from(sample_rate),
        2.0 * std::f64::consts::PI * f64::from(COLUMN_HZ[column]) / f64::from(sample_rate),
    );
    Ok((0..len)
        .map(|n| {
            let n = n as f64;
            (0.25 * ((row_step * n).sin() + (column_step * n).sin())) as f32
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::sine;

    const ALL_KEYS: &str = "0123456789*#ABCD";

    /// Uniform white noise with RMS `rms`, from a fixed seed (xorshift), so tests repeat.
    fn white_noise(len: usize, rms: f32, seed: u64) -> Vec<f32> {
        let mut state = seed.max(1);
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Uniform on [-1, 1) has RMS 1/sqrt(3).
                let uniform = (state >> 11) as f32 / (1u64 << 52) as f32 - 1.0;
                uniform * rms * 3f32.sqrt()
            })
            .collect()
    }

    fn silence(sample_rate: u32, ms: u32) -> Vec<f32> {
        vec![0.0; (sample_rate * ms / 1000) as usize]
    }

    /// `keys` as tones of `tone_ms`, each followed by `gap_ms` of silence, after a 100 ms lead-in.
    fn dialled(keys: &str, sample_rate: u32, tone_ms: u32, gap_ms: u32) -> Vec<f32> {
        let mut audio = silence(sample_rate, 100);
        for key in keys.chars() {
            audio.extend(tone(key, sample_rate, tone_ms).unwrap());
            audio.extend(silence(sample_rate, gap_ms));
        }
        audio
    }

    /// A key from its two tones with independent amplitudes and a relative frequency error.
    fn twisted_tone(
        key: char,
        sample_rate: u32,
        ms: u32,
        row_amp: f64,
        column_amp: f64,
    ) -> Vec<f32> {
        offset_tone(key, sample_rate, ms, row_amp, column_amp, 0.0)
    }

    fn offset_tone(
        key: char,
        sample_rate: u32,
        ms: u32,
        row_amp: f64,
        column_amp: f64,
        relative_error: f64,
    ) -> Vec<f32> {
        let (row, column) = keypad_position(key).unwrap();
        let len = (sample_rate * ms / 1000) as usize;
        let scale = 1.0 + relative_error;
        let low = sine(f64::from(ROW_HZ[row]) * scale, row_amp, sample_rate, len);
        let high = sine(
            f64::from(COLUMN_HZ[column]) * scale,
            column_amp,
            sample_rate,
            len,
        );
        low.iter().zip(&high).map(|(a, b)| a + b).collect()
    }

    fn detect(sample_rate: u32, audio: &[f32]) -> String {
        InBandDetector::new(sample_rate)
            .push(audio)
            .into_iter()
            .collect()
    }

    fn add(mut audio: Vec<f32>, other: &[f32]) -> Vec<f32> {
        for (a, b) in audio.iter_mut().zip(other) {
            *a += b;
        }
        audio
    }

    #[test]
    fn payload_round_trips_every_key_flag_volume_and_duration() {
        for key in ALL_KEYS.chars() {
            for end in [false, true] {
                for volume in [0, 10, 63] {
                    for duration in [0, 160, 1234, u16::MAX] {
                        let event = TelephoneEvent::new(key, end, volume, duration).unwrap();
                        let parsed = TelephoneEvent::parse(&event.to_bytes()).unwrap();
                        assert_eq!(parsed, event);
                        assert_eq!(
                            (
                                parsed.key(),
                                parsed.is_end(),
                                parsed.volume(),
                                parsed.duration()
                            ),
                            (key, end, volume, duration)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn payload_follows_the_rfc_4733_layout_and_event_codes() {
        // RFC 4733 2.3: event (8 bits) | E | R | volume (6 bits) | duration (16 bits, network
        // order). Digit 9, end, -10 dBm0, 800 units (100 ms at 8 kHz).
        let event = TelephoneEvent::parse(&[9, 0x8a, 0x03, 0x20]).unwrap();
        assert_eq!(event.key(), '9');
        assert!(event.is_end());
        assert_eq!(event.volume(), 10);
        assert_eq!(event.duration(), 800);
        assert_eq!(event.to_bytes(), [9, 0x8a, 0x03, 0x20]);
        // The reserved bit is ignored on receipt and sent as zero.
        let reserved = TelephoneEvent::parse(&[9, 0xca, 0x03, 0x20]).unwrap();
        assert_eq!(reserved, event);
        assert_eq!(reserved.to_bytes()[1], 0x8a);
        // The registry (RFC 4733 table 7): 0-9 are the digits, then *, #, A-D.
        for (code, key) in ALL_KEYS.chars().enumerate() {
            let event = TelephoneEvent::parse(&[code as u8, 0, 0, 0]).unwrap();
            assert_eq!(event.key(), key, "event code {code}");
        }
        // A start packet: no end bit, duration 0 is allowed.
        let start = TelephoneEvent::parse(&[11, 0x07, 0, 0]).unwrap();
        assert_eq!(
            (start.key(), start.is_end(), start.volume()),
            ('#', false, 7)
        );
        // Trailing bytes (padding) are ignored.
        assert_eq!(
            TelephoneEvent::parse(&[9, 0x8a, 0x03, 0x20, 0, 0]).unwrap(),
            event
        );
    }

    #[test]
    fn rejects_other_events_short_payloads_bad_keys_and_volumes() {
        let flash = TelephoneEvent::parse(&[16, 0, 0, 0]).unwrap_err();
        assert!(flash.to_string().contains("telephone-event 16"), "{flash}");
        assert!(TelephoneEvent::parse(&[255, 0, 0, 0]).is_err());
        for short in [&[][..], &[1], &[1, 0, 0]] {
            let err = TelephoneEvent::parse(short).unwrap_err();
            assert!(err.to_string().contains("payload of"), "{err}");
        }
        let bad_key = TelephoneEvent::new('x', false, 0, 0).unwrap_err();
        assert!(
            bad_key.to_string().contains("0-9, *, # and A-D"),
            "{bad_key}"
        );
        assert!(
            TelephoneEvent::new('a', false, 0, 0).is_err(),
            "keys are upper case"
        );
        assert!(TelephoneEvent::new('1', false, 64, 0).is_err());
        assert!(tone('E', 8_000, 40).is_err());
        assert!(tone('1', 0, 40).is_err());
    }

    /// The packets a sender emits for one press: start, updates every 20 ms, 3 end packets.
    fn press(key: char, timestamp: u32, updates: u16) -> Vec<(u32, [u8; 4])> {
        let mut packets: Vec<(u32, [u8; 4])> = (0..updates)
            .map(|i| {
                let event = TelephoneEvent::new(key, false, 10, i * 160).unwrap();
                (timestamp, event.to_bytes())
            })
            .collect();
        let end = TelephoneEvent::new(key, true, 10, updates * 160).unwrap();
        packets.extend([(timestamp, end.to_bytes()); 3]);
        packets
    }

    fn receive(packets: &[(u32, [u8; 4])]) -> String {
        let mut receiver = TelephoneEventReceiver::new();
        packets
            .iter()
            .filter_map(|(timestamp, payload)| receiver.push(*timestamp, payload))
            .collect()
    }

    #[test]
    fn receiver_reports_each_press_once() {
        let mut packets = press('1', 8_000, 6);
        // The same key again: a new event, so a new timestamp.
        packets.extend(press('1', 10_400, 4));
        packets.extend(press('4', 12_000, 10));
        assert_eq!(receive(&packets), "114");
        assert_eq!(receive(&press('#', 0, 1)), "#");
    }

    #[test]
    fn receiver_survives_loss_reordering_and_timestamp_wrap() {
        let mut packets = Vec::new();
        // Every packet but the end packets of the first press lost.
        packets.extend(press('7', 1_000, 5).split_off(5));
        // A press straddling the 32-bit wrap, then one after it.
        packets.extend(press('8', u32::MAX - 80, 5));
        packets.extend(press('8', 1_500, 5));
        // A late end packet of the first press, arriving after later presses began.
        packets.push(press('7', 1_000, 5)[5]);
        // Malformed and non-key payloads in between change nothing.
        packets.push((9_999, [16, 0x80, 0, 160]));
        packets.extend(press('9', 20_000, 3));
        let mut receiver = TelephoneEventReceiver::new();
        let mut keys = String::new();
        for (timestamp, payload) in &packets {
            keys.extend(receiver.push(*timestamp, payload));
        }
        assert_eq!(receiver.push(30_000, &[1, 2]), None);
        assert_eq!(keys, "7889");
    }

    #[test]
    fn receiver_joins_the_segments_of_a_key_held_past_the_duration_field() {
        // RFC 4733 2.5.1.3: at 8 kHz a press longer than 8.2 s continues as a new segment with
        // a new timestamp once the duration reaches its maximum.
        let segment = |timestamp: u32, durations: &[u16], end: bool| {
            durations
                .iter()
                .map(|&d| {
                    (
                        timestamp,
                        TelephoneEvent::new('0', end, 10, d).unwrap().to_bytes(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let mut packets = segment(0, &[0, 30_000, 60_000, u16::MAX], false);
        packets.extend(segment(65_535, &[160, 20_000], false));
        packets.extend(segment(65_535, &[20_160; 3], true));
        // A new press of the same key after the long one ended.
        packets.extend(press('0', 100_000, 3));
        assert_eq!(receive(&packets), "00");
    }

    #[test]
    fn detects_all_keys_with_40_ms_tones_and_gaps_at_8_and_16_khz() {
        for rate in [8_000, 16_000] {
            let audio = dialled(ALL_KEYS, rate, 40, 40);
            assert_eq!(detect(rate, &audio), ALL_KEYS, "{rate} Hz");
            // Repeated keys need the gap to count twice, wherever it falls on the block grid.
            for shift in 0..10 {
                let mut audio = vec![0.0; shift * rate as usize / 2_000];
                audio.extend(dialled("1155##", rate, 40, 40));
                let audio = add(audio, &white_noise(rate as usize, 0.01, shift as u64));
                assert_eq!(detect(rate, &audio), "1155##", "{rate} Hz, shifted {shift}");
            }
        }
    }

    #[test]
    fn any_chunking_gives_the_same_keys() {
        for rate in [8_000, 16_000] {
            let audio = add(
                dialled("159#D0*", rate, 45, 40),
                &white_noise(rate as usize * 2, 0.02, 7),
            );
            let whole = detect(rate, &audio);
            assert_eq!(whole, "159#D0*");
            for chunk in [1, 2, 7, 80, 159, 160, 161, 333, 640, 999, 1000] {
                let mut detector = InBandDetector::new(rate);
                let mut keys = String::new();
                for piece in audio.chunks(chunk) {
                    keys.extend(detector.push(piece));
                    keys.extend(detector.push(&[]));
                }
                assert_eq!(keys, whole, "{rate} Hz in chunks of {chunk}");
            }
        }
    }

    #[test]
    fn reports_a_long_key_once_and_ignores_blips() {
        for rate in [8_000, 16_000] {
            let audio = dialled("5", rate, 2_000, 100);
            // A 20 ms blip is below the 40 ms minimum (ITU-T Q.24 rejects under 23 ms), at any
            // position against the 5 ms block grid; a 40 ms tone is always reported.
            for shift in 0..10 {
                let mut shifted = audio.clone();
                shifted.extend(vec![0.0; shift * rate as usize / 2_000]);
                let mut blip = shifted.clone();
                blip.extend(tone('3', rate, 20).unwrap());
                blip.extend(silence(rate, 100));
                assert_eq!(detect(rate, &blip), "5", "{rate} Hz, shifted {shift}");
                shifted.extend(tone('3', rate, 40).unwrap());
                shifted.extend(silence(rate, 100));
                assert_eq!(detect(rate, &shifted), "53", "{rate} Hz, shifted {shift}");
            }
            // A change of key without a pause is a new key.
            assert_eq!(detect(rate, &dialled("12", rate, 60, 0)), "12", "{rate} Hz");
        }
    }

    #[test]
    fn tolerates_noise_twist_level_and_frequency_error() {
        for rate in [8_000, 16_000] {
            let len = rate as usize * 2;
            // Tones at -12 dBFS per tone against noise at -32 dBFS RMS: 17 dB SNR.
            let noisy = add(dialled("2468", rate, 50, 50), &white_noise(len, 0.025, 11));
            assert_eq!(detect(rate, &noisy), "2468", "{rate} Hz noisy");
            for (row_amp, column_amp) in [(0.3, 0.15), (0.15, 0.3), (0.03, 0.03)] {
                let mut audio = silence(rate, 60);
                for key in "*0#".chars() {
                    audio.extend(twisted_tone(key, rate, 50, row_amp, column_amp));
                    audio.extend(silence(rate, 50));
                }
                let audio = add(audio, &white_noise(len, 0.002, 3));
                assert_eq!(
                    detect(rate, &audio),
                    "*0#",
                    "{rate} Hz, {row_amp}/{column_amp}"
                );
            }
            for error in [-0.015, 0.015] {
                let audio = offset_tone('D', rate, 60, 0.25, 0.25, error);
                assert_eq!(detect(rate, &audio), "D", "{rate} Hz, {error} off");
            }
        }
    }

    #[test]
    fn rejects_excessive_twist_faint_tones_and_single_tones() {
        for rate in [8_000, 16_000] {
            // 14 dB twist either way is not DTMF.
            assert_eq!(detect(rate, &twisted_tone('5', rate, 200, 0.5, 0.1)), "");
            assert_eq!(detect(rate, &twisted_tone('5', rate, 200, 0.1, 0.5)), "");
            // Below -46 dBFS per tone.
            assert_eq!(
                detect(rate, &twisted_tone('5', rate, 200, 0.005, 0.005)),
                ""
            );
            // One tone of the pair, or two rows at once.
            let len = rate as usize / 5;
            assert_eq!(detect(rate, &sine(770.0, 0.3, rate, len)), "");
            let two_rows = add(sine(770.0, 0.3, rate, len), &sine(852.0, 0.3, rate, len));
            let three = add(two_rows, &sine(1336.0, 0.3, rate, len));
            assert_eq!(detect(rate, &three), "");
        }
    }

    /// Speech must not trigger keys either: `tests/inband_dtmf.rs` checks that on real speech,
    /// and `cargo bench -p viva-media` measures what detection costs.
    #[test]
    fn white_noise_triggers_nothing() {
        for rate in [8_000, 16_000] {
            for (i, level) in [0.001, 0.01, 0.1, 0.5].into_iter().enumerate() {
                let noise = white_noise(rate as usize * 10, level, 100 + i as u64);
                assert_eq!(detect(rate, &noise), "", "{rate} Hz noise at RMS {level}");
            }
        }
    }

    #[test]
    fn garbage_samples_do_not_stop_detection() {
        for rate in [8_000, 16_000] {
            let mut audio = vec![f32::NAN; 300];
            audio.extend([f32::INFINITY, f32::NEG_INFINITY, f32::MAX, f32::MIN].repeat(100));
            audio.extend(dialled("42", rate, 40, 40));
            assert_eq!(detect(rate, &audio), "42", "{rate} Hz");
        }
    }

    #[test]
    fn a_lost_packet_inside_a_tone_does_not_split_the_key() {
        // In-band DTMF over RTP: a packet lost in the middle of a key is concealed by repeating
        // the previous 20 ms frame, whose phase does not continue the tone. Any single lost
        // packet, for every key, must still give one key.
        for key in ALL_KEYS.chars() {
            for lost in 2..7u16 {
                let audio = dialled(&key.to_string(), 8_000, 140, 100);
                let mut jitter = crate::JitterBuffer::new(8_000, 40);
                let mut detector = InBandDetector::new(8_000);
                let mut keys = String::new();
                for (sequence, packet) in (0u16..).zip(audio.chunks_exact(160)) {
                    let now_ms = u64::from(sequence) * 20;
                    if sequence != 5 + lost {
                        jitter.push(sequence, packet.to_vec(), now_ms);
                    }
                    for frame in jitter.pop_due(now_ms) {
                        keys.extend(detector.push(&frame));
                    }
                }
                assert_eq!(
                    keys,
                    key.to_string(),
                    "key {key}, packet {lost} of the tone lost"
                );
            }
        }
    }

    #[test]
    fn keys_survive_a_g711_round_trip() {
        use crate::{G711Law, f32_to_i16, i16_to_f32};
        for law in [G711Law::MuLaw, G711Law::ALaw] {
            let audio = dialled("0123456789*#", 8_000, 40, 40);
            let pcm: Vec<i16> = audio.iter().map(|&s| f32_to_i16(s)).collect();
            let decoded: Vec<f32> = law
                .decode(&law.encode(&pcm))
                .into_iter()
                .map(i16_to_f32)
                .collect();
            assert_eq!(detect(8_000, &decoded), "0123456789*#", "{law:?}");
        }
    }
}
