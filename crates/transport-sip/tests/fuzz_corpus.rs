//! Replays the kept cargo-fuzz corpus of the SIP transport's parsing (SIP datagrams, SDP,
//! DTMF INFO bodies, RTP) on the stable toolchain, through the very harness the fuzz targets
//! run (`fuzz/src/sip.rs`), so CI catches a regression on any input the fuzzer once reached.
//! Seed inputs (`fuzz/seeds`) named `valid-*` must also be accepted and `bad-*` rejected.
//! Crash reproducers the fuzzer found (`fuzz/artifacts-found`) must no longer panic.

#[path = "../../../fuzz/src/sip.rs"]
mod harness;
#[path = "../../../fuzz/replay.rs"]
mod replay;

use replay::{check_target, inputs, replay};

#[test]
fn sip_message_corpus() {
    check_target("sip_message", harness::sip_datagram);
}

#[test]
fn sdp_corpus() {
    check_target("sdp", harness::sdp_offer);
}

#[test]
fn dtmf_info_corpus() {
    check_target("dtmf_info", harness::dtmf_info);
}

#[test]
fn rtp_corpus() {
    check_target("rtp", harness::rtp_stream);
}

/// A fuzz target's body: runs one input, says whether it parsed.
type Harness = fn(&[u8]) -> bool;

/// Inputs that crashed a target once; each must run through without a panic now.
#[test]
fn crashes_found_by_fuzzing_are_fixed() {
    let targets: [(&str, Harness); 4] = [
        ("sip_message", harness::sip_datagram),
        ("sdp", harness::sdp_offer),
        ("dtmf_info", harness::dtmf_info),
        ("rtp", harness::rtp_stream),
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
