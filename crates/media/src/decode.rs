//! Decoding whole audio files (uploaded greetings, test clips, recordings) into mono samples.
//!
//! WAV, FLAC, MP3 and Ogg Vorbis go through symphonia; Ogg Opus goes through the `ogg` crate
//! and libopus. symphonia has no Opus decoder, so Opus in WebM (what browsers record) is
//! demuxed by symphonia and decoded by libopus.

use std::io::{self, Cursor};
use std::path::Path;
use std::time::Duration;

use symphonia::core::audio::GenericAudioBufferRef;
use symphonia::core::codecs::audio::well_known as codec_ids;
use symphonia::core::codecs::audio::{AudioCodecId, AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use crate::frame::samples_to_duration;
use crate::ogg_opus::{self, OpusHead};
use crate::{MediaError, OPUS_SAMPLE_RATE, OpusDecoder};

/// A decoded audio file: mono samples at the file's own sample rate.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedAudio {
    /// Samples per second (48000 for Opus).
    pub sample_rate: u32,
    /// Channel count of the original file; `samples` is their average.
    pub channels: u16,
    /// Mono samples in `[-1, 1]` (lossy codecs may overshoot slightly).
    pub samples: Vec<f32>,
}

impl DecodedAudio {
    /// Length of the audio.
    pub fn duration(&self) -> Duration {
        samples_to_duration(self.samples.len(), self.sample_rate)
    }
}

/// Decodes an audio file, downmixing it to mono.
///
/// Supports WAV (16/24/32-bit PCM, 32-bit float, mu-law, A-law), FLAC, MP3, Ogg Vorbis,
/// Ogg Opus and WebM Opus, detected from the content rather than the file name. A recording
/// that was cut off (e.g. by a crash) decodes up to where it ends.
pub fn decode_file(path: &Path) -> Result<DecodedAudio, MediaError> {
    let bytes = std::fs::read(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => MediaError::FileNotFound {
            path: path.to_owned(),
        },
        _ => MediaError::Unreadable {
            path: path.to_owned(),
            source,
        },
    })?;
    decode(&bytes, &path.display().to_string())
}

/// Decodes audio held in memory (e.g. an HTTP upload), like [`decode_file`].
pub fn decode_bytes(bytes: &[u8]) -> Result<DecodedAudio, MediaError> {
    decode(bytes, &format!("audio data ({} bytes)", bytes.len()))
}

fn decode(bytes: &[u8], origin: &str) -> Result<DecodedAudio, MediaError> {
    if bytes.is_empty() {
        return Err(MediaError::Empty {
            origin: origin.to_owned(),
            detail: "it is 0 bytes long".to_owned(),
        });
    }
    if ogg_opus::is_ogg_opus(bytes) {
        return ogg_opus::decode(bytes, origin);
    }
    decode_with_symphonia(bytes, origin)
}

fn decode_with_symphonia(bytes: &[u8], origin: &str) -> Result<DecodedAudio, MediaError> {
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let mut reader = symphonia::default::get_probe()
        .probe(
            &Hint::new(),
            source,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|err| match (sniff(bytes), err) {
            (Sniffed::Audio(container), SymphoniaError::Unsupported(feature)) => {
                MediaError::UnsupportedFormat {
                    origin: origin.to_owned(),
                    found: format!("a {container} file that cannot be read ({feature})"),
                }
            }
            (Sniffed::Audio(container), err) => MediaError::Corrupt {
                origin: origin.to_owned(),
                location: format!("the {container} header"),
                detail: err.to_string(),
            },
            (Sniffed::Other(found), _) => MediaError::UnsupportedFormat {
                origin: origin.to_owned(),
                found,
            },
        })?;
    let container = reader.format_info().short_name;

    let track =
        reader
            .default_track(TrackType::Audio)
            .ok_or_else(|| MediaError::UnsupportedFormat {
                origin: origin.to_owned(),
                found: format!("a {container} file with no audio track"),
            })?;
    let track_id = track.id;
    let Some(params) = track.codec_params.as_ref().and_then(|p| p.audio()) else {
        return Err(MediaError::UnsupportedFormat {
            origin: origin.to_owned(),
            found: format!("a {container} file whose first track is not audio"),
        });
    };
    let corrupt_header = |detail: &str| MediaError::Corrupt {
        origin: origin.to_owned(),
        location: format!("the {container} header"),
        detail: detail.to_owned(),
    };
    let is_opus = params.codec == codec_ids::CODEC_ID_OPUS;
    let sample_rate = match params.sample_rate {
        // Opus always decodes at 48 kHz, whatever rate the container declares.
        _ if is_opus => OPUS_SAMPLE_RATE,
        Some(rate) if rate > 0 => rate,
        _ => return Err(corrupt_header("no sample rate")),
    };
    let channels = params.channels.as_ref().map_or(0, |c| c.count());
    let channels = u16::try_from(channels)
        .ok()
        .filter(|&c| c > 0)
        .ok_or_else(|| corrupt_header("no usable channel count"))?;
    let mut decoder = if is_opus {
        let head_packet = params.extra_data.as_deref().unwrap_or_default();
        let head = ogg_opus::parse_head(head_packet, origin)?;
        let opus = OpusDecoder::new(head.channels)?;
        PacketDecoder::Opus(opus, head)
    } else {
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(params, &AudioDecoderOptions::default())
            .map_err(|err| match err {
                SymphoniaError::Unsupported(_) => MediaError::UnsupportedFormat {
                    origin: origin.to_owned(),
                    found: format!("{} audio in a {container} file", codec_name(params.codec)),
                },
                other => corrupt_header(&other.to_string()),
            })?;
        PacketDecoder::Symphonia(decoder)
    };

    let mut collector = Collector::new(origin, sample_rate);
    let mut interleaved = Vec::new();
    loop {
        let packet = match reader.next_packet() {
            Ok(Some(packet)) => packet,
            // End of stream, or a chained stream begins: keep the first one.
            Ok(None) | Err(SymphoniaError::ResetRequired) => break,
            // A file cut short (e.g. a recording interrupted by a crash) ends where it ends.
            Err(SymphoniaError::IoError(err)) if err.kind() == io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(err) => {
                collector.fail_demux(container, &err.to_string())?;
                break;
            }
        };
        if packet.track_id != track_id {
            continue;
        }
        let decoded = match &mut decoder {
            PacketDecoder::Symphonia(decoder) => decoder
                .decode(&packet)
                .map(|buffer| downmix(&buffer, &mut interleaved, collector.samples_mut()))
                .map_err(|err| err.to_string()),
            PacketDecoder::Opus(decoder, _) => decoder
                .decode(&packet.data)
                .map(|pcm| collector.samples_mut().extend(pcm))
                .map_err(|err| err.to_string()),
        };
        match decoded {
            Ok(()) => collector.packet_ok(),
            Err(detail) => collector.packet_failed(&detail),
        }
    }
    if let PacketDecoder::Opus(_, head) = &decoder {
        head.finish(collector.samples_mut(), None);
    }
    collector.finish(channels, container)
}

/// Who turns the container's packets into samples.
enum PacketDecoder {
    Symphonia(Box<dyn AudioDecoder>),
    /// libopus, with the stream's identification header (pre-skip, gain).
    Opus(OpusDecoder, OpusHead),
}

/// Appends the average of the buffer's channels to `mono`.
fn downmix(buffer: &GenericAudioBufferRef<'_>, interleaved: &mut Vec<f32>, mono: &mut Vec<f32>) {
    let channels = buffer.spec().channels().count().max(1);
    buffer.copy_to_vec_interleaved(interleaved);
    if channels == 1 {
        mono.extend_from_slice(interleaved);
    } else {
        let scale = 1.0 / channels as f32;
        mono.extend(
            interleaved
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() * scale),
        );
    }
}

/// Gathers decoded samples and applies one policy to damaged packets for every format:
/// isolated bad packets are skipped (as players do), but a file where nothing decodes or
/// where more than a quarter of the packets are bad is reported as corrupt.
pub(crate) struct Collector<'a> {
    origin: &'a str,
    sample_rate: u32,
    samples: Vec<f32>,
    good_packets: usize,
    bad_packets: usize,
    first_failure: Option<(String, String)>,
}

impl<'a> Collector<'a> {
    pub(crate) fn new(origin: &'a str, sample_rate: u32) -> Self {
        Collector {
            origin,
            sample_rate,
            samples: Vec::new(),
            good_packets: 0,
            bad_packets: 0,
            first_failure: None,
        }
    }

    pub(crate) fn samples_mut(&mut self) -> &mut Vec<f32> {
        &mut self.samples
    }

    pub(crate) fn packet_ok(&mut self) {
        self.good_packets += 1;
    }

    pub(crate) fn packet_failed(&mut self, detail: &str) {
        if self.first_failure.is_none() {
            self.first_failure = Some((self.here(), detail.to_owned()));
        }
        self.bad_packets += 1;
    }

    /// The container itself is damaged. Audio decoded so far is kept (the damage is at the
    /// tail); with none, the file is corrupt.
    pub(crate) fn fail_demux(&mut self, container: &str, detail: &str) -> Result<(), MediaError> {
        if self.samples.is_empty() {
            return Err(MediaError::Corrupt {
                origin: self.origin.to_owned(),
                location: format!("{container} {}", self.here()),
                detail: detail.to_owned(),
            });
        }
        Ok(())
    }

    /// "packet 12 (0.24 s)": where the next packet starts.
    fn here(&self) -> String {
        let packet = self.good_packets + self.bad_packets + 1;
        let seconds = self.samples.len() as f64 / f64::from(self.sample_rate);
        format!("packet {packet} ({seconds:.2} s)")
    }

    pub(crate) fn finish(self, channels: u16, container: &str) -> Result<DecodedAudio, MediaError> {
        let total_packets = self.good_packets + self.bad_packets;
        let too_damaged = self.samples.is_empty() || self.bad_packets * 4 > total_packets;
        if let Some((location, detail)) = self.first_failure
            && too_damaged
        {
            return Err(MediaError::Corrupt {
                origin: self.origin.to_owned(),
                location,
                detail: format!(
                    "{detail} ({} of {total_packets} packets damaged)",
                    self.bad_packets
                ),
            });
        }
        if self.samples.is_empty() {
            return Err(MediaError::Empty {
                origin: self.origin.to_owned(),
                detail: format!("the {container} stream holds no samples"),
            });
        }
        Ok(DecodedAudio {
            sample_rate: self.sample_rate,
            channels,
            samples: self.samples,
        })
    }
}

/// Readable names for codecs symphonia can demux but not decode.
fn codec_name(codec: AudioCodecId) -> String {
    let name = match codec {
        codec_ids::CODEC_ID_SPEEX => "Speex",
        codec_ids::CODEC_ID_AC3 => "AC-3",
        codec_ids::CODEC_ID_EAC3 => "E-AC-3",
        codec_ids::CODEC_ID_DCA => "DTS",
        codec_ids::CODEC_ID_WMA => "WMA",
        codec_ids::CODEC_ID_ADPCM_G722 => "G.722",
        codec_ids::CODEC_ID_ADPCM_G726 | codec_ids::CODEC_ID_ADPCM_G726LE => "G.726",
        _ => return format!("codec {codec}"),
    };
    name.to_owned()
}

enum Sniffed {
    /// A container we decode, so a failure means damage.
    Audio(&'static str),
    /// Anything else, described for the user.
    Other(String),
}

/// Guesses what a file is from its first bytes, to tell the user what they uploaded.
fn sniff(bytes: &[u8]) -> Sniffed {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(b"RIFF") && bytes.get(8..12) == Some(b"WAVE") {
        return Sniffed::Audio("WAV");
    }
    if starts(b"fLaC") {
        return Sniffed::Audio("FLAC");
    }
    if starts(b"OggS") {
        return Sniffed::Audio("Ogg");
    }
    // An ID3 tag, or an MPEG audio frame sync (11 set bits).
    if starts(b"ID3") || (bytes.len() > 1 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0) {
        return Sniffed::Audio("MP3");
    }
    if starts(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return Sniffed::Audio("WebM/Matroska");
    }
    let other = if starts(b"RIFF") {
        let form = String::from_utf8_lossy(bytes.get(8..12).unwrap_or_default()).into_owned();
        format!("a RIFF file of type {form:?} (not WAVE)")
    } else if bytes.get(4..8) == Some(b"ftyp") {
        "an MP4/M4A/MOV file".to_owned()
    } else if starts(b"FORM") {
        "an AIFF/IFF file".to_owned()
    } else if starts(b"\x89PNG") || starts(&[0xFF, 0xD8, 0xFF]) || starts(b"GIF8") {
        "an image".to_owned()
    } else if starts(b"%PDF") {
        "a PDF document".to_owned()
    } else if starts(b"PK\x03\x04") {
        "a ZIP archive (or an office document)".to_owned()
    } else if looks_like_text(bytes) {
        "text, not audio".to_owned()
    } else {
        let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("unrecognised data starting with bytes {}", head.join(" "))
    };
    Sniffed::Other(other)
}

fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(512)];
    match std::str::from_utf8(head) {
        Ok(text) => text.chars().all(|c| !c.is_control() || c.is_whitespace()),
        // A multi-byte character cut at the 512-byte boundary is still text.
        Err(err) => err.valid_up_to() + 4 > head.len() && err.error_len().is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{sinad_db, sine, zero_crossing_frequency};
    use crate::write_wav_file;
    use std::path::PathBuf;
    use std::process::Command;
    use viva_test_support::scratch_dir;

    /// Converts one second of a 1 kHz sine at 48 kHz into `name` with ffmpeg, using the given
    /// output arguments.
    fn ffmpeg(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
        let source = dir.join("source.wav");
        if !source.exists() {
            write_wav_file(&source, 48_000, &sine(1000.0, 0.5, 48_000, 48_000)).unwrap();
        }
        let output = dir.join(name);
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(&source)
            .args(args)
            .arg(&output)
            .status()
            .expect("ffmpeg is installed by scripts/setup");
        assert!(status.success(), "ffmpeg failed for {name}");
        output
    }

    fn assert_tone(decoded: &DecodedAudio, rate: u32, channels: u16, min_sinad_db: f64) {
        assert_tone_within(decoded, rate, channels, min_sinad_db, 0.001);
    }

    fn assert_tone_within(
        decoded: &DecodedAudio,
        rate: u32,
        channels: u16,
        min_sinad_db: f64,
        max_duration_error_s: f64,
    ) {
        assert_eq!(decoded.sample_rate, rate);
        assert_eq!(decoded.channels, channels);
        let seconds = decoded.duration().as_secs_f64();
        let error = (seconds - 1.0).abs();
        assert!(error <= max_duration_error_s, "duration {seconds} s");
        let middle = &decoded.samples[rate as usize / 10..rate as usize * 9 / 10];
        let frequency = zero_crossing_frequency(middle, rate);
        assert!((frequency - 1000.0).abs() < 1.0, "frequency {frequency} Hz");
        let sinad = sinad_db(middle, 1000.0, rate);
        assert!(sinad > min_sinad_db, "SINAD {sinad:.1} dB");
    }

    #[test]
    fn decodes_wav_variants() {
        let scratch = scratch_dir("media-decodes_wav_variants");
        let dir = scratch.path();
        for (name, codec, rate, min_sinad) in [
            ("s16.wav", "pcm_s16le", "16000", 60.0),
            ("s24.wav", "pcm_s24le", "48000", 80.0),
            ("f32.wav", "pcm_f32le", "22050", 80.0),
            ("mulaw.wav", "pcm_mulaw", "8000", 30.0),
            ("alaw.wav", "pcm_alaw", "8000", 30.0),
        ] {
            let path = ffmpeg(dir, name, &["-c:a", codec, "-ar", rate]);
            let decoded = decode_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_tone(&decoded, rate.parse().unwrap(), 1, min_sinad);
        }
    }

    #[test]
    fn decodes_compressed_formats() {
        let scratch = scratch_dir("media-decodes_compressed_formats");
        let dir = scratch.path();
        // Gapless formats come back sample-exact; WebM keeps the encoder's padding of the last
        // 20 ms packet because symphonia does not expose Matroska's DiscardPadding.
        for (name, args, min_sinad, max_duration_error_s) in [
            ("tone.flac", &["-c:a", "flac"][..], 60.0, 0.0),
            (
                "tone.mp3",
                &["-c:a", "libmp3lame", "-b:a", "128k"][..],
                25.0,
                0.0,
            ),
            (
                "tone.ogg",
                &["-c:a", "libvorbis", "-q:a", "5"][..],
                25.0,
                0.0,
            ),
            (
                "tone.opus",
                &["-c:a", "libopus", "-b:a", "64k"][..],
                20.0,
                0.0,
            ),
            (
                "tone.webm",
                &["-c:a", "libopus", "-b:a", "64k"][..],
                20.0,
                0.020,
            ),
        ] {
            let path = ffmpeg(dir, name, args);
            let decoded = decode_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_tone_within(&decoded, 48_000, 1, min_sinad, max_duration_error_s);
        }
    }

    #[test]
    fn decodes_stereo_by_averaging() {
        let scratch = scratch_dir("media-decodes_stereo_by_averaging");
        let dir = scratch.path();
        let path = ffmpeg(dir, "stereo.flac", &["-ac", "2", "-c:a", "flac"]);
        let decoded = decode_file(&path).unwrap();
        assert_tone(&decoded, 48_000, 2, 60.0);
    }

    #[test]
    fn decodes_bytes_like_files() {
        let scratch = scratch_dir("media-decodes_bytes_like_files");
        let dir = scratch.path();
        let path = ffmpeg(dir, "bytes.wav", &["-c:a", "pcm_s16le"]);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(decode_bytes(&bytes).unwrap(), decode_file(&path).unwrap());
    }

    #[test]
    fn truncated_wav_decodes_up_to_the_cut() {
        let scratch = scratch_dir("media-truncated_wav_decodes_up_to_the_cut");
        let dir = scratch.path();
        let path = ffmpeg(dir, "cut.wav", &["-c:a", "pcm_s16le"]);
        let bytes = std::fs::read(&path).unwrap();
        // Keep the header and half of the samples; the header still claims all of them.
        let data_start = bytes.windows(4).position(|w| w == b"data").unwrap() + 8;
        let cut = &bytes[..data_start + 48_000];
        let decoded = decode_bytes(cut).unwrap();
        assert_eq!(decoded.samples.len(), 24_000);
    }

    #[test]
    fn errors_say_what_and_where() {
        let scratch = scratch_dir("media-errors_say_what_and_where");
        let dir = scratch.path();
        let missing = dir.join("does-not-exist.wav");
        let error = decode_file(&missing).unwrap_err();
        assert!(matches!(error, MediaError::FileNotFound { .. }), "{error}");
        assert!(error.to_string().contains("does-not-exist.wav"), "{error}");

        let error = decode_file(dir).unwrap_err();
        assert!(matches!(error, MediaError::Unreadable { .. }), "{error}");

        let empty = dir.join("empty.wav");
        std::fs::write(&empty, b"").unwrap();
        let error = decode_file(&empty).unwrap_err();
        assert!(matches!(error, MediaError::Empty { .. }), "{error}");
        assert!(error.to_string().contains("empty.wav"), "{error}");

        let error = decode_bytes(b"Hello, this is a transcript, not a recording.\n").unwrap_err();
        match &error {
            MediaError::UnsupportedFormat { found, .. } => {
                assert!(found.contains("text"), "{found}")
            }
            other => panic!("{other}"),
        }
        assert!(
            error.to_string().contains("FLAC"),
            "lists supported formats: {error}"
        );

        let error = decode_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap_err();
        assert!(error.to_string().contains("an image"), "{error}");
    }

    #[test]
    fn wav_header_without_data_is_empty() {
        let scratch = scratch_dir("media-wav_header_without_data_is_empty");
        let dir = scratch.path();
        let path = dir.join("header-only.wav");
        write_wav_file(&path, 16_000, &[]).unwrap();
        let error = decode_file(&path).unwrap_err();
        assert!(matches!(error, MediaError::Empty { .. }), "{error}");
    }

    /// A tiny deterministic generator, so fuzz failures can be reproduced.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for round in 0..300 {
            let len = (rng.next() % 4096) as usize + 1;
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            // Random data must be rejected, not decoded into noise.
            assert!(decode_bytes(&bytes).is_err(), "round {round} decoded");
        }
    }

    #[test]
    fn damaged_and_truncated_files_never_panic() {
        let scratch = scratch_dir("media-damaged_and_truncated_files_never_panic");
        let dir = scratch.path();
        let mut rng = XorShift(0x0123_4567_89AB_CDEF);
        for (name, args) in [
            ("fuzz.wav", &["-c:a", "pcm_s16le", "-ar", "8000"][..]),
            ("fuzz.flac", &["-c:a", "flac", "-ar", "8000"][..]),
            ("fuzz.mp3", &["-c:a", "libmp3lame", "-ar", "8000"][..]),
            ("fuzz.ogg", &["-c:a", "libvorbis", "-ar", "8000"][..]),
            ("fuzz.opus", &["-c:a", "libopus"][..]),
            ("fuzz.webm", &["-c:a", "libopus"][..]),
        ] {
            let original = std::fs::read(ffmpeg(dir, name, args)).unwrap();
            for cut in [1, 4, 12, 44, 100, original.len() / 2, original.len() - 1] {
                let _ = decode_bytes(&original[..cut.min(original.len())]);
            }
            for _ in 0..40 {
                let mut damaged = original.clone();
                for _ in 0..1 + rng.next() % 16 {
                    let at = (rng.next() as usize) % damaged.len();
                    damaged[at] = rng.next() as u8;
                }
                if let Ok(decoded) = decode_bytes(&damaged) {
                    assert!(decoded.sample_rate > 0 && decoded.channels > 0, "{name}");
                }
            }
        }
    }
}
