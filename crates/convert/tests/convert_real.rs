//! Converts the real tiny.en CTranslate2 model afresh, checks the result is exactly the size of
//! whisper.cpp's official `ggml-tiny.en.bin`, then transcribes real read speech with it.
//!
//! The CTranslate2 model is the one `scripts/setup` unpacks into its cache
//! (`$VIVA_CACHE_DIR`, default `~/.cache/viva`, then `ct2/tiny.en`); `VIVA_CT2_TINY_EN` can
//! point elsewhere. Missing inputs fail the test: run scripts/setup.

use std::fs;
use std::path::PathBuf;

use viva_convert::{WhisperHparams, convert_ct2_to_ggml};
use viva_media::decode_file;
use viva_speech::{SpeechToText, SttConfig, Vocabulary, word_error_rate};
use viva_test_support::models::{cached, speech_clip};
use viva_test_support::scratch_dir;

/// Size of the official `ggml-tiny.en.bin` (whisper.cpp's convert-pt-to-ggml.py output).
const OFFICIAL_TINY_EN_BYTES: u64 = 77_704_715;

fn ct2_tiny_en() -> PathBuf {
    match std::env::var_os("VIVA_CT2_TINY_EN") {
        Some(dir) => PathBuf::from(dir),
        None => cached("ct2/tiny.en"),
    }
}

#[test]
fn converted_tiny_en_has_official_size_and_transcribes_speech() {
    let model_dir = ct2_tiny_en();
    let scratch = scratch_dir("convert-real");
    let out = scratch.path().join("ggml-tiny.en.bin");

    let summary = convert_ct2_to_ggml(&model_dir, &out)
        .unwrap_or_else(|e| panic!("{e} (run scripts/setup to unpack the model)"));
    assert_eq!(
        summary.hparams,
        WhisperHparams {
            n_vocab: 51_864,
            n_audio_ctx: 1500,
            n_audio_state: 384,
            n_audio_head: 6,
            n_audio_layer: 4,
            n_text_ctx: 448,
            n_text_state: 384,
            n_text_head: 6,
            n_text_layer: 4,
            n_mels: 80,
        }
    );
    assert_eq!(summary.vocabulary_tokens, 50_257);
    assert_eq!(summary.tensors, 167);
    assert_eq!(summary.bytes_written, OFFICIAL_TINY_EN_BYTES);
    assert_eq!(fs::metadata(&out).unwrap().len(), OFFICIAL_TINY_EN_BYTES);

    let stt = SpeechToText::load(&SttConfig::new(&out)).expect("whisper.cpp loads the model");
    let audio = decode_file(&speech_clip("librivox-0870")).unwrap();
    let heard = stt
        .transcribe_recording(&audio.samples, &Vocabulary::default())
        .unwrap()
        .text;
    let said = "and mister john dashwood had then leisure to consider how much there might be \
                prudently in his power to do for them";
    // "Mr." for "mister" is the only difference whisper makes here.
    assert!(
        word_error_rate(said, &heard) <= 1.0 / 22.0,
        "heard {heard:?}"
    );
}
