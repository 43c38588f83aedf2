//! Fuzz harnesses for the protocol parsing of phone calls, one function per target in
//! `fuzz_targets/`. The stable regression tests of `viva-transport-sip` and `viva-media`
//! include [`sip`] and [`media`] by path and replay the kept corpus through them.

pub mod media;
pub mod sip;
