//! A real browser for end-to-end tests of web pages (the candidate page): headless Chromium
//! with a fake camera (Chromium's generated test pattern) and a fake microphone that plays a WAV
//! file in a loop, driven over the Chrome DevTools Protocol (CDP). Behind the `browser`
//! feature, so only the crates that drive a browser build its WebSocket client.
//!
//! Tests must run on a tokio runtime: the DevTools connection is served by two background
//! tasks.
//!
//! One WebSocket to the browser carries every tab: each [`Tab`] is a flattened CDP session
//! (`Target.attachToTarget` with `flatten: true`), so commands and events are routed by
//! `sessionId` and nothing depends on per-tab sockets or the `/json` HTTP endpoints.
//!
//! Chromium is found as `$VIVA_CHROMIUM`, else the first of `chromium`, `chromium-browser`,
//! `google-chrome-stable`, `google-chrome` on `PATH`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// How long Chromium may take to start and publish its DevTools port (a cold start on a busy
/// 2-core machine takes a few seconds).
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one DevTools command may take to be answered.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a page may take to load in [`Browser::open`].
const PAGE_LOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How often [`Tab::wait_for`] re-evaluates its expression.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// The least time one evaluation in [`Tab::wait_for`] gets, so a poll started just before the
/// deadline is not cut off (a wait can thus overrun by this much when the page hangs).
const LAST_EVALUATION_BUDGET: Duration = Duration::from_secs(1);
/// Console lines quoted in a [`Tab::wait_for`] timeout.
const CONSOLE_LINES_IN_ERRORS: usize = 40;
/// Rate of the WAV written by [`speech_wav_with_pauses`]: WebRTC's Opus rate, so Chromium's
/// fake microphone needs no resampling.
const FAKE_MIC_RATE: u32 = 48_000;

/// A headless Chromium with a fake camera and microphone. Dropping it kills the browser and all
/// its helper processes (its process group) and deletes its temporary profile.
pub struct Browser {
    cdp: Arc<Cdp>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
    /// Declared last so the connection tasks are stopped before the process is killed.
    process: ChromiumProcess,
}

impl Browser {
    /// Launches headless Chromium with a fake camera and a fake microphone playing `mic_wav`,
    /// loopback WebRTC allowed and autoplay allowed without a user gesture.
    ///
    /// Chromium loops the file, and every microphone capture (each `getUserMedia`, so also
    /// each reload or tab) starts it from the beginning. `mic_wav` must be a PCM WAV file;
    /// 8-48 kHz, 8/16-bit integer or 32-bit float, mono or stereo all play (checked with
    /// Chromium 156), and [`speech_wav_with_pauses`] writes 48 kHz 16-bit mono.
    pub async fn launch(mic_wav: &Path) -> anyhow::Result<Browser> {
        let mic_wav = checked_mic_wav(mic_wav)?;
        let chromium = find_chromium()?;
        let dir = tempfile::Builder::new()
            .prefix("viva-chromium-")
            .tempdir()
            .context("creating a directory for Chromium's profile")?;
        let profile = dir.path().join("profile");
        std::fs::create_dir_all(&profile)
            .with_context(|| format!("creating the Chromium profile directory {profile:?}"))?;
        let log_path = dir.path().join("chromium.log");
        let log = File::create(&log_path).with_context(|| format!("creating {log_path:?}"))?;

        let mut command = Command::new(&chromium);
        command
            .args([
                "--headless=new",
                // Containers (and root) have no user namespaces for Chromium's sandbox.
                "--no-sandbox",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-gpu",
                // Docker's 64 MB /dev/shm is too small for renderers; use /tmp instead.
                "--disable-dev-shm-usage",
                // No calls home: the test machine has no internet, and they only add noise.
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                // A tab that is not in front (a second tab opened in a test) must keep its
                // timers, WebSocket and WebRTC running at full speed.
                "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows",
                // Grant camera and microphone without a prompt; devices are generated.
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                // Host candidates on 127.0.0.1 are otherwise dropped by Chromium.
                "--allow-loopback-in-peer-connection",
                // The interviewer's voice plays in an <audio autoplay> with no click first.
                "--autoplay-policy=no-user-gesture-required",
                // Port 0: Chromium picks a free port and writes it to DevToolsActivePort.
                "--remote-debugging-port=0",
            ])
            .arg(format!(
                "--use-file-for-fake-audio-capture={}",
                mic_wav.display()
            ))
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        // Its own process group, so Drop can kill the zygote and renderers with the browser
        // (they otherwise linger for a second or two after the browser dies).
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .with_context(|| format!("starting {chromium:?}"))?;
        // From here on, any early return kills Chromium and removes the directory.
        let mut process = ChromiumProcess {
            child,
            _dir: dir,
            log_path,
        };

        let endpoint = process.devtools_endpoint(&profile).await?;
        let (socket, _) = tokio_tungstenite::connect_async(endpoint.as_str())
            .await
            .with_context(|| format!("connecting to Chromium's DevTools at {endpoint}"))?;
        let (sink, stream) = socket.split();
        let (outgoing, to_send) = mpsc::unbounded_channel();
        let cdp = Arc::new(Cdp {
            outgoing,
            next_id: AtomicU64::new(1),
            replies: Mutex::new(Replies {
                waiting: HashMap::new(),
                closed: None,
            }),
            consoles: Mutex::new(HashMap::new()),
        });
        let writer = tokio::spawn(send_commands(sink, to_send));
        let reader = tokio::spawn(receive_messages(stream, Arc::clone(&cdp)));
        Ok(Browser {
            cdp,
            reader,
            writer,
            process,
        })
    }

    /// Opens a new tab, loads `url` in it and waits for the page's `load` event.
    ///
    /// Console messages and uncaught exceptions are collected from before the first byte of
    /// the page runs (see [`Tab::console`]).
    pub async fn open(&self, url: &str) -> anyhow::Result<Tab> {
        // Attach to a blank tab first and navigate after, so no early console line is lost.
        let created = self
            .cdp
            .call("Target.createTarget", json!({"url": "about:blank"}), None)
            .await?;
        let target_id = string_field(&created, "targetId")?;
        let attached = self
            .cdp
            .call(
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
                None,
            )
            .await?;
        let session_id = string_field(&attached, "sessionId")?;
        let console = Arc::new(Mutex::new(ConsoleLog {
            opened: Instant::now(),
            lines: Vec::new(),
        }));
        lock(&self.cdp.consoles).insert(session_id.clone(), Arc::clone(&console));
        let tab = Tab {
            cdp: Arc::clone(&self.cdp),
            target_id,
            session_id,
            console,
        };
        for domain in ["Runtime", "Log", "Page"] {
            tab.call(&format!("{domain}.enable"), json!({})).await?;
        }
        // Headless tabs have no window focus; pages that check `document.hasFocus()` or wait
        // for `focus` must behave as in a browser in front of the user.
        tab.call(
            "Emulation.setFocusEmulationEnabled",
            json!({"enabled": true}),
        )
        .await?;

        let navigated = tab.call("Page.navigate", json!({"url": url})).await?;
        if let Some(error) = navigated.get("errorText").and_then(Value::as_str) {
            bail!("Chromium could not load {url}: {error}");
        }
        tab.wait_for(
            "location.href !== 'about:blank' && document.readyState === 'complete'",
            PAGE_LOAD_TIMEOUT,
        )
        .await
        .with_context(|| format!("waiting for {url} to load"))?;
        Ok(tab)
    }

    /// The operating-system process id of the browser (also the id of its process group).
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
        // Tabs may outlive the browser: their calls must fail at once, not time out.
        let mut replies = lock(&self.cdp.replies);
        replies.closed = Some(String::from("the Browser was dropped"));
        replies.waiting.clear();
    }
}

/// One browser tab, attached over the browser's DevTools connection.
pub struct Tab {
    cdp: Arc<Cdp>,
    target_id: String,
    session_id: String,
    console: Arc<Mutex<ConsoleLog>>,
}

impl Tab {
    /// Evaluates a JavaScript expression in the page (awaiting it if it is a promise) and
    /// returns its value as JSON: `undefined` and `NaN` become `null`, `Infinity` and BigInts
    /// their text, DOM objects `{}`. A thrown exception or rejected promise is an `Err`
    /// carrying the exception's text.
    ///
    /// A promise must settle within 30 s, and a navigation during the evaluation makes it an
    /// `Err` too; use [`wait_for`](Self::wait_for) for longer waits or across navigations.
    pub async fn eval(&self, expression: &str) -> anyhow::Result<Value> {
        self.evaluate(expression)
            .await?
            .map_err(|exception| anyhow!("JavaScript `{expression}` threw: {exception}"))
    }

    /// Re-evaluates `expression` every 100 ms until its value is truthy (in JavaScript's sense)
    /// and returns that value. Exceptions count as "not yet" (the element may not exist yet),
    /// and so does an evaluation cut short by a navigation, so waiting across a reload works.
    /// After `timeout` it fails with the last value or exception and the page's recent console
    /// messages; it fails at once only if the browser connection is gone.
    pub async fn wait_for(&self, expression: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            // A promise that never settles must not hold the caller long past its deadline, but
            // the last evaluation gets time to answer even when little time is left.
            let budget = remaining.max(LAST_EVALUATION_BUDGET);
            let last = match tokio::time::timeout(budget, self.evaluate(expression)).await {
                Ok(Ok(Ok(value))) if is_truthy(&value) => return Ok(value),
                Ok(Ok(Ok(value))) => format!("its last value was {value}"),
                Ok(Ok(Err(exception))) => format!("it last threw {exception}"),
                // A navigation (reload, link) destroys the context an evaluation runs in.
                Ok(Err(refused)) if refused.is::<Refused>() => format!("{refused}"),
                Ok(Err(broken)) => return Err(broken),
                Err(_) => String::from("its last evaluation had not settled"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "`{expression}` was not truthy within {timeout:?}: {last}\n{}",
                    self.recent_console()
                );
            }
            tokio::time::sleep(POLL_INTERVAL.min(remaining)).await;
        }
    }

    /// Waits until the page says it is in `state` in its body's `data-state` attribute, which
    /// is how Viva's pages show where they are (`ready`, `in-call`, ...); fails as
    /// [`wait_for`](Self::wait_for) does, with the page's recent console messages.
    pub async fn wait_for_state(&self, state: &str, timeout: Duration) -> anyhow::Result<()> {
        let state = serde_json::to_string(state)?;
        self.wait_for(&format!("document.body.dataset.state === {state}"), timeout)
            .await
            .map(drop)
    }

    /// Clicks the first element matching the CSS `selector` with `element.click()`, as a user
    /// would: fails if nothing matches, or if the element is disabled (`disabled` or
    /// `aria-disabled="true"`) or not rendered (`display: none` or detached).
    pub async fn click(&self, selector: &str) -> anyhow::Result<()> {
        let selector_literal = serde_json::to_string(selector)?;
        let refusal = self
            .evaluate(&format!(
                "(() => {{
                    const element = document.querySelector({selector_literal});
                    if (element === null) return 'no element matches it';
                    if (element.disabled === true || element.getAttribute('aria-disabled') === 'true')
                        return 'the element is disabled';
                    if (element.getClientRects().length === 0)
                        return 'the element is not rendered (hidden or detached)';
                    element.click();
                    return null;
                }})()"
            ))
            .await?
            .map_err(|exception| anyhow!("cannot click `{selector}`: {exception}"))?;
        match refusal {
            Value::Null => Ok(()),
            reason => bail!(
                "cannot click `{selector}`: {}",
                reason.as_str().unwrap_or("unexpected answer")
            ),
        }
    }

    /// Saves a PNG of the page as it is shown (the whole page, beyond the viewport) to
    /// `target/screenshots/NAME.png`, for people to look at; returns the path.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        use base64::Engine;
        // A background tab is not painted, and its capture never comes.
        self.call("Page.bringToFront", json!({})).await?;
        // Just after a navigation the page can have no size yet, and Chromium refuses ("Cannot
        // take screenshot with 0 width"); it has one a few frames later.
        let mut attempts = 0;
        let reply = loop {
            attempts += 1;
            match self
                .call(
                    "Page.captureScreenshot",
                    json!({"format": "png", "captureBeyondViewport": true}),
                )
                .await
            {
                Err(e)
                    if attempts < 10
                        && e.downcast_ref::<Refused>()
                            .is_some_and(|r| r.message.contains("with 0 ")) =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                reply => break reply?,
            }
        };
        let data = reply["data"]
            .as_str()
            .ok_or_else(|| anyhow!("no screenshot data in {reply}"))?;
        let png = base64::engine::general_purpose::STANDARD.decode(data)?;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// The page's console messages, uncaught exceptions and browser log entries (failed
    /// loads, WebSocket and WebRTC errors) so far, oldest first, each prefixed with the seconds
    /// since the tab was opened, e.g. `[1.234s] console.error: media failed`.
    pub fn console(&self) -> Vec<String> {
        lock(&self.console).lines.clone()
    }

    /// Closes the tab abruptly, as a user closing it would (`Target.closeTarget`), and returns
    /// once Chromium no longer lists it, so its connections are closed by then.
    pub async fn close(self) -> anyhow::Result<()> {
        self.cdp
            .call(
                "Target.closeTarget",
                json!({"targetId": self.target_id}),
                None,
            )
            .await?;
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            let targets = self.cdp.call("Target.getTargets", json!({}), None).await?;
            let still_open = targets["targetInfos"]
                .as_array()
                .is_some_and(|infos| infos.iter().any(|info| info["targetId"] == self.target_id));
            if !still_open {
                break;
            }
            if Instant::now() >= deadline {
                bail!("Chromium still lists the tab {REPLY_TIMEOUT:?} after closing it");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        lock(&self.cdp.consoles).remove(&self.session_id);
        Ok(())
    }

    /// Sends a command to this tab's session.
    async fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.cdp.call(method, params, Some(&self.session_id)).await
    }

    /// Evaluates `expression`; the outer error is a broken browser connection, the inner one
    /// the text of a JavaScript exception.
    async fn evaluate(&self, expression: &str) -> anyhow::Result<Result<Value, String>> {
        let reply = self
            .call(
                "Runtime.evaluate",
                json!({
                    "expression": expression,
                    "awaitPromise": true,
                    "returnByValue": true,
                    // Counts as a user action, like a real click (e.g. for audio playback).
                    "userGesture": true,
                }),
            )
            .await?;
        if let Some(details) = reply.get("exceptionDetails") {
            return Ok(Err(exception_text(details)));
        }
        let result = &reply["result"];
        if let Some(value) = result.get("value") {
            return Ok(Ok(value.clone()));
        }
        Ok(Ok(match result["unserializableValue"].as_str() {
            Some("-0") => json!(0),
            Some("NaN") | None => Value::Null,
            Some(other) => Value::String(other.to_owned()),
        }))
    }

    fn recent_console(&self) -> String {
        let console = lock(&self.console);
        let skip = console.lines.len().saturating_sub(CONSOLE_LINES_IN_ERRORS);
        if console.lines.is_empty() {
            return String::from("the page logged nothing to the console");
        }
        let mut text = format!("last {} page console lines:", console.lines.len() - skip);
        for line in &console.lines[skip..] {
            text.push_str("\n  ");
            text.push_str(line);
        }
        text
    }
}

/// Writes the fake microphone's WAV (48 kHz, 16-bit, mono): each clip, resampled to 48 kHz if
/// needed, followed by `pause` of silence. Because the pause also follows the last clip, the
/// looping microphone pauses between the last clip and the first one too; so a test's candidate
/// speaks an answer, pauses (ending the turn), speaks the next one, and so on.
pub fn speech_wav_with_pauses(
    out: &Path,
    clips: &[(Vec<f32>, u32)],
    pause: Duration,
) -> anyhow::Result<()> {
    if clips.is_empty() {
        bail!("no clips to write to {out:?}: give at least one (samples, rate) clip");
    }
    let pause_samples = (pause.as_secs_f64() * f64::from(FAKE_MIC_RATE)).round() as usize;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: FAKE_MIC_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer =
        hound::WavWriter::create(out, spec).with_context(|| format!("creating {out:?}"))?;
    for (index, (samples, rate)) in clips.iter().enumerate() {
        if samples.is_empty() {
            bail!("clip {index} for {out:?} has no samples");
        }
        let resampled;
        let at_mic_rate = if *rate == FAKE_MIC_RATE {
            samples.as_slice()
        } else {
            resampled = viva_media::resample(samples, *rate, FAKE_MIC_RATE)
                .with_context(|| format!("resampling clip {index} for {out:?}"))?;
            resampled.as_slice()
        };
        for &sample in at_mic_rate {
            writer.write_sample(viva_media::f32_to_i16(sample))?;
        }
        for _ in 0..pause_samples {
            writer.write_sample(0i16)?;
        }
    }
    writer
        .finalize()
        .with_context(|| format!("finishing {out:?}"))?;
    Ok(())
}

/// The Chromium process, its profile and its log; killed and removed on drop.
struct ChromiumProcess {
    child: Child,
    /// Holds `profile/` (the user data directory) and `chromium.log`; removed after the
    /// process is killed (fields drop after `drop`).
    _dir: TempDir,
    log_path: PathBuf,
}

impl ChromiumProcess {
    /// Waits for Chromium to write `DevToolsActivePort` (port, then the browser's WebSocket
    /// path) and returns the browser-level WebSocket URL.
    async fn devtools_endpoint(&mut self, profile: &Path) -> anyhow::Result<String> {
        let port_file = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + LAUNCH_TIMEOUT;
        loop {
            // The file may be caught half-written: only a port line plus a path line counts.
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next())
                    && let Ok(port) = port.trim().parse::<u16>()
                    && path.starts_with("/devtools/browser/")
                {
                    return Ok(format!("ws://127.0.0.1:{port}{}", path.trim()));
                }
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "Chromium exited ({status}) before opening DevTools; its log ends with:\n{}",
                    self.log_tail()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "Chromium did not write {port_file:?} within {LAUNCH_TIMEOUT:?}; its log ends \
                     with:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The last few kilobytes of Chromium's output, for launch errors.
    fn log_tail(&self) -> String {
        const TAIL_BYTES: u64 = 4096;
        let mut tail = Vec::new();
        let read = File::open(&self.log_path).and_then(|mut log| {
            let len = log.metadata()?.len();
            log.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))?;
            log.read_to_end(&mut tail)
        });
        match read {
            Ok(_) => String::from_utf8_lossy(&tail).into_owned(),
            Err(error) => format!("(could not read {:?}: {error})", self.log_path),
        }
    }
}

impl Drop for ChromiumProcess {
    fn drop(&mut self) {
        // The group id is the browser's pid (process_group(0)); the browser is still our
        // unreaped child here, so the id cannot have been reused by another group.
        if let Ok(group) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) with a negative pid signals that process group; no memory is
            // shared with the callee.
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The browser-level DevTools connection shared by the browser and its tabs.
struct Cdp {
    outgoing: mpsc::UnboundedSender<Message>,
    next_id: AtomicU64,
    replies: Mutex<Replies>,
    /// Console log of each attached tab, by CDP session id.
    consoles: Mutex<HashMap<String, Arc<Mutex<ConsoleLog>>>>,
}

/// Chromium answered a command with a protocol error, e.g. "Execution context was destroyed"
/// when the page navigated while an evaluation ran; the connection itself is fine.
#[derive(Debug)]
struct Refused {
    method: String,
    message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chromium refused {}: {}", self.method, self.message)
    }
}

impl std::error::Error for Refused {}

/// Commands awaiting a reply; `closed` says why no more replies will come.
struct Replies {
    waiting: HashMap<u64, oneshot::Sender<Result<Value, String>>>,
    closed: Option<String>,
}

struct ConsoleLog {
    opened: Instant,
    lines: Vec<String>,
}

impl Cdp {
    /// Sends `method` (to the browser, or to a tab's session) and waits for its result.
    async fn call(
        &self,
        method: &str,
        params: Value,
        session_id: Option<&str>,
    ) -> anyhow::Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply_to, reply) = oneshot::channel();
        {
            let mut replies = lock(&self.replies);
            if let Some(reason) = &replies.closed {
                bail!("cannot send {method}: the browser connection is closed ({reason})");
            }
            replies.waiting.insert(id, reply_to);
        }
        // Forget the waiter however this call ends (including a caller's timeout).
        let _forget = ForgetReply { cdp: self, id };
        let mut command = json!({"id": id, "method": method, "params": params});
        if let Some(session_id) = session_id {
            command["sessionId"] = json!(session_id);
        }
        self.outgoing
            .send(Message::text(command.to_string()))
            .map_err(|_| anyhow!("cannot send {method}: the browser connection is gone"))?;
        match tokio::time::timeout(REPLY_TIMEOUT, reply).await {
            Ok(Ok(Ok(result))) => Ok(result),
            Ok(Ok(Err(message))) => Err(Refused {
                method: method.to_owned(),
                message,
            }
            .into()),
            Ok(Err(_)) => {
                let reason = lock(&self.replies).closed.clone().unwrap_or_default();
                bail!("the browser connection closed before {method} was answered ({reason})")
            }
            Err(_) => bail!("Chromium did not answer {method} within {REPLY_TIMEOUT:?}"),
        }
    }

    /// Routes one message from Chromium: a reply to its waiting command, or an event to the
    /// console log of the tab it came from.
    fn dispatch(&self, text: &str) {
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            return;
        };
        if let Some(id) = message["id"].as_u64() {
            if let Some(waiter) = lock(&self.replies).waiting.remove(&id) {
                let outcome = match message.get("error") {
                    Some(error) => Err(error_text(error)),
                    None => Ok(message["result"].clone()),
                };
                // The caller may have given up (timeout); nothing to do then.
                let _ = waiter.send(outcome);
            }
            return;
        }
        let (Some(method), Some(session_id)) =
            (message["method"].as_str(), message["sessionId"].as_str())
        else {
            return;
        };
        let Some(line) = console_line(method, &message["params"]) else {
            return;
        };
        let console = lock(&self.consoles).get(session_id).cloned();
        if let Some(console) = console {
            let mut console = lock(&console);
            let seconds = console.opened.elapsed().as_secs_f64();
            console.lines.push(format!("[{seconds:.3}s] {line}"));
        }
    }
}

/// Removes a command's waiter when its `call` returns or is cancelled.
struct ForgetReply<'a> {
    cdp: &'a Cdp,
    id: u64,
}

impl Drop for ForgetReply<'_> {
    fn drop(&mut self) {
        lock(&self.cdp.replies).waiting.remove(&self.id);
    }
}

type DevToolsSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Writes queued commands to the socket until either side goes away.
async fn send_commands(
    mut sink: futures_util::stream::SplitSink<DevToolsSocket, Message>,
    mut queue: mpsc::UnboundedReceiver<Message>,
) {
    while let Some(message) = queue.recv().await {
        if sink.send(message).await.is_err() {
            break;
        }
    }
}

/// Reads replies and events until the socket closes, then fails every waiting command.
async fn receive_messages(
    mut stream: futures_util::stream::SplitStream<DevToolsSocket>,
    cdp: Arc<Cdp>,
) {
    let reason = loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => cdp.dispatch(&text),
            Some(Ok(Message::Close(frame))) => {
                break format!("Chromium closed it: {frame:?}");
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => break format!("read error: {error}"),
            None => break String::from("Chromium ended the connection"),
        }
    };
    let mut replies = lock(&cdp.replies);
    replies.closed = Some(reason);
    // Dropping the senders wakes every waiting call with an error.
    replies.waiting.clear();
}

/// The console line for a page event worth keeping, if `method` is one.
fn console_line(method: &str, params: &Value) -> Option<String> {
    match method {
        "Runtime.consoleAPICalled" => {
            let args = params["args"]
                .as_array()
                .map(|args| args.iter().map(remote_object_text).collect::<Vec<_>>())
                .unwrap_or_default();
            Some(format!(
                "console.{}: {}",
                params["type"].as_str().unwrap_or("log"),
                args.join(" ")
            ))
        }
        "Runtime.exceptionThrown" => Some(format!(
            "uncaught exception: {}",
            exception_text(&params["exceptionDetails"])
        )),
        "Log.entryAdded" => {
            let entry = &params["entry"];
            // Every page without an icon logs this 404; it would only bury the real errors.
            if entry["url"]
                .as_str()
                .is_some_and(|url| url.ends_with("/favicon.ico"))
            {
                return None;
            }
            let mut line = format!(
                "{} ({}): {}",
                entry["level"].as_str().unwrap_or("log"),
                entry["source"].as_str().unwrap_or("browser"),
                entry["text"].as_str().unwrap_or_default()
            );
            if let Some(url) = entry["url"].as_str() {
                line.push_str(&format!(" [{url}]"));
            }
            Some(line)
        }
        "Inspector.targetCrashed" => Some(String::from("the tab's renderer crashed")),
        _ => None,
    }
}

/// A console argument as the DevTools console would print it.
fn remote_object_text(object: &Value) -> String {
    match object.get("value") {
        Some(Value::String(text)) => text.clone(),
        Some(value) => value.to_string(),
        None => object["description"]
            .as_str()
            .or(object["unserializableValue"].as_str())
            .or(object["type"].as_str())
            .unwrap_or("?")
            .to_owned(),
    }
}

/// The message of a thrown exception: the Error's description (message and stack), the thrown
/// value for non-Errors, and where it was thrown.
fn exception_text(details: &Value) -> String {
    let exception = &details["exception"];
    let what = exception["description"]
        .as_str()
        .map(str::to_owned)
        // `throw "text"` or a rejection with a plain value: no description, just the value.
        .or_else(|| {
            exception
                .get("value")
                .filter(|value| !value.is_null())
                .map(|_| remote_object_text(exception))
        })
        .unwrap_or_else(|| details["text"].as_str().unwrap_or("exception").to_owned());
    match details["url"].as_str() {
        Some(url) if !url.is_empty() => format!(
            "{what} (at {url}:{})",
            details["lineNumber"].as_u64().map_or(0, |line| line + 1)
        ),
        _ => what,
    }
}

fn error_text(error: &Value) -> String {
    let message = error["message"].as_str().unwrap_or("unknown error");
    match error["data"].as_str() {
        Some(data) => format!("{message} ({data})"),
        None => message.to_owned(),
    }
}

/// JavaScript truthiness of a value that came back as JSON.
fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|number| number != 0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn string_field(reply: &Value, field: &str) -> anyhow::Result<String> {
    reply[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("Chromium's reply has no `{field}`: {reply}"))
}

/// Locks a mutex, ignoring poisoning: a panicking test thread leaves the data usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Checks that the fake microphone's file is a WAV Chromium can play and returns its absolute
/// path (Chromium resolves relative paths against its own working directory).
fn checked_mic_wav(path: &Path) -> anyhow::Result<PathBuf> {
    let absolute = path
        .canonicalize()
        .with_context(|| format!("the fake microphone WAV {path:?} cannot be opened"))?;
    // Chromium reads `%noloop` and other options after a '%' in this flag's value.
    if absolute.to_string_lossy().contains('%') {
        bail!("the fake microphone WAV path {absolute:?} contains '%'; use a path without it");
    }
    let reader = hound::WavReader::open(&absolute)
        .with_context(|| format!("the fake microphone file {absolute:?} is not a readable WAV"))?;
    if reader.len() == 0 {
        bail!("the fake microphone WAV {absolute:?} has no samples");
    }
    Ok(absolute)
}

/// The Chromium executable: `$VIVA_CHROMIUM`, else a known name on `PATH`.
fn find_chromium() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("VIVA_CHROMIUM") {
        return Ok(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    [
        "chromium",
        "chromium-browser",
        "google-chrome-stable",
        "google-chrome",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
    .find(|candidate| candidate.is_file())
    .ok_or_else(|| {
        anyhow!(
            "no Chromium found: install it (Debian: `apt-get install chromium`) or set \
                 VIVA_CHROMIUM to its executable"
        )
    })
}
