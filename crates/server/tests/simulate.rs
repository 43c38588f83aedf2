//! `viva simulate` with scripted candidates on the shipped job (text mode), using the real
//! sentence-embedding model that scripts/setup installs.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use viva_test_support::models::repo_root;
use viva_test_support::{TempDir, scratch_dir};

struct Run {
    /// Where the simulation wrote its files.
    dir: PathBuf,
    /// Holds `dir`, removed with it.
    _scratch: TempDir,
    transcript: Value,
    report: Value,
}

fn simulate(candidate: &str, tag: &str) -> Run {
    let scratch = scratch_dir(&format!("sim-{candidate}-{tag}"));
    let dir = scratch.path().join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_viva"))
        .current_dir(repo_root())
        .args([
            "simulate",
            "--job",
            "config/jobs/backend-developer.toml",
            "--candidate",
        ])
        .arg(format!("config/candidates/{candidate}.toml"))
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for file in [
        "transcript.json",
        "transcript.vtt",
        "report.json",
        "report.html",
    ] {
        assert!(dir.join(file).exists(), "{file} written");
    }
    let read = |f: &str| serde_json::from_slice(&std::fs::read(dir.join(f)).unwrap()).unwrap();
    Run {
        transcript: read("transcript.json"),
        report: read("report.json"),
        dir,
        _scratch: scratch,
    }
}

fn count_kind(transcript: &Value, kind: &str) -> usize {
    transcript["turns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == kind)
        .count()
}

#[test]
fn strong_answers_score_clearly_higher_and_vague_ones_draw_more_follow_ups() {
    let strong = simulate("strong", "a");
    let vague = simulate("vague", "a");
    let score = |r: &Run| r.report["overall_score"].as_f64().unwrap();
    assert!(
        score(&strong) >= score(&vague) + 30.0,
        "strong {} vs vague {}",
        score(&strong),
        score(&vague)
    );
    assert!(
        ["yes", "strong_yes"].contains(&strong.report["recommendation"].as_str().unwrap()),
        "{}",
        strong.report["recommendation"]
    );
    assert_eq!(vague.report["recommendation"], "no");
    let (strong_follow_ups, vague_follow_ups) = (
        count_kind(&strong.transcript, "follow_up"),
        count_kind(&vague.transcript, "follow_up"),
    );
    assert!(
        vague_follow_ups > strong_follow_ups,
        "vague {vague_follow_ups} vs strong {strong_follow_ups} adaptive follow-ups"
    );
    // The plan is followed: knockouts, custom questions in order, blueprints, closing.
    let asked: Vec<&str> = strong.transcript["turns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["speaker"] == "interviewer" && t["kind"] != "follow_up")
        .filter_map(|t| t["question_id"].as_str())
        .collect();
    let order = [
        "api_experience",
        "start_date",
        "api_design",
        "db_optimization",
        "reliability",
        "async_tasks",
        "microservices",
        "caching",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|id| {
            asked
                .iter()
                .position(|a| a == id)
                .unwrap_or_else(|| panic!("{id} asked"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{asked:?}");
    assert_eq!(
        strong.transcript["turns"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["kind"],
        "closing"
    );
}

#[test]
fn a_failed_knockout_forces_no() {
    let run = simulate("knockout-fail", "a");
    assert_eq!(run.report["recommendation"], "no");
    let knockout = run.report["knockouts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == "api_experience")
        .unwrap();
    assert_eq!(knockout["passed"], false, "{knockout}");
}

#[test]
fn evidence_is_quoted_verbatim_and_reports_are_identical_across_runs() {
    let first = simulate("strong", "b");
    let second = simulate("strong", "c");
    for file in [
        "report.json",
        "transcript.json",
        "report.html",
        "transcript.vtt",
    ] {
        assert_eq!(
            std::fs::read(first.dir.join(file)).unwrap(),
            std::fs::read(second.dir.join(file)).unwrap(),
            "{file} differs between runs"
        );
    }
    let candidate_turns: Vec<&Value> = first.transcript["turns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["speaker"] == "candidate")
        .collect();
    let mut quotes = 0;
    for dimension in first.report["dimensions"].as_array().unwrap() {
        for evidence in dimension["evidence"].as_array().unwrap() {
            let quote = evidence["quote"].as_str().unwrap();
            let start = evidence["start_ms"].as_u64().unwrap();
            let turn = candidate_turns
                .iter()
                .find(|t| t["text"].as_str().unwrap().contains(quote))
                .unwrap_or_else(|| panic!("quote not in any candidate turn: {quote:?}"));
            let (from, to) = (
                turn["start_ms"].as_u64().unwrap(),
                turn["end_ms"].as_u64().unwrap(),
            );
            assert!(
                (from..=to).contains(&start),
                "{quote:?} at {start} outside {from}..{to}"
            );
            quotes += 1;
        }
    }
    assert!(
        quotes >= 7,
        "every scored dimension has evidence ({quotes} quotes)"
    );
}

#[test]
fn an_invalid_job_names_file_field_and_reason() {
    let scratch = scratch_dir("sim-badjob");
    let dir = scratch.path();
    let job =
        std::fs::read_to_string(repo_root().join("config/jobs/backend-developer.toml")).unwrap();
    let bad = job.replacen("id = \"start_date\"", "id = \"api_experience\"", 1);
    let path = dir.join("bad.toml");
    std::fs::write(&path, bad).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_viva"))
        .current_dir(repo_root())
        .args(["simulate", "--job"])
        .arg(&path)
        .args(["--candidate", "config/candidates/strong.toml", "--out"])
        .arg(dir.join("out"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains("bad.toml: knockouts[1].id: duplicate id \"api_experience\""),
        "{err}"
    );
}

/// RMS of a stretch of one channel, in milliseconds of a 16 kHz recording.
fn rms(channel: &[f32], from_ms: u64, to_ms: u64) -> f32 {
    let at = |ms: u64| ((ms * 16) as usize).min(channel.len());
    let part = &channel[at(from_ms)..at(to_ms)];
    (part.iter().map(|s| s * s).sum::<f32>() / part.len().max(1) as f32).sqrt()
}

#[test]
fn an_audio_interview_runs_through_the_live_loop_with_an_aligned_recording() {
    let scratch = scratch_dir("sim-audio");
    let dir = scratch.path().join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_viva"))
        .current_dir(repo_root())
        .args([
            "simulate",
            "--audio",
            "--job",
            "config/jobs/backend-developer.toml",
        ])
        .args(["--candidate", "config/candidates/strong.toml", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{stdout}");
    // "audio call: N answers spoken, WER X % ..."
    let wer: f64 = stdout
        .split("WER ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the simulation reports its WER");
    assert!(
        wer <= 20.0,
        "candidate speech over an 8 kHz line: WER {wer} % above 20 %"
    );

    let transcript: Value =
        serde_json::from_slice(&std::fs::read(dir.join("transcript.json")).unwrap()).unwrap();
    let turns = transcript["turns"].as_array().unwrap();
    assert_eq!(
        turns.last().unwrap()["kind"],
        "closing",
        "the interview finished"
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    assert!(
        report["overall_score"].as_f64().unwrap() > 40.0,
        "{}",
        report["overall_score"]
    );

    let mut wav = hound::WavReader::open(dir.join("recording.wav")).unwrap();
    let spec = wav.spec();
    assert_eq!((spec.channels, spec.sample_rate), (2, 16_000));
    let samples: Vec<f32> = wav
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect();
    let candidate: Vec<f32> = samples.iter().step_by(2).copied().collect();
    let interviewer: Vec<f32> = samples.iter().skip(1).step_by(2).copied().collect();
    let duration_ms = candidate.len() as u64 / 16;
    let last_end = turns.last().unwrap()["end_ms"].as_u64().unwrap();
    assert!(
        duration_ms.abs_diff(last_end) < 500,
        "recording {duration_ms} ms, transcript {last_end} ms"
    );
    // Each speaker's channel carries sound inside their turns and is quiet inside the other's.
    for turn in turns {
        let (from, to) = (
            turn["start_ms"].as_u64().unwrap(),
            turn["end_ms"].as_u64().unwrap(),
        );
        if to - from < 1000 {
            continue;
        }
        let (own, other) = if turn["speaker"] == "interviewer" {
            (&interviewer, &candidate)
        } else {
            (&candidate, &interviewer)
        };
        assert!(
            rms(own, from, to) > 0.01,
            "no sound in the speaker's channel: {turn}"
        );
        assert!(
            rms(other, from + 200, to.saturating_sub(200)) < rms(own, from, to) / 4.0,
            "{turn}"
        );
    }
}
