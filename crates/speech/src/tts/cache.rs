//! Synthesized sentences kept for everyone: the interviewer says the same greeting, questions
//! and closing to every candidate of a job, so each is synthesized once per voice, shared by
//! every call of the process and, on disk, by every process and restart.
//!
//! Synthesis is reproducible (the same voice and phoneme ids give the same samples, bit for
//! bit), so a sentence is addressed by its content: a digest of the voice and the phoneme ids
//! the model reads. A change to the voice, its settings, the respelling lexicon or espeak-ng
//! changes the ids or the voice digest, and the old audio is simply never asked for again.
//!
//! Both tiers are bounded: the least recently used sentences go first. On disk a sentence is a
//! file written beside its final name and renamed into place, so a crash leaves no partial
//! entry; a file that does not read back whole is removed and synthesized again.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest, Sha256};

/// The start of every cache file; the sample count follows, then the samples (f32, LE).
const MAGIC: &[u8; 8] = b"VIVAVOX1";
const HEADER: usize = MAGIC.len() + 8;

/// The address of one synthesized sentence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SentenceKey([u8; 32]);

impl SentenceKey {
    /// The sentence whose phoneme `ids` the voice with digest `voice` reads.
    pub(crate) fn new(voice: &[u8; 32], ids: &[i64]) -> Self {
        let mut digest = Sha256::new();
        digest.update(b"viva voice cache 1\0");
        digest.update(voice);
        for id in ids {
            digest.update(id.to_le_bytes());
        }
        Self(digest.finalize().into())
    }

    fn file_name(&self) -> String {
        let mut name = String::with_capacity(64 + 4);
        for byte in self.0 {
            let _ = write!(name, "{byte:02x}");
        }
        name.push_str(".pcm");
        name
    }
}

/// Where and how much the voice cache keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoiceCacheConfig {
    /// The directory kept across restarts (made if missing); `None` keeps sentences in memory
    /// only.
    pub dir: Option<PathBuf>,
    /// At most this many bytes of audio in memory.
    pub memory_bytes: u64,
    /// At most this many bytes of audio on disk.
    pub disk_bytes: u64,
}

impl VoiceCacheConfig {
    /// Keeps nothing: every sentence is synthesized (for measuring synthesis itself).
    pub fn disabled() -> Self {
        Self {
            dir: None,
            memory_bytes: 0,
            disk_bytes: 0,
        }
    }
}

impl Default for VoiceCacheConfig {
    /// Memory only, 48 MiB: about 9 minutes of a 22 kHz voice, a few jobs' planned lines.
    fn default() -> Self {
        Self {
            dir: None,
            memory_bytes: 48 << 20,
            disk_bytes: 0,
        }
    }
}

/// The cache itself; see the module docs.
pub(crate) struct VoiceCache {
    config: VoiceCacheConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Sentences in memory, with the tick they were last used at.
    memory: HashMap<SentenceKey, (Arc<[f32]>, u64)>,
    memory_bytes: u64,
    /// Files on disk: size and last use.
    disk: HashMap<SentenceKey, (u64, u64)>,
    disk_bytes: u64,
    tick: u64,
}

impl VoiceCache {
    /// Opens the cache, indexing what an earlier run left on disk (oldest files counting as
    /// least recently used).
    pub(crate) fn open(config: VoiceCacheConfig) -> std::io::Result<Self> {
        let mut state = State::default();
        if let Some(dir) = &config.dir {
            std::fs::create_dir_all(dir)?;
            let mut files = Vec::new();
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                let Some(key) = parse_file_name(&entry.file_name().to_string_lossy()) else {
                    continue;
                };
                let metadata = entry.metadata()?;
                files.push((metadata.modified().ok(), key, metadata.len()));
            }
            files.sort();
            for (_, key, size) in files {
                state.tick += 1;
                state.disk.insert(key, (size, state.tick));
                state.disk_bytes += size;
            }
        }
        let cache = Self {
            config,
            state: Mutex::new(state),
        };
        cache.trim_disk(&mut cache.lock());
        Ok(cache)
    }

    /// The sentence's samples, from memory or disk.
    pub(crate) fn get(&self, key: &SentenceKey) -> Option<Arc<[f32]>> {
        let mut state = self.lock();
        state.tick += 1;
        let tick = state.tick;
        if let Some((samples, used)) = state.memory.get_mut(key) {
            *used = tick;
            return Some(Arc::clone(samples));
        }
        let (_, used) = state.disk.get_mut(key)?;
        *used = tick;
        let path = self.path(key)?;
        // Read with the lock held: a sentence file is small, and another thread asking for
        // the same sentence then finds it in memory instead of reading it again.
        match read_file(&path) {
            Some(samples) => {
                let samples: Arc<[f32]> = samples.into();
                self.remember(&mut state, *key, Arc::clone(&samples));
                Some(samples)
            }
            None => {
                tracing::warn!(file = %path.display(), "a voice cache file was unreadable; it is removed and its sentence synthesized again");
                let _ = std::fs::remove_file(&path);
                if let Some((size, _)) = state.disk.remove(key) {
                    state.disk_bytes -= size;
                }
                None
            }
        }
    }

    /// Keeps a freshly synthesized sentence.
    pub(crate) fn put(&self, key: SentenceKey, samples: &[f32]) -> Arc<[f32]> {
        let samples: Arc<[f32]> = samples.into();
        let mut state = self.lock();
        state.tick += 1;
        self.remember(&mut state, key, Arc::clone(&samples));
        if let Some(path) = self.path(&key)
            && !state.disk.contains_key(&key)
            && self.config.disk_bytes > 0
        {
            match write_file(&path, &samples) {
                Ok(size) => {
                    let tick = state.tick;
                    state.disk.insert(key, (size, tick));
                    state.disk_bytes += size;
                    self.trim_disk(&mut state);
                }
                Err(error) => {
                    tracing::warn!(%error, file = %path.display(), "a synthesized sentence could not be kept on disk");
                }
            }
        }
        samples
    }

    fn remember(&self, state: &mut State, key: SentenceKey, samples: Arc<[f32]>) {
        let size = std::mem::size_of_val(&*samples) as u64;
        if size > self.config.memory_bytes {
            return;
        }
        let tick = state.tick;
        if let Some((_, used)) = state.memory.get_mut(&key) {
            *used = tick;
            return;
        }
        state.memory.insert(key, (samples, tick));
        state.memory_bytes += size;
        while state.memory_bytes > self.config.memory_bytes {
            let Some(oldest) = least_recent(state.memory.iter().map(|(k, (_, used))| (k, *used)))
            else {
                break;
            };
            if let Some((samples, _)) = state.memory.remove(&oldest) {
                state.memory_bytes -= std::mem::size_of_val(&*samples) as u64;
            }
        }
    }

    fn trim_disk(&self, state: &mut State) {
        while state.disk_bytes > self.config.disk_bytes {
            let Some(oldest) = least_recent(state.disk.iter().map(|(k, (_, used))| (k, *used)))
            else {
                break;
            };
            if let Some(path) = self.path(&oldest) {
                let _ = std::fs::remove_file(path);
            }
            if let Some((size, _)) = state.disk.remove(&oldest) {
                state.disk_bytes -= size;
            }
        }
    }

    fn path(&self, key: &SentenceKey) -> Option<PathBuf> {
        Some(self.config.dir.as_ref()?.join(key.file_name()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn least_recent<'a>(entries: impl Iterator<Item = (&'a SentenceKey, u64)>) -> Option<SentenceKey> {
    entries.min_by_key(|(_, used)| *used).map(|(key, _)| *key)
}

fn parse_file_name(name: &str) -> Option<SentenceKey> {
    let hex = name.strip_suffix(".pcm")?;
    if hex.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (byte, pair) in key.iter_mut().zip(hex.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(SentenceKey(key))
}

/// Writes the samples beside `path` and renames them into place; returns the file's size.
fn write_file(path: &Path, samples: &[f32]) -> std::io::Result<u64> {
    let mut bytes = Vec::with_capacity(HEADER + samples.len() * 4);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(samples.len() as u64).to_le_bytes());
    for sample in samples {
        bytes.extend_from_slice(&sample.to_le_bytes());
    }
    // Unique per process and thread, so two writers of the same sentence never share a file.
    let partial = path.with_extension(format!(
        "{}-{:?}.partial",
        std::process::id(),
        std::thread::current().id()
    ));
    let mut file = std::fs::File::create(&partial)?;
    file.write_all(&bytes)?;
    drop(file);
    std::fs::rename(&partial, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    Ok(bytes.len() as u64)
}

/// The samples of a cache file, if it is whole.
fn read_file(path: &Path) -> Option<Vec<f32>> {
    let bytes = std::fs::read(path).ok()?;
    let count = u64::from_le_bytes(bytes.get(MAGIC.len()..HEADER)?.try_into().ok()?);
    let body = bytes.get(HEADER..)?;
    if !bytes.starts_with(MAGIC) || body.len() as u64 != count.checked_mul(4)? {
        return None;
    }
    Some(
        body.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use viva_test_support::scratch_dir;

    use super::*;

    fn key(n: i64) -> SentenceKey {
        SentenceKey::new(&[7; 32], &[1, n, 2])
    }

    fn on_disk(dir: &Path, disk_bytes: u64) -> VoiceCache {
        VoiceCache::open(VoiceCacheConfig {
            dir: Some(dir.to_owned()),
            memory_bytes: 1 << 20,
            disk_bytes,
        })
        .unwrap()
    }

    #[test]
    fn keys_depend_on_the_voice_and_every_phoneme() {
        assert_eq!(key(5), key(5));
        assert_ne!(key(5), key(6));
        assert_ne!(
            SentenceKey::new(&[7; 32], &[1, 5, 2]),
            SentenceKey::new(&[8; 32], &[1, 5, 2])
        );
        assert_eq!(parse_file_name(&key(5).file_name()), Some(key(5)));
        assert_eq!(parse_file_name("notes.txt"), None);
        assert_eq!(parse_file_name(&"zz".repeat(32)), None);
    }

    #[test]
    fn sentences_outlive_the_process_on_disk_bit_for_bit() {
        let scratch = scratch_dir("voice-cache-restart");
        let samples = vec![0.25, -1.0, f32::MIN_POSITIVE, 0.0];
        on_disk(scratch.path(), 1 << 20).put(key(1), &samples);
        let reopened = on_disk(scratch.path(), 1 << 20);
        assert_eq!(reopened.get(&key(1)).as_deref(), Some(samples.as_slice()));
        assert_eq!(reopened.get(&key(2)), None);
    }

    #[test]
    fn memory_keeps_the_most_recently_used_within_its_bound() {
        let cache = VoiceCache::open(VoiceCacheConfig {
            dir: None,
            memory_bytes: 3 * 400,
            disk_bytes: 0,
        })
        .unwrap();
        for n in 0..3 {
            cache.put(key(n), &[0.5; 100]);
        }
        assert!(
            cache.get(&key(0)).is_some(),
            "used again: now the most recent"
        );
        cache.put(key(3), &[0.5; 100]);
        assert!(cache.get(&key(1)).is_none(), "the least recently used went");
        for n in [0, 2, 3] {
            assert!(cache.get(&key(n)).is_some(), "{n}");
        }
        cache.put(key(4), &[0.5; 1000]);
        assert!(
            cache.get(&key(4)).is_none(),
            "larger than the whole bound: not kept"
        );
    }

    #[test]
    fn the_disk_bound_removes_the_least_recently_used_files() {
        let scratch = scratch_dir("voice-cache-bound");
        let entry = (HEADER + 100 * 4) as u64;
        let cache = on_disk(scratch.path(), 2 * entry);
        for n in 0..3 {
            cache.put(key(n), &[0.5; 100]);
        }
        let files = std::fs::read_dir(scratch.path()).unwrap().count();
        assert_eq!(files, 2);
        assert!(!scratch.path().join(key(0).file_name()).exists());
        // A smaller bound at the next start trims what is there.
        drop(cache);
        on_disk(scratch.path(), entry);
        assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 1);
        assert!(
            scratch.path().join(key(2).file_name()).exists(),
            "the newest stays"
        );
    }

    #[test]
    fn a_damaged_file_is_removed_and_missed() {
        let scratch = scratch_dir("voice-cache-damaged");
        on_disk(scratch.path(), 1 << 20).put(key(1), &[0.5; 100]);
        let path = scratch.path().join(key(1).file_name());
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let reopened = on_disk(scratch.path(), 1 << 20);
        assert_eq!(reopened.get(&key(1)), None);
        assert!(!path.exists());
        std::fs::write(scratch.path().join("stray.pcm"), b"x").unwrap();
        assert!(on_disk(scratch.path(), 1 << 20).get(&key(9)).is_none());
    }
}
