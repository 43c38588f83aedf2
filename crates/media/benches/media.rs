//! Costs of the per-call media work, per 20 ms of audio: `cargo bench -p viva-media`.
//!
//! Numbers, not assertions: compare them against the 20 ms real-time budget of one packet.

use std::hint::black_box;
use std::time::{Duration, Instant};

use viva_media::{
    Channels, G711Law, InBandDetector, OPUS_FRAME_SAMPLES, OpusDecoder, OpusEncoder, Resampler,
    WavWriter, decode_file, resample, write_wav_file,
};
use viva_test_support::models::{SETUP, models_dir, speech_set};

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

/// In-band DTMF detection runs on every phone caller's audio, which is mostly speech: its cost
/// on the real speech set (as recorded, and +6 dB clipped as a hot line clips it), at 8 and
/// 16 kHz.
fn inband_dtmf() {
    let set = models_dir().join("speech-set");
    if !set.is_dir() {
        println!(
            "in-band DTMF on speech: skipped, {} is missing (run {SETUP})",
            set.display()
        );
        return;
    }
    // CPU time and seconds of audio, at 8 kHz and at 16 kHz.
    let mut cost = [(Duration::ZERO, 0.0f64); 2];
    for wav in speech_set() {
        let speech = decode_file(&wav).expect("a speech clip decodes");
        assert_eq!(speech.sample_rate, 16_000, "the speech set is 16 kHz");
        let narrowband = resample(&speech.samples, 16_000, 8_000).expect("resampled");
        for (slot, rate, audio) in [(0, 8_000, &narrowband), (1, 16_000, &speech.samples)] {
            let hot: Vec<f32> = audio.iter().map(|s| (s * 2.0).clamp(-1.0, 1.0)).collect();
            for audio in [audio, &hot] {
                let start = Instant::now();
                black_box(InBandDetector::new(rate).push(black_box(audio)));
                cost[slot].0 += start.elapsed();
                cost[slot].1 += audio.len() as f64 / f64::from(rate);
            }
        }
    }
    for ((busy, seconds), rate) in cost.into_iter().zip([8_000, 16_000]) {
        let per_second = busy.as_secs_f64() / seconds;
        println!(
            "{:<36} {:>8.2} us per 20 ms ({seconds:.0} s of speech)",
            format!("in-band DTMF {rate} Hz, speech"),
            per_second * 1e6 / 50.0
        );
    }
}

fn main() {
    inband_dtmf();
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
