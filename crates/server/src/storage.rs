//! Where interviews' files are kept beyond the node that ran the call.
//!
//! By default the data directory ([`InterviewFiles`]) is all there is. With `[storage] kind =
//! "s3"` the files live in an S3-compatible object store every node reaches, and the data
//! directory is only the spool of the calls a node runs:
//! - while a call runs, what each growing file (transcript log, recording, camera videos)
//!   gained since the last copy goes up every `upload_secs` as a piece of its own
//!   (`FILE.parts/OFFSET`), so a node that dies loses at most that much;
//! - once the interview is concluded each file goes up whole, its pieces are removed, and so
//!   is its spool ([`Storage::archive`]);
//! - a node finishing the interview of a node that died puts its files back together first
//!   ([`Storage::restore`]);
//! - readers look in the spool first (the call runs here, or the store is local), then in the
//!   object store: the whole file, or the pieces of a call still running on another node.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::headers::{HeaderMapExt, Range};
use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{
    BackoffConfig, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
    WriteMultipart,
};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tower::ServiceExt;
use tower_http::services::ServeFile;
use viva_store::InterviewFiles;

use crate::config::{StorageConfig, StorageKind};

/// How often a live call's growth is copied up when `storage.upload_secs` is 0.
const DEFAULT_UPLOAD_SECS: u64 = 5;
/// Beside each growing file, the folder of its pieces.
const PIECES: &str = ".parts";
/// Files up to this size go up in one request; larger ones in parts of this size.
const PART_BYTES: usize = 8 << 20;
/// Written whole when the interview ends: never copied up while the call runs.
const REPORT: &str = "report.json";

/// The interview files of this deployment: local only, or in an object store too.
#[derive(Clone, Default)]
pub struct Storage {
    remote: Option<Arc<Remote>>,
}

struct Remote {
    objects: Arc<dyn ObjectStore>,
    /// `PREFIX/` or empty.
    prefix: String,
    every: Duration,
    /// Names the store in errors: the endpoint and bucket.
    place: String,
}

/// A live call's growth being copied up; dropping it stops the copying.
pub struct Following(tokio::task::JoinHandle<()>);

impl Drop for Following {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Storage {
    /// The storage `[storage]` describes; S3 credentials are only checked by [`check`](Self::check).
    pub fn open(config: &StorageConfig) -> anyhow::Result<Storage> {
        if config.kind == StorageKind::Local {
            return Ok(Storage::default());
        }
        // The object store's HTTP client finds its TLS crypto as the process default; ring
        // is what the rest of the binary uses. Installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let region = match config.region.trim() {
            "" => "us-east-1",
            region => region,
        };
        let objects = AmazonS3Builder::new()
            .with_endpoint(config.endpoint.trim_end_matches('/'))
            .with_allow_http(config.endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false)
            .with_region(region)
            .with_bucket_name(&config.bucket)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            // A store that is down must not hold a call's copying or a reader for minutes.
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 3,
                retry_timeout: Duration::from_secs(15),
            })
            .build()
            .context(
                "storage: cannot set up the S3 client (check storage.endpoint and storage.region)",
            )?;
        let prefix = match config.prefix.trim_matches('/') {
            "" => String::new(),
            prefix => format!("{prefix}/"),
        };
        let every = match config.upload_secs {
            0 => DEFAULT_UPLOAD_SECS,
            secs => secs,
        };
        Ok(Storage {
            remote: Some(Arc::new(Remote {
                objects: Arc::new(objects),
                prefix,
                every: Duration::from_secs(every),
                place: format!("bucket {} at {}", config.bucket, config.endpoint),
            })),
        })
    }

    /// Whether the files live in an object store.
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// At start-up: that the object store answers and takes these credentials, so a mistake
    /// stops the server with a reason instead of losing recordings later.
    pub async fn check(&self) -> anyhow::Result<()> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        let probe = Path::from(format!("{}interviews", remote.prefix));
        match remote.objects.list_with_delimiter(Some(&probe)).await {
            Ok(_) => Ok(()),
            // The client's errors nest the same request in every layer; the innermost one says
            // what the store or the network answered.
            Err(err) => {
                let mut cause: &dyn std::error::Error = &err;
                while let Some(inner) = cause.source() {
                    cause = inner;
                }
                anyhow::bail!(
                    "cannot list the {} (check storage.endpoint, storage.bucket, which must \
                     exist, and the access key): {cause}",
                    remote.place
                )
            }
        }
    }

    /// Starts copying a live call's growing files up, when the files live in an object store.
    pub fn follow(&self, files: &InterviewFiles) -> Option<Following> {
        let remote = Arc::clone(self.remote.as_ref()?);
        let files = files.clone();
        Some(Following(tokio::spawn(async move {
            let mut sent = HashMap::new();
            let mut ticks = tokio::time::interval(remote.every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(err) = remote.copy_growth(&files, &mut sent).await {
                    tracing::warn!(interview_id = %id(&files), error = %format!("{err:#}"), "cannot copy the call's files to the object store; trying again");
                }
            }
        })))
    }

    /// Once an interview is concluded: puts each of its files up whole, removes the pieces
    /// copied during the call and the spool. Nothing to do for local storage.
    pub async fn archive(&self, files: &InterviewFiles) -> anyhow::Result<()> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        for path in spooled(files) {
            remote.put_file(files, &path).await?;
        }
        remote.remove_pieces(files).await?;
        tokio::fs::remove_dir_all(files.dir())
            .await
            .with_context(|| format!("cannot remove the spool {}", files.dir().display()))
    }

    /// Before another node's interview is finished here: brings back what the object store
    /// holds of its files, where that is more than this node's spool has.
    pub async fn restore(&self, files: &InterviewFiles) -> anyhow::Result<()> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        for (name, kept) in remote.kept(files).await? {
            let path = files.dir().join(&name);
            let local = tokio::fs::metadata(&path).await.map_or(0, |m| m.len());
            if kept.len() <= local {
                continue;
            }
            let bytes = remote.fetch(&kept).await?;
            tokio::fs::write(&path, &bytes)
                .await
                .with_context(|| format!("cannot write {}", path.display()))?;
            if name.ends_with(".wav") {
                viva_media::repair_wav_sizes(&path)?;
            }
            tracing::info!(interview_id = %id(files), file = %name, bytes = bytes.len(), "brought back from the object store");
        }
        Ok(())
    }

    /// The file `path` (one of `files`), wherever it is; `None` when it is nowhere yet.
    pub async fn read(
        &self,
        files: &InterviewFiles,
        path: &std::path::Path,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        match tokio::fs::read(path).await {
            Ok(bytes) => return Ok(Some(bytes)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        }
        let Some(remote) = &self.remote else {
            return Ok(None);
        };
        match remote.kept(files).await?.remove(&file_name(path)) {
            Some(kept) => Ok(Some(remote.fetch(&kept).await?)),
            None => Ok(None),
        }
    }

    /// Whether the file `path` (one of `files`) exists anywhere.
    pub async fn exists(&self, files: &InterviewFiles, path: &std::path::Path) -> bool {
        if path.exists() {
            return true;
        }
        let Some(remote) = &self.remote else {
            return false;
        };
        remote
            .kept(files)
            .await
            .is_ok_and(|kept| kept.contains_key(&file_name(path)))
    }

    /// Answers `request` with the file `path` (one of `files`), honouring a byte range so a
    /// player can seek; `None` when it is nowhere.
    pub async fn serve(
        &self,
        files: &InterviewFiles,
        path: &std::path::Path,
        mime: &str,
        request: Request,
    ) -> anyhow::Result<Option<Response>> {
        if path.exists() {
            let mime = mime.parse()?;
            let response = ServeFile::new_with_mime(path, &mime)
                .oneshot(request)
                .await?;
            return Ok(Some(response.map(Body::new)));
        }
        let Some(remote) = &self.remote else {
            return Ok(None);
        };
        let Some(kept) = remote.kept(files).await?.remove(&file_name(path)) else {
            return Ok(None);
        };
        let whole = match kept {
            Kept::Whole { path, size } => (path, size),
            // A recording still being made on another node: what it holds so far, unseekable.
            pieces @ Kept::Pieces(_) => {
                let bytes = remote.fetch(&pieces).await?;
                return Ok(Some(
                    ([(header::CONTENT_TYPE, mime.to_owned())], bytes).into_response(),
                ));
            }
        };
        Ok(Some(
            remote.serve_range(&whole.0, whole.1, mime, request).await?,
        ))
    }
}

/// What the object store keeps of one file.
enum Kept {
    /// The file, put up when its interview was concluded.
    Whole { path: Path, size: u64 },
    /// The pieces of a file copied up as it grew, by offset; only an unbroken run counts.
    Pieces(BTreeMap<u64, (Path, u64)>),
}

impl Kept {
    fn len(&self) -> u64 {
        match self {
            Kept::Whole { size, .. } => *size,
            Kept::Pieces(pieces) => unbroken(pieces).map(|(_, size)| size).sum(),
        }
    }
}

/// The pieces from offset 0 up to the first gap.
fn unbroken(pieces: &BTreeMap<u64, (Path, u64)>) -> impl Iterator<Item = (&Path, u64)> {
    let mut next = 0;
    pieces
        .iter()
        .take_while(move |(offset, (_, size))| {
            let continues = **offset == next;
            next += size;
            continues
        })
        .map(|(_, (path, size))| (path, *size))
}

impl Remote {
    /// The object key of the interview's file `name` (or its folder, for an empty name).
    fn key(&self, files: &InterviewFiles, name: &str) -> Path {
        Path::from(format!("{}interviews/{}/{name}", self.prefix, id(files)))
    }

    /// Copies up what each growing file gained since `sent` (bytes already up, by name).
    async fn copy_growth(
        &self,
        files: &InterviewFiles,
        sent: &mut HashMap<String, u64>,
    ) -> anyhow::Result<()> {
        for path in spooled(files) {
            let name = file_name(&path);
            if name == REPORT {
                continue;
            }
            let from = sent.get(&name).copied().unwrap_or(0);
            let mut file = tokio::fs::File::open(&path).await?;
            file.seek(std::io::SeekFrom::Start(from)).await?;
            let mut grown = Vec::new();
            file.read_to_end(&mut grown).await?;
            if grown.is_empty() {
                continue;
            }
            let len = from + grown.len() as u64;
            let piece = self.key(files, &format!("{name}{PIECES}/{from:020}"));
            self.objects
                .put(&piece, PutPayload::from(grown))
                .await
                .with_context(|| format!("cannot put {piece} in the {}", self.place))?;
            sent.insert(name, len);
        }
        Ok(())
    }

    /// Puts the spooled file `path` up whole, in parts when it is large.
    async fn put_file(&self, files: &InterviewFiles, path: &std::path::Path) -> anyhow::Result<()> {
        let key = self.key(files, &file_name(path));
        let bytes = tokio::fs::read(path)
            .await
            .with_context(|| format!("cannot read {}", path.display()))?;
        let failed = || format!("cannot put {key} in the {}", self.place);
        if bytes.len() <= PART_BYTES {
            self.objects
                .put(&key, PutPayload::from(bytes))
                .await
                .with_context(failed)?;
            return Ok(());
        }
        let upload = self
            .objects
            .put_multipart(&key)
            .await
            .with_context(failed)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        writer.write(&bytes);
        writer.finish().await.with_context(failed)?;
        Ok(())
    }

    /// Removes the pieces copied up while the interview's call ran.
    async fn remove_pieces(&self, files: &InterviewFiles) -> anyhow::Result<()> {
        let pieces: Vec<Path> = self
            .objects
            .list(Some(&self.key(files, "")))
            .map_ok(|meta| meta.location)
            .try_filter(|location| {
                std::future::ready(location.as_ref().contains(&format!("{PIECES}/")))
            })
            .try_collect()
            .await?;
        for piece in pieces {
            self.objects.delete(&piece).await?;
        }
        Ok(())
    }

    /// What the store keeps of each of the interview's files, by file name.
    async fn kept(&self, files: &InterviewFiles) -> anyhow::Result<HashMap<String, Kept>> {
        let folder = self.key(files, "");
        let listed: Vec<_> = self
            .objects
            .list(Some(&folder))
            .try_collect()
            .await
            .with_context(|| format!("cannot list {folder} in the {}", self.place))?;
        let mut kept = HashMap::new();
        for meta in listed {
            let Some(relative) = meta.location.prefix_match(&folder) else {
                continue;
            };
            let parts: Vec<String> = relative.map(|part| part.as_ref().to_owned()).collect();
            match parts.as_slice() {
                [name] => {
                    kept.insert(
                        name.clone(),
                        Kept::Whole {
                            path: meta.location,
                            size: meta.size,
                        },
                    );
                }
                [folder, offset] => {
                    let (Some(name), Ok(offset)) =
                        (folder.strip_suffix(PIECES), offset.parse::<u64>())
                    else {
                        continue;
                    };
                    // A whole file, once put up, is the truth; its pieces are on their way out.
                    let entry = kept
                        .entry(name.to_owned())
                        .or_insert_with(|| Kept::Pieces(BTreeMap::new()));
                    if let Kept::Pieces(pieces) = entry {
                        pieces.insert(offset, (meta.location, meta.size));
                    }
                }
                _ => {}
            }
        }
        Ok(kept)
    }

    /// The bytes of a kept file.
    async fn fetch(&self, kept: &Kept) -> anyhow::Result<Vec<u8>> {
        let get = |path: &Path| {
            let path = path.clone();
            async move {
                self.objects
                    .get(&path)
                    .await
                    .with_context(|| format!("cannot get {path} from the {}", self.place))?
                    .bytes()
                    .await
                    .with_context(|| format!("cannot read {path} from the {}", self.place))
            }
        };
        match kept {
            Kept::Whole { path, .. } => Ok(get(path).await?.to_vec()),
            Kept::Pieces(pieces) => {
                let mut bytes = Vec::new();
                for (path, _) in unbroken(pieces) {
                    bytes.extend_from_slice(&get(path).await?);
                }
                Ok(bytes)
            }
        }
    }

    /// Streams the object at `path` (`size` bytes), or the one range `request` asks for.
    async fn serve_range(
        &self,
        path: &Path,
        size: u64,
        mime: &str,
        request: Request,
    ) -> anyhow::Result<Response> {
        let asked = request.headers().typed_get::<Range>();
        let range = match asked.map(|range| satisfiable(&range, size)) {
            None => None,
            Some(Some(range)) => Some(range),
            Some(None) => {
                return Ok((
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{size}"))],
                )
                    .into_response());
            }
        };
        let options = GetOptions {
            range: range.clone().map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let got = self
            .objects
            .get_opts(path, options)
            .await
            .with_context(|| format!("cannot get {path} from the {}", self.place))?;
        let served = got.range.clone();
        let body = Body::from_stream(got.into_stream());
        let mut response = Response::builder()
            .header(header::CONTENT_TYPE, mime)
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::CONTENT_LENGTH, served.end - served.start);
        response = match range {
            Some(_) => response.status(StatusCode::PARTIAL_CONTENT).header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", served.start, served.end - 1),
            ),
            None => response.status(StatusCode::OK),
        };
        Ok(response.body(body)?)
    }
}

/// The first range of `range` a file of `size` bytes can satisfy, as a half-open range.
fn satisfiable(range: &Range, size: u64) -> Option<std::ops::Range<u64>> {
    let (start, end) = range.satisfiable_ranges(size).next()?;
    let range = match (start, end) {
        (Bound::Included(start), Bound::Included(end)) => start..end.saturating_add(1).min(size),
        (Bound::Included(start), Bound::Unbounded) => start..size,
        // `bytes=-N`: the last N bytes.
        (Bound::Unbounded, Bound::Included(last)) => size.saturating_sub(last)..size,
        _ => return None,
    };
    (range.start < range.end).then_some(range)
}

/// The interview's id: its folder's name.
fn id(files: &InterviewFiles) -> String {
    file_name(files.dir())
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The files in the interview's spool.
fn spooled(files: &InterviewFiles) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(files.dir()) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .map(|entry| entry.path())
        // write_atomically's temporary files are not the interview's.
        .filter(|path| !file_name(path).starts_with('.'))
        .collect();
    paths.sort();
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str) -> Range {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(header::RANGE, value.parse().unwrap());
        headers.typed_get::<Range>().unwrap()
    }

    #[test]
    fn ranges_are_read_as_players_send_them() {
        assert_eq!(satisfiable(&range("bytes=10-19"), 100), Some(10..20));
        assert_eq!(satisfiable(&range("bytes=90-"), 100), Some(90..100));
        assert_eq!(satisfiable(&range("bytes=-10"), 100), Some(90..100));
        assert_eq!(satisfiable(&range("bytes=95-200"), 100), Some(95..100));
        assert_eq!(satisfiable(&range("bytes=100-"), 100), None);
    }

    #[test]
    fn only_an_unbroken_run_of_pieces_counts() {
        let piece = |n: &str, size| (Path::from(n), size);
        let mut pieces = BTreeMap::new();
        pieces.insert(0, piece("a", 10));
        pieces.insert(10, piece("b", 5));
        pieces.insert(20, piece("c", 5));
        assert_eq!(Kept::Pieces(pieces).len(), 15);
    }
}
