//! A jitter buffer fed an arbitrary packet schedule. See `viva_fuzz::media::jitter_schedule`.
#![no_main]

/// Counts the bytes the harness holds, so it can bound the buffer's memory.
#[global_allocator]
static ALLOCATOR: viva_fuzz::media::CountingAllocator = viva_fuzz::media::CountingAllocator;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    viva_fuzz::media::jitter_schedule(data);
});
