//! Ogg Opus files (RFC 7845): demuxed with the `ogg` crate, decoded with libopus. The
//! identification header parsed here also describes Opus in WebM/Matroska.

use std::io::{self, Cursor};

use ogg::{OggReadError, PacketReader};

use crate::decode::{Collector, DecodedAudio};
use crate::{Channels, MediaError, OPUS_SAMPLE_RATE, OpusDecoder};

/// Magic at the start of the identification header, the first packet of the stream.
const OPUS_HEAD: &[u8] = b"OpusHead";
/// Magic at the start of the comment header, the second packet.
const OPUS_TAGS: &[u8] = b"OpusTags";
/// Length of an Ogg page header before its segment table.
const PAGE_HEADER_LEN: usize = 27;

/// Whether `bytes` start an Ogg stream whose first packet is an Opus identification header.
pub(crate) fn is_ogg_opus(bytes: &[u8]) -> bool {
    if !bytes.starts_with(b"OggS") || bytes.len() < PAGE_HEADER_LEN {
        return false;
    }
    let segments = usize::from(bytes[PAGE_HEADER_LEN - 1]);
    let body = PAGE_HEADER_LEN + segments;
    bytes.get(body..body + OPUS_HEAD.len()) == Some(OPUS_HEAD)
}

/// The fields of the identification header (`OpusHead`) that decoding needs.
pub(crate) struct OpusHead {
    /// Channel layout of the stream.
    pub(crate) channels: Channels,
    /// Samples (at 48 kHz) the encoder asked to discard at the start.
    pre_skip: usize,
    /// Linear factor from the header's Q7.8 dB output gain.
    gain: f32,
}

impl OpusHead {
    /// Turns the concatenated decoder output into the stream's audio: cuts it at `end`
    /// (samples including pre-skip, if known), drops the pre-skip and applies the output gain.
    pub(crate) fn finish(&self, samples: &mut Vec<f32>, end: Option<u64>) {
        if let Some(end) = end.and_then(|g| usize::try_from(g).ok()) {
            // The last packet may hold padding beyond the end the encoder declared.
            samples.truncate(end.max(self.pre_skip));
        }
        samples.drain(..self.pre_skip.min(samples.len()));
        if self.gain != 1.0 {
            samples.iter_mut().for_each(|s| *s *= self.gain);
        }
    }
}

/// Parses an `OpusHead` packet (RFC 7845, section 5.1).
pub(crate) fn parse_head(packet: &[u8], origin: &str) -> Result<OpusHead, MediaError> {
    let corrupt = |detail: String| MediaError::Corrupt {
        origin: origin.to_owned(),
        location: "the OpusHead header".to_owned(),
        detail,
    };
    if !packet.starts_with(OPUS_HEAD) {
        return Err(corrupt("the OpusHead magic is missing".to_owned()));
    }
    if packet.len() < 19 {
        return Err(corrupt(format!(
            "header is {} bytes, needs at least 19",
            packet.len()
        )));
    }
    let version = packet[8];
    // Versions 0-15 share one layout (RFC 7845, section 5.1); higher majors are incompatible.
    if version > 15 {
        return Err(MediaError::UnsupportedFormat {
            origin: origin.to_owned(),
            found: format!("Ogg Opus version {version}"),
        });
    }
    let channel_count = packet[9];
    let pre_skip = usize::from(u16::from_le_bytes([packet[10], packet[11]]));
    let gain_q8 = i16::from_le_bytes([packet[16], packet[17]]);
    let mapping_family = packet[18];
    let channels = match (mapping_family, channel_count) {
        (0, 1) => Channels::Mono,
        (0, 2) => Channels::Stereo,
        (0, count) => return Err(corrupt(format!("{count} channels in mapping family 0"))),
        (family, count) => {
            return Err(MediaError::UnsupportedFormat {
                origin: origin.to_owned(),
                found: format!(
                    "multichannel Ogg Opus ({count} channels, mapping family {family}); \
                     only mono and stereo are supported"
                ),
            });
        }
    };
    let gain = 10f32.powf(f32::from(gain_q8) / (20.0 * 256.0));
    Ok(OpusHead {
        channels,
        pre_skip,
        gain,
    })
}

/// Decodes an Ogg Opus file into mono 48 kHz samples, honouring pre-skip, end trimming and
/// output gain. Only the first logical stream is decoded.
pub(crate) fn decode(bytes: &[u8], origin: &str) -> Result<DecodedAudio, MediaError> {
    let mut reader = PacketReader::new(Cursor::new(bytes));
    let corrupt = |location: &str, err: OggReadError| MediaError::Corrupt {
        origin: origin.to_owned(),
        location: location.to_owned(),
        detail: err.to_string(),
    };
    let missing = |location: &str| MediaError::Corrupt {
        origin: origin.to_owned(),
        location: location.to_owned(),
        detail: "the stream ends before it".to_owned(),
    };

    let head_packet = reader
        .read_packet()
        .map_err(|err| corrupt("the OpusHead header", err))?
        .ok_or_else(|| missing("the OpusHead header"))?;
    let head = parse_head(&head_packet.data, origin)?;
    let serial = head_packet.stream_serial();

    let tags = next_packet_of(&mut reader, serial)
        .map_err(|err| corrupt("the OpusTags header", err))?
        .ok_or_else(|| missing("the OpusTags header"))?;
    if !tags.data.starts_with(OPUS_TAGS) {
        return Err(MediaError::Corrupt {
            origin: origin.to_owned(),
            location: "the second packet".to_owned(),
            detail: "expected an OpusTags header".to_owned(),
        });
    }

    let mut decoder = OpusDecoder::new(head.channels)?;
    let mut collector = Collector::new(origin, OPUS_SAMPLE_RATE);
    // Granule position of the last page seen: the count of samples (including pre-skip) up to
    // the end of that page, which is how Ogg Opus marks the true end of the audio.
    let mut end_granule = None;
    loop {
        let packet = match next_packet_of(&mut reader, serial) {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            // A file cut short ends where it ends.
            Err(OggReadError::ReadError(err)) if err.kind() == io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(err) => {
                collector.fail_demux("Ogg", &err.to_string())?;
                break;
            }
        };
        match decoder.decode(&packet.data) {
            Ok(pcm) => {
                collector.samples_mut().extend(pcm);
                collector.packet_ok();
            }
            Err(err) => collector.packet_failed(&err.to_string()),
        }
        end_granule = Some(packet.absgp_page());
        if packet.last_in_stream() {
            break;
        }
    }

    head.finish(collector.samples_mut(), end_granule);
    collector.finish(head.channels.count(), "Ogg Opus")
}

/// The next packet of the logical stream `serial`, skipping interleaved streams.
fn next_packet_of(
    reader: &mut PacketReader<Cursor<&[u8]>>,
    serial: u32,
) -> Result<Option<ogg::Packet>, OggReadError> {
    loop {
        match reader.read_packet()? {
            Some(packet) if packet.stream_serial() != serial => continue,
            other => return Ok(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{best_lag_correlation, sine};
    use crate::write_wav_file;
    use std::process::Command;
    use viva_test_support::scratch_dir;

    #[test]
    fn opusenc_file_honours_pre_skip_and_length() {
        let scratch = scratch_dir("media-opusenc_file_honours_pre_skip_and_length");
        let dir = scratch.path();
        let wav = dir.join("tone.wav");
        let opus = dir.join("tone.opus");
        // 0.75 s: not a whole number of 20 ms packets, so end trimming matters.
        let tone = sine(440.0, 0.5, 48_000, 36_000);
        write_wav_file(&wav, 48_000, &tone).unwrap();
        let status = Command::new("opusenc")
            .args(["--quiet", "--bitrate", "64"])
            .arg(&wav)
            .arg(&opus)
            .status()
            .expect("opusenc is installed by scripts/setup");
        assert!(status.success());

        let bytes = std::fs::read(&opus).unwrap();
        assert!(is_ogg_opus(&bytes));
        let decoded = decode(&bytes, "tone.opus").unwrap();
        assert_eq!(decoded.sample_rate, 48_000);
        assert_eq!(decoded.channels, 1);
        assert_eq!(decoded.samples.len(), tone.len());
        // With pre-skip honoured the decoded audio lines up with the source. Without it, the
        // 6.5 ms encoder delay would shift the 440 Hz tone by 0.86 of a period (correlation
        // about 0.63).
        let (_, correlation) = best_lag_correlation(&tone[4_800..], &decoded.samples[4_800..], 0);
        assert!(correlation > 0.95, "correlation {correlation}");
    }

    #[test]
    fn rejects_bad_headers() {
        let mut head = b"OpusHead\x01\x01\x38\x01\x80\xbb\0\0\0\0\0".to_vec();
        assert!(parse_head(&head, "x").is_ok());
        head[18] = 1;
        head[9] = 6;
        assert!(matches!(
            parse_head(&head, "x"),
            Err(MediaError::UnsupportedFormat { .. })
        ));
        head[18] = 0;
        head[9] = 0;
        assert!(matches!(
            parse_head(&head, "x"),
            Err(MediaError::Corrupt { .. })
        ));
        assert!(parse_head(&head[..10], "x").is_err());
        head[8] = 16;
        assert!(matches!(
            parse_head(&head, "x"),
            Err(MediaError::UnsupportedFormat { .. })
        ));
        assert!(!is_ogg_opus(b"OggS"));
        assert!(!is_ogg_opus(b"RIFF....WAVE"));
    }
}
