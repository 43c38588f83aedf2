//! Replays the kept cargo-fuzz corpus of the media side of phone calls (RFC 4733
//! telephone-events, the jitter buffer, in-band DTMF) on the stable toolchain, through the very
//! harness the fuzz targets run (`fuzz/src/media.rs`), so CI catches a regression on any input
//! the fuzzer once reached. Seed inputs (`fuzz/seeds`) named `valid-*` must also be accepted
//! and `bad-*` rejected. Crash reproducers the fuzzer found (`fuzz/artifacts-found`) must no
//! longer panic.

#[path = "../../../fuzz/src/media.rs"]
mod harness;
#[path = "../../../fuzz/replay.rs"]
mod replay;

use replay::{check_target, inputs, replay};

/// Counts the bytes each thread holds, so the jitter buffer's memory is bounded here as in
/// the fuzz target.
#[global_allocator]
static ALLOCATOR: harness::CountingAllocator = harness::CountingAllocator;

/// A fuzz target's body: runs one input, says whether it parsed.
type Harness = fn(&[u8]) -> bool;

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

/// Inputs that crashed a target once; each must run through without a panic now.
#[test]
fn crashes_found_by_fuzzing_are_fixed() {
    let targets: [(&str, Harness); 3] = [
        ("telephone_event", harness::telephone_events),
        ("jitter_buffer", harness::jitter_schedule),
        ("inband_dtmf", harness::inband_samples),
    ];
    for (target, run) in targets {
        replay(
            &format!(
                "crash reproducers in fuzz/artifacts-found/{target} (found by `cargo fuzz run \
                 {target}`; see fuzz/README.md) still crash"
            ),
            &inputs("artifacts-found", target),
            run,
        );
    }
}
