//! `viva simulate`: a whole interview with a scripted candidate, no network, no phone.
//!
//! The candidate script is TOML:
//! ```toml
//! [candidate]
//! name = "Alex"                       # optional
//! [answers]
//! greeting = ["Yes, ready when you are."]
//! api_design = ["answer to the question", "answer to its first follow-up"]
//! default = ["used, in order and cycling, when a question's own list is used up"]
//! ```
//! Answers are looked up by the id of what is being asked (a question, knockout, blueprint
//! follow-up) or, for turns without one, by their kind (`greeting`, `candidate_questions`).
//!
//! Text mode feeds answers straight to the interviewer on a simulated clock (speech takes
//! the time its words would take), so a run is fast and always gives the same files.
//! Audio mode (`--audio`, [`audio`]) speaks every answer into the live conversation loop.

mod audio;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::Deserialize;
use viva_interview::{
    HtmlOptions, Interviewer, Judge, Next, Prompt, Report, ReportContext, Transcript, Turn,
    render_html, write_atomically,
};

use crate::cli::SimulateArgs;
use crate::config::Config;
use crate::engines;

/// Simulated speaking pace: about 150 words a minute, plus a breath per turn.
const MS_PER_WORD: u64 = 400;
const TURN_OVERHEAD_MS: u64 = 300;
/// Pause between one speaker stopping and the other starting.
const TURN_GAP_MS: u64 = 700;
/// A runaway interview (a policy bug, a script that never lets it finish) stops here.
const MAX_TURNS: usize = 400;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CandidateScript {
    #[serde(default)]
    candidate: CandidateInfo,
    answers: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CandidateInfo {
    name: Option<String>,
}

/// Hands out a script's answers in order, per key, then from `default`, cycling.
struct ScriptedCandidate {
    script: CandidateScript,
    used: BTreeMap<String, usize>,
}

impl ScriptedCandidate {
    fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the candidate script {}", path.display()))?;
        let script: CandidateScript = toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!("{}: {}", path.display(), e.to_string().replace('\n', " "))
        })?;
        if script.answers.values().all(Vec::is_empty) {
            bail!("{}: [answers] has no answers", path.display());
        }
        Ok(Self {
            script,
            used: BTreeMap::new(),
        })
    }

    /// The next answer to `prompt`, or silence (`None`) when the script has nothing for it.
    fn answer(&mut self, prompt: &Prompt) -> Option<String> {
        let key = prompt
            .question_id
            .clone()
            .unwrap_or_else(|| prompt.kind.as_str().to_owned());
        self.answer_for(key)
    }

    /// The next answer for a script key (a question id or a turn kind).
    fn answer_for(&mut self, key: String) -> Option<String> {
        let own = self.script.answers.get(&key).map_or(0, Vec::len);
        let n = self.used.entry(key.clone()).or_insert(0);
        *n += 1;
        if *n <= own {
            return Some(self.script.answers[&key][*n - 1].clone());
        }
        let defaults = self
            .script
            .answers
            .get("default")
            .filter(|d| !d.is_empty())?;
        let d = self.used.entry("default".to_owned()).or_insert(0);
        *d += 1;
        Some(defaults[(*d - 1) % defaults.len()].clone())
    }
}

fn speaking_ms(text: &str) -> u64 {
    text.split_whitespace().count() as u64 * MS_PER_WORD + TURN_OVERHEAD_MS
}

pub fn run(config: &Config, args: &SimulateArgs) -> anyhow::Result<()> {
    let judge = Arc::new(engines::judge(config, &args.job)?);
    let mut candidate = ScriptedCandidate::load(&args.candidate)?;
    let name = candidate.script.candidate.name.clone();
    if args.audio {
        let transcript = audio::run(config, args, Arc::clone(&judge), candidate)?;
        let report = job_report(
            &judge,
            &transcript,
            name,
            engines::model_versions(config, true),
        )?;
        return write_results(&args.out, &report, &transcript, true);
    }

    let (mut interviewer, greeting) = Interviewer::start(
        Arc::clone(&judge),
        name.clone(),
        engines::policy(config)?,
        0,
    );
    let mut transcript = Transcript::default();
    let mut now = 0;
    let mut next = Next::Say(greeting);
    loop {
        let prompt = next.prompt().clone();
        let end = now + speaking_ms(&prompt.text);
        transcript.turns.push(Turn::interviewer(
            prompt.kind,
            prompt.question_id.as_deref(),
            &prompt.text,
            now,
            end,
        ));
        now = end + TURN_GAP_MS;
        if matches!(next, Next::Finish(_)) {
            break;
        }
        if transcript.turns.len() >= MAX_TURNS {
            bail!("the interview did not finish within {MAX_TURNS} turns");
        }
        next = match candidate.answer(&prompt) {
            Some(answer) => {
                let end = now + speaking_ms(&answer);
                let answering = interviewer.answering().map(str::to_owned);
                transcript
                    .turns
                    .push(Turn::candidate(answering.as_deref(), &answer, now, end));
                let next = interviewer.on_answer(&answer, now, end);
                now = end + TURN_GAP_MS;
                next
            }
            // Nothing scripted: the candidate stays silent until the interviewer moves on.
            None => loop {
                now += 8_000;
                if let Some(next) = interviewer.on_silence(now, 8_000) {
                    break next;
                }
            },
        };
    }

    let report = job_report(
        &judge,
        &transcript,
        name,
        engines::model_versions(config, false),
    )?;
    write_results(&args.out, &report, &transcript, false)
}

/// The report is a function of the job and the transcript alone.
fn job_report(
    judge: &Judge,
    transcript: &Transcript,
    name: Option<String>,
    models: BTreeMap<String, String>,
) -> anyhow::Result<Report> {
    let assessments = judge.assess_transcript(transcript);
    let context = ReportContext {
        candidate: name,
        models,
        ..ReportContext::default()
    };
    Ok(Report::build(
        judge.job(),
        transcript,
        &assessments,
        &context,
    )?)
}

fn write_results(
    out: &Path,
    report: &Report,
    transcript: &Transcript,
    has_recording: bool,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create the output directory {}", out.display()))?;
    transcript
        .save(out)
        .with_context(|| format!("cannot write the transcript to {}", out.display()))?;
    write_atomically(&out.join("report.json"), report.to_json().as_bytes())?;
    let options = HtmlOptions {
        recording_url: has_recording.then(|| "recording.wav".to_owned()),
    };
    write_atomically(
        &out.join("report.html"),
        render_html(report, transcript, &options).as_bytes(),
    )?;
    println!(
        "{}: {} turns, overall {:.1}/100, recommendation {}",
        out.display(),
        transcript.turns.len(),
        report.scorecard.overall_score,
        report.scorecard.recommendation.as_str()
    );
    Ok(())
}
