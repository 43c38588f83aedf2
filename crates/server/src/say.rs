//! `viva say TEXT --out FILE.wav`: the local voice, to a file.

use anyhow::{Context, bail};
use viva_media::write_wav_file;

use crate::cli::SayArgs;
use crate::config::Config;
use crate::engines;

pub fn run(mut config: Config, args: &SayArgs) -> anyhow::Result<()> {
    if args.text.trim().is_empty() {
        bail!("nothing to say: the text is empty");
    }
    if let Some(voice) = &args.voice {
        config.tts.voice = voice.clone();
    }
    let tts = engines::text_to_speech(&config)?;
    let samples = tts.synthesize(&args.text)?;
    write_wav_file(&args.out, tts.sample_rate(), &samples)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    Ok(())
}
