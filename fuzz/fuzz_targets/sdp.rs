//! An SDP offer answered as an inbound INVITE is. See `viva_fuzz::sip::sdp_offer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    viva_fuzz::sip::sdp_offer(data);
});
