//! Measures the voice on this machine: load time and memory, time to first audio of a
//! three-sentence reply, and real-time factor. Writes a spoken question to /tmp/tts-check.wav
//! for a listen.
//!
//! ```sh
//! VIVA_TEST_PIPER_VOICE=models/piper/en_US-joe-medium.onnx \
//!     VIVA_TEST_ORT_LIB=models/onnxruntime/libonnxruntime.so \
//!     cargo run --release -p viva-speech --example tts_bench
//! ```

use std::path::PathBuf;
use std::time::Instant;

use viva_speech::{Tts, TtsConfig};

/// Three-sentence replies: one opening with a short clause, one whose ten-word first sentence
/// has no comma to cut at.
const REPLIES: [&str; 2] = [
    "Thanks, that gives me a clear picture of your last project. \
     How do you approach database optimization when queries slow down? \
     Feel free to walk me through a concrete example.",
    "Tell me how you would design a rate limiter for an API. \
     Think about several servers sharing the same limits. \
     Start wherever you like.",
];

const RTF_TEXT: &str = "When a query slows down, I start from the execution plan, check which \
                        indexes are used, and measure before and after every change. Then I look \
                        at connection pooling, caching, and whether the schema fits the access \
                        pattern.";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = |var: &str| -> Result<PathBuf, String> {
        std::env::var_os(var)
            .map(PathBuf::from)
            .ok_or_else(|| format!("{var} is not set: run scripts/setup and point it at the file"))
    };
    let voice = path("VIVA_TEST_PIPER_VOICE")?;
    let onnxruntime = path("VIVA_TEST_ORT_LIB")?;

    println!("RSS before load: {} MiB", rss_mib());
    let started = Instant::now();
    let tts = Tts::load(&TtsConfig { voice, onnxruntime })?;
    println!(
        "loaded {} in {:.0} ms; RSS after load: {} MiB",
        tts.voice_name(),
        started.elapsed().as_secs_f64() * 1e3,
        rss_mib()
    );

    // The first inference pays for ONNX Runtime's lazy allocations; an interview warms the
    // voice up before the candidate joins.
    let started = Instant::now();
    tts.synthesize("Warming up.")?;
    println!(
        "first (cold) synthesis: {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    println!("RSS after first synthesis: {} MiB", rss_mib());

    let rate = f64::from(tts.sample_rate());
    for reply in REPLIES {
        let mut first_audio = Vec::new();
        let mut worst_gap: f64 = 0.0;
        let mut first_piece = String::new();
        for _ in 0..5 {
            // Plays each piece as soon as it is ready and the one before has finished,
            // recording the wait for the first and any silence between pieces.
            let started = Instant::now();
            let mut playing_until: Option<f64> = None;
            for sentence in tts.sentences(reply) {
                let sentence = sentence?;
                let ready = started.elapsed().as_secs_f64();
                let duration = sentence.samples.len() as f64 / rate;
                playing_until = Some(match playing_until {
                    None => {
                        first_audio.push(ready * 1e3);
                        first_piece = format!("{:?}, {duration:.2} s", sentence.text);
                        ready + duration
                    }
                    Some(until) => {
                        worst_gap = worst_gap.max(ready - until);
                        until.max(ready) + duration
                    }
                });
            }
        }
        let mut sorted = first_audio.clone();
        sorted.sort_by(f64::total_cmp);
        println!(
            "first audio after median {:.0} ms (runs {:?}; first piece \
             {first_piece}); worst gap between pieces {:.0} ms",
            sorted[sorted.len() / 2],
            first_audio.iter().map(|ms| ms.round()).collect::<Vec<_>>(),
            worst_gap.max(0.0) * 1e3
        );
    }
    let mut factors = Vec::new();
    let mut cpu_factors = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let cpu_started = cpu_seconds();
        let samples = tts.synthesize(RTF_TEXT)?;
        let audio = samples.len() as f64 / f64::from(tts.sample_rate());
        factors.push(started.elapsed().as_secs_f64() / audio);
        cpu_factors.push((cpu_seconds() - cpu_started) / audio);
    }
    factors.sort_by(f64::total_cmp);
    cpu_factors.sort_by(f64::total_cmp);
    println!(
        "real-time factor median {:.3} (runs {:?}); \
         CPU seconds per audio second {:.3}",
        factors[1],
        factors
            .iter()
            .map(|f| (f * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>(),
        cpu_factors[1]
    );

    let question = tts.synthesize("How do you approach database optimization?")?;
    write_wav("/tmp/tts-check.wav", &question, tts.sample_rate())?;
    println!(
        "wrote /tmp/tts-check.wav ({:.2} s)",
        question.len() as f64 / f64::from(tts.sample_rate())
    );
    Ok(())
}

fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// CPU time (user + system) used by the whole process so far, all threads included: unlike
/// wall time it does not grow when other processes compete for the cores.
fn cpu_seconds() -> f64 {
    // Fields 14 and 15 of /proc/self/stat, in clock ticks (100 per second on Linux), counted
    // after the parenthesised command name, which may itself contain spaces.
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let after_name = &stat[stat.rfind(')')? + 2..];
            let fields: Vec<&str> = after_name.split_whitespace().collect();
            let ticks =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some(ticks as f64 / 100.0)
        })
        .unwrap_or(0.0)
}

/// 16-bit mono PCM WAV.
fn write_wav(path: &str, samples: &[f32], sample_rate: u32) -> std::io::Result<()> {
    let data_len = (samples.len() * 2) as u32;
    let mut bytes = Vec::with_capacity(44 + data_len as usize);
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16_u32.to_le_bytes());
    bytes.extend_from_slice(&1_u16.to_le_bytes()); // PCM
    bytes.extend_from_slice(&1_u16.to_le_bytes()); // mono
    bytes.extend_from_slice(&sample_rate.to_le_bytes());
    bytes.extend_from_slice(&(sample_rate * 2).to_le_bytes());
    bytes.extend_from_slice(&2_u16.to_le_bytes());
    bytes.extend_from_slice(&16_u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        bytes.extend_from_slice(&((sample.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes());
    }
    std::fs::write(path, bytes)
}
