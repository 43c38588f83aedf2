//! Replays the kept cargo-fuzz corpus of the media side of phone calls (RFC 4733
//! telephone-events, the jitter buffer, in-band DTMF) on the stable toolchain, through the very
//! harness the fuzz targets run (`fuzz/src/media.rs`), so CI catches a regression on any input
//! the fuzzer once reached. Seed inputs (`fuzz/seeds`) named `valid-*` must also be accepted
//! and `bad-*` rejected. Crash reproducers the fuzzer found (`fuzz/artifacts-found`) must no
//! longer panic.

#[path = "../../../fuzz/src/media.rs"]
mod harness;

use viva_test_support::fuzz::{check_crashes_are_fixed, check_target};

/// Counts the bytes each thread holds, so the jitter buffer's memory is bounded here as in
/// the fuzz target.
#[global_allocator]
static ALLOCATOR: harness::CountingAllocator = harness::CountingAllocator;

#[test]
fn telephone_event_corpus() {
    check_target("telephone_event", harness::telephone_events);
}

#[test]
fn jitter_buffer_corpus() {
    check_target("jitter_buffer", harness::jitter_schedule);
}

#[test]
fn inband_dtmf_corpus() {
    check_target("inband_dtmf", harness::inband_samples);
}

#[test]
fn crashes_found_by_fuzzing_are_fixed() {
    check_crashes_are_fixed(&[
        ("telephone_event", harness::telephone_events),
        ("jitter_buffer", harness::jitter_schedule),
        ("inband_dtmf", harness::inband_samples),
    ]);
}
