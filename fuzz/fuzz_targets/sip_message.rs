//! A SIP datagram through rsipstack's parser and what the transport reads from it. See `viva_fuzz::sip::sip_datagram`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    viva_fuzz::sip::sip_datagram(data);
});
