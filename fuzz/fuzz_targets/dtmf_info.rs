//! A DTMF INFO request: Content-Type line, then body. See `viva_fuzz::sip::dtmf_info`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    viva_fuzz::sip::dtmf_info(data);
});
