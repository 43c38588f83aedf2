//! In-band DTMF detection on arbitrary f32 audio. See `viva_fuzz::media::inband_samples`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    viva_fuzz::media::inband_samples(data);
});
