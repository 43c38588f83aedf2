//! RTP datagrams on a call's media port. See `viva_fuzz::sip::rtp_stream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    viva_fuzz::sip::rtp_stream(data);
});
