//! Shared by the agent tests: the shipped job's judge, scripted candidates and a simulated
//! call that runs a whole interview.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use viva_interview::{
    AnswerAssessment, BuiltInPolicy, Decision, Embedder, Interviewer, Job, Judge, Next, Policy,
    Prompt, Situation, Transcript, Turn, TurnKind,
};
use viva_test_support::models::{model, repo_root};

/// The shipped job's judge, with the real sentence-embedding model.
pub fn judge() -> Arc<Judge> {
    static JUDGE: OnceLock<Arc<Judge>> = OnceLock::new();
    Arc::clone(JUDGE.get_or_init(|| {
        let job = Job::load(repo_root().join("config/jobs/backend-developer.toml")).unwrap();
        let embedder = Embedder::load(&model("minilm")).unwrap_or_else(|err| panic!("{err}"));
        Arc::new(Judge::new(Arc::new(job), Arc::new(embedder)).unwrap())
    }))
}

/// Speaking time of a text at 150 words a minute.
pub fn speaking_ms(text: &str) -> u64 {
    text.split_whitespace().count() as u64 * 400
}

/// A scripted candidate: answers by question id (the key `greeting` for the greeting and
/// `questions` for the candidate's own questions), in order, then `default` in a cycle.
pub struct Script {
    answers: BTreeMap<String, Vec<String>>,
    default: Vec<String>,
    used: BTreeMap<String, usize>,
    defaults_used: usize,
}

impl Script {
    pub fn new(answers: &[(&str, &[&str])], default: &[&str]) -> Script {
        Script {
            answers: answers
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
            default: default.iter().map(|s| s.to_string()).collect(),
            used: BTreeMap::new(),
            defaults_used: 0,
        }
    }

    pub fn answer(&mut self, prompt: &Prompt) -> String {
        let key = match (prompt.kind, prompt.question_id.as_deref()) {
            (TurnKind::Greeting | TurnKind::Notice, _) => "greeting",
            (TurnKind::CandidateQuestions, _) => "questions",
            (_, Some(id)) => id,
            (_, None) => "default",
        };
        let n = self.used.entry(key.to_string()).or_default();
        if let Some(answer) = self.answers.get(key).and_then(|list| list.get(*n)) {
            *n += 1;
            return answer.clone();
        }
        let answer = self.default[self.defaults_used % self.default.len()].clone();
        self.defaults_used += 1;
        answer
    }
}

/// What one simulated interview produced.
pub struct Run {
    pub prompts: Vec<Prompt>,
    pub transcript: Transcript,
    pub assessments: Vec<AnswerAssessment>,
    pub decisions: Vec<(String, Decision)>,
    pub end_ms: u64,
}

impl Run {
    pub fn follow_ups(&self) -> usize {
        self.prompts
            .iter()
            .filter(|p| p.kind == TurnKind::FollowUp)
            .count()
    }

    pub fn asked(&self, id: &str) -> bool {
        self.prompts
            .iter()
            .any(|p| p.question_id.as_deref() == Some(id))
    }
}

/// Records every decision of the built-in policy, so tests can see why a follow-up was asked.
pub struct Recording {
    pub inner: Box<dyn Policy>,
    pub log: Arc<Mutex<Vec<(String, Decision)>>>,
}

impl Policy for Recording {
    fn decide(&mut self, situation: &Situation<'_>) -> Decision {
        let decision = self.inner.decide(situation);
        self.log
            .lock()
            .unwrap()
            .push((situation.question_id.to_string(), decision.clone()));
        decision
    }
}

/// Runs a whole interview: every prompt is spoken, then the candidate answers after a short
/// pause. `pace` stretches the call clock (1 = real speaking time).
pub fn interview(script: &mut Script, pace: u64) -> Run {
    let log = Arc::new(Mutex::new(Vec::new()));
    let policy = Recording {
        inner: Box::new(BuiltInPolicy),
        log: Arc::clone(&log),
    };
    interview_with(script, pace, Box::new(policy), log)
}

/// Runs a whole interview with `policy`; `log` is where a [`Recording`] policy writes.
pub fn interview_with(
    script: &mut Script,
    pace: u64,
    policy: Box<dyn Policy>,
    log: Arc<Mutex<Vec<(String, Decision)>>>,
) -> Run {
    let (mut interviewer, greeting) =
        Interviewer::start(judge(), Some("Sam".to_string()), policy, 0);
    let mut now = 0;
    let mut prompts = vec![greeting.clone()];
    let mut transcript = Transcript::default();
    let mut prompt = greeting;
    loop {
        let end = now + speaking_ms(&prompt.text);
        transcript.turns.push(Turn::interviewer(
            prompt.kind,
            prompt.question_id.as_deref(),
            prompt.text.clone(),
            now,
            end,
        ));
        let answer = script.answer(&prompt);
        let start = end + 700;
        now = start + pace * speaking_ms(&answer);
        transcript.turns.push(Turn::candidate(
            interviewer.answering(),
            answer.clone(),
            start,
            now,
        ));
        let next = interviewer.on_answer(&answer, start, now);
        now += 300;
        prompts.push(next.prompt().clone());
        match next {
            Next::Say(p) => prompt = p,
            Next::Finish(p) => {
                let end = now + speaking_ms(&p.text);
                transcript
                    .turns
                    .push(Turn::interviewer(p.kind, None, p.text, now, end));
                now = end;
                break;
            }
        }
        assert!(prompts.len() < 200, "the interview never ends");
    }
    assert!(interviewer.is_finished());
    let decisions = log.lock().unwrap().clone();
    Run {
        prompts,
        transcript,
        assessments: interviewer.assessments().to_vec(),
        decisions,
        end_ms: now,
    }
}

/// A candidate who answers every technical question in generalities.
pub const VAGUE: &[(&str, &[&str])] = &[
    ("greeting", &["Sure."]),
    ("api_experience", &["I'd say around four years in total."]),
    ("start_date", &["Yes, I think so."]),
    ("questions", &["No, I'm good, thanks."]),
];

pub const VAGUE_DEFAULT: &[&str] = &[
    "I think it's really important to follow best practices. Usually you want to make sure things are well designed and easy to maintain, and it depends on the use case.",
    "Generally you should think about performance and scalability and things like that. It's important to keep it simple and use the right tools for the job.",
    "You want good monitoring and testing and so on. Basically you try to make sure everything works and fix problems when they come up.",
];
