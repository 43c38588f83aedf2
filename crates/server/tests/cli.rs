//! The `viva` binary as a user runs it, on the real models installed by scripts/setup.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};

use viva_test_support::models::{models_dir, repo_root};
use viva_test_support::scratch_dir;

/// Runs viva from the repository root (where config/ and models/ are) with a clean environment.
fn viva(args: &[&str]) -> Output {
    viva_env(args, &[])
}

fn viva_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_viva"));
    command.current_dir(repo_root()).args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("VIVA_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    command.output().expect("viva runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A failure must be one `error:` line naming the problem, a non-zero exit, and no panic.
fn assert_clean_failure(output: &Output, expected: &str) {
    let err = stderr(output);
    assert!(!output.status.success(), "should fail: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(
        lines[0].contains(expected),
        "expected {expected:?} in {err}"
    );
}

const CLIP: &str = "models/speech-set/librivox-0870.wav";

#[test]
fn transcribes_a_real_recording_in_every_format() {
    let text = viva(&["transcribe", CLIP]);
    assert!(text.status.success(), "{}", stderr(&text));
    assert!(
        stdout(&text).contains("Dashwood had then leisure"),
        "{}",
        stdout(&text)
    );

    let json = viva(&["transcribe", CLIP, "--format", "json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let segment = &value["segments"][0];
    assert!(segment["start_ms"].as_u64().is_some() && segment["end_ms"].as_u64().is_some());
    let word = &segment["words"][0];
    for key in ["word", "start_ms", "end_ms", "probability"] {
        assert!(!word[key].is_null(), "word has {key}: {word}");
    }
    assert!(value["text"].as_str().unwrap().contains("leisure"));

    let vtt = stdout(&viva(&["transcribe", CLIP, "--format", "vtt"]));
    assert!(vtt.starts_with("WEBVTT\n\n1\n00:00:0"), "{vtt}");
    assert!(vtt.contains(" --> "));
}

#[test]
fn transcribes_compressed_and_telephone_files() {
    let scratch = scratch_dir("cli-formats");
    let dir = scratch.path();
    let source = repo_root().join(CLIP);
    let cases = [
        ("clip.mp3", vec!["-codec:a", "libmp3lame", "-b:a", "64k"]),
        ("clip.ogg", vec!["-codec:a", "libvorbis"]),
        ("clip.opus", vec!["-codec:a", "libopus", "-b:a", "24k"]),
        ("clip.flac", vec![]),
        // A phone call: 8 kHz G.711 mu-law.
        ("phone.wav", vec!["-ar", "8000", "-codec:a", "pcm_mulaw"]),
    ];
    for (name, codec) in cases {
        let out = dir.join(name);
        let status = Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y", "-i"])
            .arg(&source)
            .args(&codec)
            .arg(&out)
            .status()
            .expect("ffmpeg is installed by scripts/setup");
        assert!(status.success(), "ffmpeg made {name}");
        let output = viva(&["transcribe", out.to_str().unwrap()]);
        assert!(output.status.success(), "{name}: {}", stderr(&output));
        assert!(
            stdout(&output).to_lowercase().contains("dashwood"),
            "{name}: {}",
            stdout(&output)
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn says_a_question_that_transcribes_back() {
    let scratch = scratch_dir("cli-say");
    let dir = scratch.path();
    let wav = dir.join("question.wav");
    let said = viva(&[
        "say",
        "How do you approach database optimization?",
        "--out",
        wav.to_str().unwrap(),
    ]);
    assert!(said.status.success(), "{}", stderr(&said));
    let heard = stdout(&viva(&["transcribe", wav.to_str().unwrap()]));
    assert!(
        heard.to_lowercase().contains("database optimization"),
        "{heard}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bad_inputs_give_one_line_errors() {
    let scratch = scratch_dir("cli-bad");
    let dir = scratch.path();
    let empty = dir.join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.join("notes.wav");
    std::fs::write(&text, b"this is not audio, just some text\n").unwrap();
    let truncated = dir.join("truncated.wav");
    let clip = std::fs::read(repo_root().join(CLIP)).unwrap();
    std::fs::write(&truncated, &clip[..30]).unwrap();
    let missing = dir.join("nope.wav");

    assert_clean_failure(&viva(&["transcribe", empty.to_str().unwrap()]), "empty");
    assert_clean_failure(&viva(&["transcribe", text.to_str().unwrap()]), "notes.wav");
    assert_clean_failure(
        &viva(&["transcribe", truncated.to_str().unwrap()]),
        "truncated.wav",
    );
    assert_clean_failure(
        &viva(&["transcribe", missing.to_str().unwrap()]),
        "nope.wav",
    );

    // A missing model says what to do.
    let no_model = viva(&["transcribe", CLIP, "--model", "/nonexistent/ggml-x.bin"]);
    assert_clean_failure(&no_model, "run scripts/setup");

    // Bad configuration: file, field and reason.
    let config = dir.join("viva.toml");
    std::fs::write(&config, "[stt]\nthreads = \"many\"\n").unwrap();
    let bad_file = viva(&["--config", config.to_str().unwrap(), "transcribe", CLIP]);
    assert_clean_failure(&bad_file, "viva.toml: stt.threads: invalid type");
    let bad_env = viva_env(&["transcribe", CLIP], &[("VIVA_STT_LANGUAGE", "english")]);
    assert_clean_failure(
        &bad_env,
        "environment variable VIVA_STT_LANGUAGE: stt.language",
    );
    let unknown = dir.join("unknown.toml");
    std::fs::write(&unknown, "[sst]\nthreads = 2\n").unwrap();
    assert_clean_failure(
        &viva(&["--config", unknown.to_str().unwrap(), "config"]),
        "unknown field `sst`",
    );

    // Nothing to say, and an unwritable output.
    assert_clean_failure(
        &viva(&["say", "  ", "--out", "/tmp/x.wav"]),
        "nothing to say",
    );
    assert_clean_failure(
        &viva(&["say", "Hello.", "--out", "/nonexistent/dir/x.wav"]),
        "/nonexistent/dir/x.wav",
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn serve_answers_health_checks_and_stops_on_sigterm() {
    let data_scratch = scratch_dir("cli-serve");
    let data = data_scratch.path();
    let mut server = Command::new(env!("CARGO_BIN_EXE_viva"))
        .current_dir(repo_root())
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--sip",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first start generates the API key and says how to read it; the address follows.
    let mut lines = Vec::new();
    for line in BufReader::new(server.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let last = line.contains("listening on");
        lines.push(line);
        if last {
            break;
        }
    }
    assert!(
        lines.iter().any(|l| l.contains("viva api-key")),
        "{lines:?}"
    );
    let line = lines
        .iter()
        .find(|line| line.contains("listening on"))
        .expect("the server prints its address");
    let addr = line.trim().rsplit("http://").next().unwrap().to_owned();

    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: viva\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#"{"status":"ok"}"#));

    // SIGTERM: a clean, successful shutdown.
    let pid = server.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = server.wait().unwrap();
    assert!(status.success(), "{status:?}");

    // The generated secrets are kept: `viva api-key` and `viva cpaas-url` print them, given
    // the same --data-dir as `viva serve` (or VIVA_SERVER_DATA_DIR).
    let data_dir = data.to_str().unwrap();
    let key = viva(&["api-key", "--data-dir", data_dir]);
    assert!(key.status.success(), "{}", stderr(&key));
    assert_eq!(
        stdout(&key).trim().len(),
        43,
        "a 32-byte key in base64: {}",
        stdout(&key)
    );
    let same = viva_env(&["api-key"], &[("VIVA_SERVER_DATA_DIR", data_dir)]);
    assert_eq!(stdout(&same), stdout(&key));
    let url = viva(&["--data-dir", data_dir, "cpaas-url"]);
    assert!(url.status.success(), "{}", stderr(&url));
    let url = stdout(&url);
    assert!(
        url.starts_with("ws://127.0.0.1:8080/media-stream/") && url.trim().len() > 50,
        "{url}"
    );
    // A data directory no server ever used says so, and what to pass.
    let fresh_scratch = scratch_dir("cli-no-server-yet");
    let fresh = fresh_scratch.path();
    assert_clean_failure(
        &viva(&["api-key", "--data-dir", fresh.join("d").to_str().unwrap()]),
        "pass the same --data-dir or --config as to `viva serve`",
    );
    std::fs::remove_dir_all(data).ok();
}

#[test]
fn config_shows_where_secrets_are_set_but_never_their_values() {
    let output = viva_env(
        &["config"],
        &[
            ("VIVA_API_KEY", "sekrit-api-key"),
            ("VIVA_LLM_API_KEY", "sekrit-llm"),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let shown = stdout(&output);
    assert!(!shown.contains("sekrit"), "a secret leaked:\n{shown}");
    assert!(
        shown.contains("api_key = \"set (from VIVA_API_KEY)\""),
        "{shown}"
    );
    assert!(
        shown.contains("api_key = \"set (from VIVA_LLM_API_KEY)\""),
        "{shown}"
    );
    // Paths are shown resolved, as viva uses them.
    let models = models_dir();
    assert!(
        shown.contains(&format!("dir = \"{}\"", models.display())),
        "{shown}"
    );
}

#[test]
fn started_from_elsewhere_it_says_where_it_looked() {
    let elsewhere_scratch = scratch_dir("cli-elsewhere");
    let elsewhere = elsewhere_scratch.path();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_viva"))
            .current_dir(elsewhere)
            .args(args)
            .env_remove("VIVA_CONFIG")
            .output()
            .unwrap()
    };
    // No config file here: the defaults point at ./models and ./config/jobs, which are not
    // here either. viva stops at once and says where it looked and how to fix it.
    let serve = run(&["serve", "--http", "127.0.0.1:0", "--sip", "127.0.0.1:0"]);
    assert_clean_failure(&serve, "is not a directory");
    let err = stderr(&serve);
    assert!(err.contains(&elsewhere.display().to_string()), "{err}");
    assert!(err.contains("--config"), "{err}");
    // With the checkout's config file, its relative paths resolve against the file, so
    // viva works from anywhere.
    let config = repo_root().join("config/viva.toml");
    let check = run(&["--config", config.to_str().unwrap(), "models", "check"]);
    assert!(check.status.success(), "{}", stderr(&check));
    // A missing voice is an error that says what to do, not a robotic stand-in.
    let no_voice = run(&[
        "--config",
        config.to_str().unwrap(),
        "say",
        "Hello.",
        "--voice",
        "/nonexistent/voice.onnx",
        "--out",
        elsewhere.join("x.wav").to_str().unwrap(),
    ]);
    assert_clean_failure(&no_voice, "/nonexistent/voice.onnx");
    std::fs::remove_dir_all(elsewhere).ok();
}

#[test]
fn logs_carry_no_colour_codes_when_not_on_a_terminal() {
    // stderr is a pipe here, as under a service manager or a log collector: the server's log
    // must be plain text.
    let data_scratch = scratch_dir("cli-log-colours");
    let data = data_scratch.path();
    let mut server = Command::new(env!("CARGO_BIN_EXE_viva"))
        .current_dir(repo_root())
        .args(["serve", "--http", "127.0.0.1:0", "--sip", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data)
        .env("VIVA_LOG_LEVEL", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for line in BufReader::new(server.stdout.take().unwrap()).lines() {
        if line.unwrap().contains("listening on") {
            break;
        }
    }
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    let output = server.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("viva is listening"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a piped log: {log:?}"
    );
    std::fs::remove_dir_all(data).ok();
}
