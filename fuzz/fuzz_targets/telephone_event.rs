//! RFC 4733 telephone-event packets into key presses. See `viva_fuzz::media::telephone_events`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    viva_fuzz::media::telephone_events(data);
});
