//! Costs of the per-call media work, per 20 ms of audio: `cargo bench -p viva-media`.
//!
//! Numbers, not assertions: compare them against the 20 ms real-time budget of one packet.

use std::hint::black_box;
use std::time::Instant;

use viva_media::{
    Channels, G711Law, OPUS_FRAME_SAMPLES, OpusDecoder, OpusEncoder, Resampler, WavWriter,
    decode_file, write_wav_file,
};

/// One minute of audio: 3000 packets of 20 ms.
const PACKETS: usize = 3000;

fn tone(rate: u32, len: usize) -> Vec<f32> {
    (0..len)
        .map(|n| 0.5 * (2.0 * std::f32::consts::PI * 440.0 * n as f32 / rate as f32).sin())
        .collect()
}

/// Runs `work` once per packet and prints the mean cost per packet.
fn report(name: &str, mut work: impl FnMut(usize)) {
    let start = Instant::now();
    for packet in 0..PACKETS {
        work(packet);
    }
    let per_packet = start.elapsed() / PACKETS as u32;
    println!(
        "{name:<36} {:>8.2} us per 20 ms",
        per_packet.as_secs_f64() * 1e6
    );
}

fn main() {
    const RATES: [u32; 5] = [8_000, 16_000, 22_050, 24_000, 48_000];
    for from in RATES {
        for to in RATES {
            if from == to {
                continue;
            }
            let chunk = from as usize / 50;
            let input = tone(from, chunk);
            let mut resampler = Resampler::new(from, to).expect("supported pair");
            report(&format!("resample {from} -> {to} Hz"), |_| {
                black_box(resampler.process(black_box(&input)));
            });
        }
    }

    let start = Instant::now();
    for _ in 0..100 {
        black_box(Resampler::new(22_050, 48_000).expect("supported pair"));
    }
    println!(
        "Resampler::new 22050 -> 48000 Hz     {:>8.2} us",
        start.elapsed().as_secs_f64() * 1e6 / 100.0
    );

    let pcm: Vec<i16> = tone(8_000, 160)
        .iter()
        .map(|&s| (s * 32767.0) as i16)
        .collect();
    for law in [G711Law::MuLaw, G711Law::ALaw] {
        report(&format!("G.711 {law:?} encode + decode"), |_| {
            black_box(law.decode(&law.encode(black_box(&pcm))));
        });
    }

    let frame = tone(48_000, OPUS_FRAME_SAMPLES);
    let mut encoder = OpusEncoder::new().expect("encoder");
    let packet = encoder.encode(&frame).expect("encode");
    report("Opus encode (mono, VoIP)", |_| {
        black_box(encoder.encode(black_box(&frame)).expect("encode"));
    });
    let mut decoder = OpusDecoder::new(Channels::Mono).expect("decoder");
    report("Opus decode", |_| {
        black_box(decoder.decode(black_box(&packet)).expect("decode"));
    });

    let path = std::env::temp_dir().join(format!("viva-media-bench-{}.wav", std::process::id()));
    let minute = tone(16_000, 16_000 * 60);
    let start = Instant::now();
    write_wav_file(&path, 16_000, &minute).expect("write");
    println!(
        "write 60 s 16 kHz WAV                {:>8.2} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    let start = Instant::now();
    let decoded = decode_file(&path).expect("decode");
    println!(
        "decode 60 s 16 kHz WAV               {:>8.2} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(decoded.samples.len(), minute.len());

    // A call recording flushed once a second: the cost of the durability guarantee.
    let mut recording = WavWriter::create(&path, 16_000, Channels::Mono).expect("create");
    let second = &minute[..16_000];
    let start = Instant::now();
    for _ in 0..20 {
        recording.write_mono(second).expect("write");
        recording.flush().expect("flush");
    }
    let per_flush = start.elapsed() / 20;
    println!(
        "WAV write 1 s + flush (fdatasync)     {:>8.2} ms",
        per_flush.as_secs_f64() * 1e3
    );
    recording.finalize().expect("finalize");
    let _ = std::fs::remove_file(&path);
}
