//! Replays the kept cargo-fuzz corpus of the SIP transport's parsing (SIP datagrams, SDP,
//! DTMF INFO bodies, RTP) on the stable toolchain, through the very harness the fuzz targets
//! run (`fuzz/src/sip.rs`), so CI catches a regression on any input the fuzzer once reached.
//! Seed inputs (`fuzz/seeds`) named `valid-*` must also be accepted and `bad-*` rejected.
//! Crash reproducers the fuzzer found (`fuzz/artifacts-found`) must no longer panic.

#[path = "../../../fuzz/src/sip.rs"]
mod harness;

use viva_test_support::fuzz::{check_crashes_are_fixed, check_target};

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

#[test]
fn crashes_found_by_fuzzing_are_fixed() {
    check_crashes_are_fixed(&[
        ("sip_message", harness::sip_datagram),
        ("sdp", harness::sdp_offer),
        ("dtmf_info", harness::dtmf_info),
        ("rtp", harness::rtp_stream),
    ]);
}
