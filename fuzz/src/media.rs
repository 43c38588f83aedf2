//! What the media side of a phone call does with input a far end controls, one function per
//! fuzz target: RFC 4733 telephone-event payloads, the jitter buffer's packet schedule, and
//! in-band DTMF detection on arbitrary samples.
//!
//! Shared by the cargo-fuzz targets (`fuzz/fuzz_targets`) and the stable regression test
//! `crates/media/tests/fuzz_corpus.rs`, which includes this file with `#[path]`, so the kept
//! corpus is replayed through exactly the calls the fuzzer made. Each function panics only
//! when the code under test breaks one of its promises (a crash, or a property asserted here).
//! The `bool` each returns says whether the input was accepted as the real thing, which the
//! regression test checks for the seed inputs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use viva_media::{InBandDetector, JitterBuffer, TelephoneEvent, TelephoneEventReceiver};

/// The keys DTMF can carry.
const KEYS: &str = "0123456789*#ABCD";

/// A stream of telephone-event packets, each `[RTP timestamp: 4 bytes BE][length: 1 byte]
/// [payload]` (the last payload runs to the end of the input), through payload parsing and the
/// receiver that turns packets into key presses.
///
/// Properties checked: a parsed event names a keypad key, writes back to the same 4 bytes it
/// was read from (the reserved bit aside) and can be rebuilt from its fields; the receiver only
/// reports keys of well-formed packets, and the key that packet names.
///
/// Returns whether the receiver reported at least one key.
pub fn telephone_events(data: &[u8]) -> bool {
    let mut receiver = TelephoneEventReceiver::new();
    let mut reported = false;
    let mut rest = data;
    while rest.len() >= 5 {
        let timestamp = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let len = usize::from(rest[4]).min(rest.len() - 5);
        let (payload, tail) = rest[5..].split_at(len);
        rest = tail;

        let parsed = TelephoneEvent::parse(payload);
        if let Ok(event) = parsed {
            assert!(KEYS.contains(event.key()), "event key {:?}", event.key());
            let mut original = [payload[0], payload[1], payload[2], payload[3]];
            original[1] &= !0x40; // the reserved bit, which senders set at will
            assert_eq!(event.to_bytes(), original, "telephone-event bytes changed");
            assert_eq!(
                TelephoneEvent::new(
                    event.key(),
                    event.is_end(),
                    event.volume(),
                    event.duration()
                )
                .ok(),
                Some(event),
                "a parsed telephone-event cannot be rebuilt from its fields"
            );
        }
        if let Some(key) = receiver.push(timestamp, payload) {
            reported = true;
            let event = parsed.unwrap_or_else(|e| {
                panic!("receiver reported {key:?} for a malformed payload: {e}")
            });
            assert_eq!(key, event.key(), "receiver reported another key than sent");
        }
    }
    reported
}

/// Frame duration the buffer works in.
const FRAME_MS: u64 = 20;
/// The rate phone calls use.
const PHONE_RATE: u32 = 8_000;
/// Samples in one 20 ms frame at [`PHONE_RATE`].
const FRAME_SAMPLES: usize = (PHONE_RATE / 50) as usize;
/// The most audio the buffer may hold however its owner behaves: 5 s of frames (its cap on
/// how far ahead a packet may run), plus a few in flight (the frame on probation, the last
/// frame kept for concealment).
const MAX_HELD_FRAMES: usize = 250 + 4;
/// Allowance for the buffer's bookkeeping (map nodes, the output vector).
const BOOKKEEPING_BYTES: usize = 64 * 1024;

/// A jitter buffer for an 8 kHz call fed an arbitrary schedule: the first byte is the playout
/// delay in ms, then records of `[op: 1 byte][sequence: 2 bytes BE][ms since the previous
/// record: 2 bytes BE]`. The clock only moves forward, as the call's monotonic clock does. An
/// op with the top bit set is a `pop_due`; otherwise it pushes a packet of `16 * op` samples
/// (0 to 2032: empty, short, one frame of 160, or oversized) with that sequence number.
///
/// Properties checked: every frame out is 20 ms long; output is paced in real time (never
/// more frames than the time since the previous `pop_due` holds); the counters count every
/// packet; and the memory the buffer keeps stays within 5 s of 20 ms frames, whatever size
/// the packets had (measured with [`CountingAllocator`] when the binary installs it).
///
/// Returns whether any audio came out.
pub fn jitter_schedule(data: &[u8]) -> bool {
    let Some((&delay, mut rest)) = data.split_first() else {
        return false;
    };
    let baseline = live_bytes();
    let mut buffer = JitterBuffer::new(PHONE_RATE, u32::from(delay));
    let mut now_ms: u64 = 1_000;
    let mut paced_since: Option<u64> = None;
    let mut pushed: u64 = 0;
    let mut played = false;
    while rest.len() >= 5 {
        let (record, tail) = rest.split_at(5);
        rest = tail;
        let op = record[0];
        let sequence = u16::from_be_bytes([record[1], record[2]]);
        now_ms += u64::from(u16::from_be_bytes([record[3], record[4]]));
        if op & 0x80 == 0 {
            let len = usize::from(op) * 16;
            // A distinct level per packet, from loud to quiet, so the buffer's choice of quiet
            // frames to drop has something to choose from.
            let level = f32::from(sequence as u8) / 255.0;
            buffer.push(sequence, vec![level; len], now_ms);
            pushed += 1;
            paced_since.get_or_insert(now_ms);
        } else {
            let frames = buffer.pop_due(now_ms);
            let since = paced_since.unwrap_or(now_ms);
            let allowed = (now_ms - since) / FRAME_MS + 1;
            assert!(
                frames.len() as u64 <= allowed,
                "pop_due gave {} frames for {} ms (at most {allowed})",
                frames.len(),
                now_ms - since
            );
            for frame in &frames {
                assert_eq!(frame.len(), FRAME_SAMPLES, "a frame out is not 20 ms");
            }
            played |= !frames.is_empty();
            paced_since = Some(now_ms);
        }
        assert_eq!(buffer.stats().received, pushed, "packets miscounted");
        let kept = live_bytes().saturating_sub(baseline);
        let bound = MAX_HELD_FRAMES * FRAME_SAMPLES * size_of::<f32>() + BOOKKEEPING_BYTES;
        assert!(
            kept <= bound,
            "jitter buffer keeps {kept} bytes after {pushed} packets (bound {bound})"
        );
    }
    played
}

/// In-band DTMF detection on arbitrary audio: the first byte picks the rate (even: 8 kHz, odd:
/// 16 kHz), the second the chunk size (1 to 256 samples), the rest is `f32` samples,
/// little-endian (NaN and infinities included).
///
/// Properties checked: detected keys are keypad keys, and the chunking of the audio does not
/// change what is detected (the detector promises blocks at fixed stream positions).
///
/// Returns whether a key was detected.
pub fn inband_samples(data: &[u8]) -> bool {
    let [rate, chunk, samples @ ..] = data else {
        return false;
    };
    let rate = if rate % 2 == 0 { 8_000 } else { 16_000 };
    let chunk = usize::from(*chunk) + 1;
    let samples: Vec<f32> = samples
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();

    let mut chunked = InBandDetector::new(rate);
    let mut keys = Vec::new();
    for piece in samples.chunks(chunk) {
        keys.extend(chunked.push(piece));
        keys.extend(chunked.push(&[]));
    }
    let mut whole = InBandDetector::new(rate);
    let at_once = whole.push(&samples);
    assert_eq!(
        keys, at_once,
        "in-band DTMF detection depends on how the audio is chunked"
    );
    for key in &keys {
        assert!(KEYS.contains(*key), "in-band detector gave key {key:?}");
    }
    !keys.is_empty()
}

thread_local! {
    /// Bytes allocated and not yet freed by this thread (frees of memory another thread
    /// allocated make it drift, which the single-threaded harness never does).
    static LIVE_BYTES: Cell<usize> = const { Cell::new(0) };
}

/// The bytes this thread holds, as counted by [`CountingAllocator`] (0 when it is not the
/// global allocator).
fn live_bytes() -> usize {
    LIVE_BYTES.try_with(Cell::get).unwrap_or(0)
}

fn count(grown: usize, shrunk: usize) {
    let _ =
        LIVE_BYTES.try_with(|live| live.set(live.get().wrapping_add(grown).wrapping_sub(shrunk)));
}

/// The system allocator, counting the bytes each thread holds so [`jitter_schedule`] can
/// bound the jitter buffer's memory. Install it with
/// `#[global_allocator] static ALLOCATOR: CountingAllocator = CountingAllocator;`.
pub struct CountingAllocator;

// SAFETY: every call is forwarded unchanged to the system allocator; the counting touches only
// a constant-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size(), 0);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size(), 0);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        count(0, layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(new_size, layout.size());
        }
        new
    }
}
