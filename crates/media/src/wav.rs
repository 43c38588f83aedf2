//! Crash-safe 16-bit PCM WAV recording.
//!
//! A call recording must survive the server dying mid-call. [`WavWriter`] appends samples as
//! they come and every [`flush`](WavWriter::flush) rewrites the RIFF and data sizes in the
//! header, so the file on disk is a valid, playable WAV up to the last flush.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::frame::f32_to_i16;
use crate::{Channels, MediaError};

/// Size of the canonical PCM WAV header written here.
const HEADER_LEN: u64 = 44;
/// Byte offset of the RIFF chunk size field.
const RIFF_SIZE_OFFSET: u64 = 4;
/// Byte offset of the data chunk size field.
const DATA_SIZE_OFFSET: u64 = 40;
/// Bytes per 16-bit sample.
const BYTES_PER_SAMPLE: u16 = 2;

/// Writes a 16-bit PCM WAV file incrementally.
///
/// Dropping the writer flushes it (errors are ignored then; call [`finalize`](Self::finalize)
/// to see them).
///
/// ```no_run
/// use std::path::Path;
/// use viva_media::{Channels, WavWriter};
///
/// let mut recording = WavWriter::create(Path::new("call.wav"), 16_000, Channels::Stereo)?;
/// recording.write_stereo(&[0.1; 320], &[-0.1; 320])?; // candidate left, interviewer right
/// recording.flush()?; // call.wav now plays these 20 ms, whatever happens next
/// recording.finalize()?;
/// # Ok::<(), viva_media::MediaError>(())
/// ```
pub struct WavWriter {
    path: PathBuf,
    /// `None` only after `finalize` has taken it.
    out: Option<BufWriter<File>>,
    channels: Channels,
    /// Bytes of sample data written so far (flushed or not).
    data_len: u64,
    /// Reusable buffer for the little-endian encoding of one write.
    bytes: Vec<u8>,
}

impl WavWriter {
    /// Creates (or truncates) `path` and writes a header for an empty recording.
    pub fn create(path: &Path, sample_rate: u32, channels: Channels) -> Result<Self, MediaError> {
        if sample_rate == 0 {
            return Err(MediaError::ZeroSampleRate {
                context: "WAV recording",
            });
        }
        let write_error = |source| MediaError::WavWrite {
            path: path.to_owned(),
            source,
        };
        let file = File::create(path).map_err(write_error)?;
        let mut out = BufWriter::with_capacity(64 * 1024, file);
        out.write_all(&header(sample_rate, channels, 0))
            .map_err(write_error)?;
        let mut writer = WavWriter {
            path: path.to_owned(),
            out: Some(out),
            channels,
            data_len: 0,
            bytes: Vec::new(),
        };
        // The empty recording is already a valid file on disk.
        writer.flush()?;
        Ok(writer)
    }

    /// Path of the recording.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Duration written so far, in samples per channel.
    pub fn samples_written(&self) -> u64 {
        self.data_len / u64::from(BYTES_PER_SAMPLE * self.channels.count())
    }

    /// Appends mono samples. The writer must have been created [`Channels::Mono`].
    pub fn write_mono(&mut self, samples: &[f32]) -> Result<(), MediaError> {
        self.expect_layout(Channels::Mono)?;
        self.bytes.clear();
        for &sample in samples {
            self.bytes
                .extend_from_slice(&f32_to_i16(sample).to_le_bytes());
        }
        self.append_bytes()
    }

    /// Appends stereo samples, interleaving `left` and `right` (which must be equally long).
    /// The writer must have been created [`Channels::Stereo`].
    pub fn write_stereo(&mut self, left: &[f32], right: &[f32]) -> Result<(), MediaError> {
        self.expect_layout(Channels::Stereo)?;
        if left.len() != right.len() {
            return Err(MediaError::ChannelLengthMismatch {
                left: left.len(),
                right: right.len(),
            });
        }
        self.bytes.clear();
        for (&l, &r) in left.iter().zip(right) {
            self.bytes.extend_from_slice(&f32_to_i16(l).to_le_bytes());
            self.bytes.extend_from_slice(&f32_to_i16(r).to_le_bytes());
        }
        self.append_bytes()
    }

    /// Writes buffered samples to the file, updates the header sizes and asks the operating
    /// system to put both on disk, so the file is complete up to here even if the process or
    /// the machine dies next.
    ///
    /// Each flush waits for the disk (two `fdatasync`s), so flush about once a second or at the
    /// end of each turn, not on every 20 ms frame.
    pub fn flush(&mut self) -> Result<(), MediaError> {
        let data_len = self.data_len;
        let result = match self.out.as_mut() {
            Some(out) => update_sizes(out, data_len),
            None => Ok(()),
        };
        result.map_err(|source| self.write_error(source))
    }

    /// Flushes and closes the file, reporting any error.
    pub fn finalize(mut self) -> Result<(), MediaError> {
        self.flush()?;
        self.out = None;
        Ok(())
    }

    fn expect_layout(&self, given: Channels) -> Result<(), MediaError> {
        if self.channels != given {
            return Err(MediaError::ChannelLayoutMismatch {
                path: self.path.clone(),
                expected: self.channels,
                given,
            });
        }
        Ok(())
    }

    fn append_bytes(&mut self) -> Result<(), MediaError> {
        let new_len = self.data_len + self.bytes.len() as u64;
        // The RIFF size field (data + 36) must fit in 32 bits.
        if new_len + HEADER_LEN - 8 > u64::from(u32::MAX) {
            return Err(MediaError::WavTooLong {
                path: self.path.clone(),
            });
        }
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        out.write_all(&self.bytes)
            .map_err(|source| MediaError::WavWrite {
                path: self.path.clone(),
                source,
            })?;
        self.data_len = new_len;
        Ok(())
    }

    fn write_error(&self, source: io::Error) -> MediaError {
        MediaError::WavWrite {
            path: self.path.clone(),
            source,
        }
    }
}

impl fmt::Debug for WavWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WavWriter")
            .field("path", &self.path)
            .field("channels", &self.channels)
            .field("data_len", &self.data_len)
            .finish_non_exhaustive()
    }
}

impl Drop for WavWriter {
    fn drop(&mut self) {
        // Best effort: keep whatever was written playable when the owner forgot to finalize
        // or is unwinding.
        if let Some(out) = self.out.as_mut() {
            let _ = update_sizes(out, self.data_len);
        }
    }
}

/// Writes the sample data, then the sizes that cover it, then syncs. Data goes first so a
/// header never claims bytes that are not in the file.
fn update_sizes(out: &mut BufWriter<File>, data_len: u64) -> io::Result<()> {
    out.flush()?;
    let file = out.get_mut();
    file.sync_data()?;
    let data_size = data_len as u32;
    let riff_size = (data_len + HEADER_LEN - 8) as u32;
    file.seek(SeekFrom::Start(RIFF_SIZE_OFFSET))?;
    file.write_all(&riff_size.to_le_bytes())?;
    file.seek(SeekFrom::Start(DATA_SIZE_OFFSET))?;
    file.write_all(&data_size.to_le_bytes())?;
    file.seek(SeekFrom::End(0))?;
    file.sync_data()
}

/// The canonical 44-byte header of a 16-bit PCM WAV file.
fn header(sample_rate: u32, channels: Channels, data_len: u32) -> [u8; HEADER_LEN as usize] {
    let channel_count = channels.count();
    let block_align = channel_count * BYTES_PER_SAMPLE;
    let byte_rate = sample_rate * u32::from(block_align);
    let mut header = [0u8; HEADER_LEN as usize];
    let fields: [&[u8]; 13] = [
        b"RIFF",
        &(data_len + 36).to_le_bytes(),
        b"WAVE",
        b"fmt ",
        &16u32.to_le_bytes(),
        &1u16.to_le_bytes(), // WAVE_FORMAT_PCM
        &channel_count.to_le_bytes(),
        &sample_rate.to_le_bytes(),
        &byte_rate.to_le_bytes(),
        &block_align.to_le_bytes(),
        &(BYTES_PER_SAMPLE * 8).to_le_bytes(),
        b"data",
        &data_len.to_le_bytes(),
    ];
    let mut at = 0;
    for field in fields {
        header[at..at + field.len()].copy_from_slice(field);
        at += field.len();
    }
    header
}

/// How much audio a WAV file holds, by its header: for a recording a crash cut short, the
/// length up to its last flush.
pub fn wav_length(path: &Path) -> Result<std::time::Duration, MediaError> {
    let reader = hound::WavReader::open(path).map_err(|source| MediaError::WavRead {
        path: path.to_owned(),
        reason: source.to_string(),
    })?;
    let spec = reader.spec();
    Ok(std::time::Duration::from_secs_f64(
        f64::from(reader.duration()) / f64::from(spec.sample_rate.max(1)),
    ))
}

/// Makes a recording put together from pieces copied off as it grew (its header holds the
/// sizes of the moment its first piece was copied) say how much audio it holds: the sizes
/// are set to the whole frames the file carries. Returns that length.
pub fn repair_wav_sizes(path: &Path) -> Result<std::time::Duration, MediaError> {
    let failed = |source: io::Error| MediaError::WavRead {
        path: path.to_owned(),
        reason: source.to_string(),
    };
    let mut file = File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(failed)?;
    let length = file.metadata().map_err(failed)?.len();
    let mut header = [0u8; HEADER_LEN as usize];
    io::Read::read_exact(&mut file, &mut header).map_err(failed)?;
    let channels = u64::from(u16::from_le_bytes([header[22], header[23]]).max(1));
    let frame = channels * u64::from(BYTES_PER_SAMPLE);
    let data_len = (length - HEADER_LEN) / frame * frame;
    let data_len = data_len.min(u64::from(u32::MAX) - HEADER_LEN);
    file.set_len(HEADER_LEN + data_len).map_err(failed)?;
    file.seek(SeekFrom::Start(RIFF_SIZE_OFFSET))
        .map_err(failed)?;
    file.write_all(&((data_len + HEADER_LEN - 8) as u32).to_le_bytes())
        .map_err(failed)?;
    file.seek(SeekFrom::Start(DATA_SIZE_OFFSET))
        .map_err(failed)?;
    file.write_all(&(data_len as u32).to_le_bytes())
        .map_err(failed)?;
    file.sync_data().map_err(failed)?;
    drop(file);
    wav_length(path)
}

/// Writes mono `samples` to a complete 16-bit PCM WAV file at `path` in one go.
pub fn write_wav_file(path: &Path, sample_rate: u32, samples: &[f32]) -> Result<(), MediaError> {
    let mut writer = WavWriter::create(path, sample_rate, Channels::Mono)?;
    writer.write_mono(samples)?;
    writer.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::sine;
    use std::process::Command;
    use viva_test_support::scratch_dir;

    fn read_all(path: &Path) -> (hound::WavSpec, Vec<i16>) {
        let mut reader = hound::WavReader::open(path).unwrap();
        let spec = reader.spec();
        let samples = reader.samples::<i16>().map(Result::unwrap).collect();
        (spec, samples)
    }

    #[test]
    fn sizes_are_repaired_from_what_the_file_holds() {
        let dir = viva_test_support::scratch_dir("media-wav-repair");
        let path = dir.path().join("pieces.wav");
        let mut writer = WavWriter::create(&path, 8_000, Channels::Stereo).unwrap();
        writer.flush().unwrap();
        // A copy of the header from when the recording was empty, then 1 s and half a frame.
        let header = std::fs::read(&path).unwrap();
        drop(writer);
        let mut pieces = header.clone();
        pieces.extend(std::iter::repeat_n(0u8, 8_000 * 4 + 2));
        std::fs::write(&path, &pieces).unwrap();
        assert_eq!(wav_length(&path).unwrap(), std::time::Duration::ZERO);
        assert_eq!(
            repair_wav_sizes(&path).unwrap(),
            std::time::Duration::from_secs(1)
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 44 + 8_000 * 4);
    }

    #[test]
    fn flushed_samples_are_readable_without_finalize() {
        let scratch = scratch_dir("media-flushed_samples_are_readable_without_finalize");
        let dir = scratch.path();
        let path = dir.join("unfinalized.wav");
        let tone = sine(440.0, 0.5, 16_000, 16_000);
        let mut writer = WavWriter::create(&path, 16_000, Channels::Mono).unwrap();
        assert_eq!(
            read_all(&path).1.len(),
            0,
            "fresh file is a valid empty WAV"
        );
        writer.write_mono(&tone[..8_000]).unwrap();
        writer.flush().unwrap();
        writer.write_mono(&tone[8_000..]).unwrap();
        // Simulate a crash: the second half was never flushed, the writer never finalized.
        let (spec, samples) = read_all(&path);
        assert_eq!(spec.sample_rate, 16_000);
        assert_eq!(spec.channels, 1);
        assert_eq!(spec.bits_per_sample, 16);
        assert!(samples.len() >= 8_000);
        let expected: Vec<i16> = tone[..8_000].iter().map(|&s| f32_to_i16(s)).collect();
        assert_eq!(&samples[..8_000], expected.as_slice());
        std::mem::forget(writer); // no Drop flush: the process "died" here
        let (_, after_crash) = read_all(&path);
        assert_eq!(&after_crash[..8_000], expected.as_slice());
    }

    #[test]
    fn ffprobe_accepts_a_flushed_recording() {
        let scratch = scratch_dir("media-ffprobe_accepts_a_flushed_recording");
        let dir = scratch.path();
        let path = dir.join("probe.wav");
        let mut writer = WavWriter::create(&path, 8_000, Channels::Stereo).unwrap();
        let tone = sine(1000.0, 0.5, 8_000, 8_000);
        writer.write_stereo(&tone, &vec![0.0; tone.len()]).unwrap();
        writer.flush().unwrap();
        let probe = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name,sample_rate,channels",
            ])
            .args([
                "-show_entries",
                "format=duration",
                "-of",
                "default=noprint_wrappers=1",
            ])
            .arg(&path)
            .output()
            .expect("ffprobe is installed by scripts/setup");
        let report = String::from_utf8_lossy(&probe.stdout);
        assert!(
            probe.status.success(),
            "{}",
            String::from_utf8_lossy(&probe.stderr)
        );
        assert!(
            probe.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&probe.stderr)
        );
        assert!(report.contains("codec_name=pcm_s16le"), "{report}");
        assert!(report.contains("sample_rate=8000"), "{report}");
        assert!(report.contains("channels=2"), "{report}");
        assert!(report.contains("duration=1.000000"), "{report}");
        writer.finalize().unwrap();
    }

    #[test]
    fn stereo_is_interleaved_left_first() {
        let scratch = scratch_dir("media-stereo_is_interleaved_left_first");
        let dir = scratch.path();
        let path = dir.join("stereo.wav");
        let mut writer = WavWriter::create(&path, 48_000, Channels::Stereo).unwrap();
        writer.write_stereo(&[0.5, 0.25], &[-0.5, -0.25]).unwrap();
        assert_eq!(writer.samples_written(), 2);
        writer.finalize().unwrap();
        let (spec, samples) = read_all(&path);
        assert_eq!(spec.channels, 2);
        assert_eq!(samples, vec![16384, -16384, 8192, -8192]);
    }

    #[test]
    fn misuse_is_reported() {
        let scratch = scratch_dir("media-misuse_is_reported");
        let dir = scratch.path();
        let path = dir.join("misuse.wav");
        let mut mono = WavWriter::create(&path, 16_000, Channels::Mono).unwrap();
        assert!(matches!(
            mono.write_stereo(&[0.0], &[0.0]),
            Err(MediaError::ChannelLayoutMismatch { .. })
        ));
        drop(mono);
        let mut stereo = WavWriter::create(&path, 16_000, Channels::Stereo).unwrap();
        assert!(matches!(
            stereo.write_stereo(&[0.0; 3], &[0.0; 2]),
            Err(MediaError::ChannelLengthMismatch { left: 3, right: 2 })
        ));
        assert!(stereo.write_mono(&[0.0]).is_err());
        drop(stereo);
        assert!(matches!(
            WavWriter::create(&path, 0, Channels::Mono),
            Err(MediaError::ZeroSampleRate { .. })
        ));
        let missing_dir = dir.join("no-such-dir").join("x.wav");
        let error = WavWriter::create(&missing_dir, 16_000, Channels::Mono)
            .err()
            .unwrap();
        assert!(error.to_string().contains("no-such-dir"), "{error}");
    }

    #[test]
    fn dropping_the_writer_keeps_unflushed_samples() {
        let scratch = scratch_dir("media-dropping_the_writer_keeps_unflushed_samples");
        let dir = scratch.path();
        let path = dir.join("dropped.wav");
        let mut writer = WavWriter::create(&path, 16_000, Channels::Mono).unwrap();
        writer.write_mono(&[0.5; 100]).unwrap();
        drop(writer);
        assert_eq!(read_all(&path).1, vec![16384; 100]);
        write_wav_file(&path, 16_000, &[0.25; 10]).unwrap();
        assert_eq!(read_all(&path).1, vec![8192; 10]);
    }
}
