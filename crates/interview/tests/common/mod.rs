//! A scripted interview on the shipped backend-developer job, with the judge's assessments,
//! for a strong and a vague candidate.

// Shared by several test binaries, each of which uses only part of it.
#![allow(dead_code)]

use std::path::PathBuf;

use viva_interview::{AnswerAssessment, Depth, Job, Transcript, Turn, TurnKind};

pub fn shipped_job() -> Job {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/jobs/backend-developer.toml");
    Job::load(path).unwrap_or_else(|e| panic!("{e}"))
}

/// How a scripted candidate answers.
#[derive(Clone, Copy, PartialEq)]
pub enum Profile {
    Strong,
    Vague,
}

/// One answer: what was said and how the judge read it.
struct Said {
    text: &'static str,
    specificity: f32,
    /// How many of the question's areas (taken in order) the answer covered.
    covers: usize,
    depth: Depth,
    vague: bool,
    technologies: &'static [&'static str],
    numbers: &'static [&'static str],
}

fn strong(
    text: &'static str,
    covers: usize,
    depth: Depth,
    technologies: &'static [&'static str],
    numbers: &'static [&'static str],
) -> Said {
    Said {
        text,
        specificity: 0.85,
        covers,
        depth,
        vague: false,
        technologies,
        numbers,
    }
}

fn vague(text: &'static str) -> Said {
    Said {
        text,
        specificity: 0.15,
        covers: 0,
        depth: Depth::Surface,
        vague: true,
        technologies: &[],
        numbers: &[],
    }
}

fn answers_for(id: &str, profile: Profile) -> Vec<Said> {
    use Depth::*;
    match (id, profile) {
        ("api_design", Profile::Strong) => vec![strong(
            "At Acme I designed the public billing API used by 300 enterprise customers. We \
             versioned it in the URL and only made additive changes, so old clients kept working \
             for 18 months. Every write endpoint accepted an idempotency key, which meant retried \
             payments were never charged twice. Errors followed one contract with a stable code, \
             and we used cursor pagination because offset pagination broke on large tables. \
             Authentication was OAuth 2.0 with short-lived JWTs.",
            5,
            Deep,
            &["OAuth 2.0", "JWT"],
            &["300", "18 months"],
        )],
        ("db_optimization", Profile::Strong) => vec![strong(
            "Our invoice search in PostgreSQL took 4 seconds at p95. I read the query plan with \
             EXPLAIN ANALYZE and saw a sequential scan, so I added a composite index on tenant \
             and created_at and removed an N+1 in the ORM. The p95 dropped to 120 ms. We kept \
             the schema normalized and denormalized one counter column because reads outnumbered \
             writes a hundred to one.",
            5,
            Deep,
            &["PostgreSQL", "EXPLAIN ANALYZE"],
            &["4 seconds", "120 ms"],
        )],
        ("reliability", Profile::Strong) => vec![strong(
            "Our checkout service had 99.5% availability and I owned raising it to 99.95%. I \
             added timeouts on every outbound call and retries with exponential backoff and \
             jitter, and a circuit breaker around the tax provider so checkout degraded \
             gracefully instead of failing. We built Prometheus metrics and Grafana dashboards \
             with SLO alerts, and ran blameless postmortems after each incident.",
            5,
            Deep,
            &["Prometheus", "Grafana"],
            &["99.5%", "99.95%"],
        )],
        ("async_tasks", Profile::Strong) => vec![strong(
            "We moved PDF generation to Celery workers on RabbitMQ, about 50,000 tasks a day. \
             Task handlers were idempotent, keyed by invoice id, so retries were safe, and \
             failures went to a dead-letter queue after five attempts. We capped concurrency per \
             tenant to apply backpressure and alerted on queue depth and task latency. Later we \
             moved the event stream to Kafka.",
            5,
            Deep,
            &["Celery", "RabbitMQ", "Kafka"],
            &["50,000", "five"],
        )],
        ("microservices", Profile::Strong) => vec![strong(
            "I would split services by business domain, billing, identity and reporting, each \
             owning its data. Services talk asynchronously through Kafka events for anything \
             that does not need an immediate answer. We ran them on Kubernetes with 40 services \
             at my last job.",
            2,
            Deep,
            &["Kafka", "Kubernetes"],
            &["40"],
        )],
        ("data_consistency", Profile::Strong) => vec![strong(
            "Data consistency across services comes from the outbox pattern and sagas with \
             compensating actions, because distributed transactions do not scale. At Acme the \
             outbox cut lost events to zero.",
            1,
            Deep,
            &[],
            &["zero"],
        )],
        ("service_discovery", Profile::Strong) => vec![strong(
            "For service discovery we relied on Kubernetes DNS and a service mesh, so clients \
             never hard-coded addresses.",
            1,
            Working,
            &["Kubernetes"],
            &[],
        )],
        ("service_failures", Profile::Strong) => vec![strong(
            "Handling service failures gracefully means timeouts, bulkheads and circuit breakers, \
             plus fallbacks such as serving the last known good response.",
            1,
            Deep,
            &[],
            &[],
        )],
        ("caching", Profile::Strong) => vec![strong(
            "I cache what is read often and changes rarely, like tenant settings, in Redis with a \
             hit rate we kept above 95%. Eviction is LRU with TTLs sized to how stale data may be.",
            2,
            Deep,
            &["Redis"],
            &["95%"],
        )],
        ("cache_selection", Profile::Strong) => vec![strong(
            "I decide which data to cache from access logs: the top 1% of keys took 60% of reads.",
            1,
            Working,
            &[],
            &["1%", "60%"],
        )],
        ("cache_tradeoffs", Profile::Strong) => vec![strong(
            "Cache-aside is simple but risks stale reads, while write-through keeps the cache \
             consistent with the database at the cost of write latency.",
            1,
            Deep,
            &[],
            &[],
        )],
        ("cache_invalidation", Profile::Strong) => vec![strong(
            "For cache invalidation we published change events and deleted keys on write, with \
             short TTLs as a safety net.",
            1,
            Deep,
            &[],
            &[],
        )],
        ("api_design", Profile::Vague) => vec![
            vague(
                "I think APIs should be well designed and easy to use. Basically we just made it work, you know.",
            ),
            vague("Um, it depends on the situation really, I mean we did what the team wanted."),
        ],
        ("db_optimization", Profile::Vague) => vec![
            vague("I usually try to make queries faster when they are slow."),
            vague("Uh, we added an index once I think, and it was better."),
        ],
        ("reliability", Profile::Vague) => vec![
            vague("Reliability is really important, so we always monitored things."),
            vague("We, you know, looked at logs when something broke."),
        ],
        ("async_tasks", Profile::Vague) => vec![
            vague("We had some background jobs, basically they ran async."),
            vague("I don't remember the details, it was fine."),
        ],
        ("microservices" | "caching", Profile::Vague) => {
            vec![vague(
                "I would use microservices and caching because they scale, it depends.",
            )]
        }
        (_, Profile::Vague) => vec![vague("I'm not sure, I would look into it.")],
        (other, Profile::Strong) => panic!("no strong answer scripted for {other}"),
    }
}

/// Builds the transcript and assessments of a whole interview.
pub struct Script {
    pub transcript: Transcript,
    pub assessments: Vec<AnswerAssessment>,
    clock: u64,
}

impl Script {
    fn interviewer(&mut self, kind: TurnKind, id: Option<&str>, text: &str) {
        let start = self.clock + 400;
        let end = start + 300 * text.split_whitespace().count() as u64;
        self.clock = end;
        self.transcript
            .turns
            .push(Turn::interviewer(kind, id, text, start, end));
    }

    fn candidate(&mut self, id: &str, text: &str) -> usize {
        let start = self.clock + 600;
        let end = start + 350 * text.split_whitespace().count() as u64;
        self.clock = end;
        self.transcript
            .turns
            .push(Turn::candidate(Some(id), text, start, end));
        self.transcript.turns.len() - 1
    }

    fn answer(&mut self, id: &str, areas: &[String], said: Said) {
        let index = self.candidate(id, said.text);
        self.assessments.push(AnswerAssessment {
            turn_index: index,
            question_id: id.to_string(),
            specificity: said.specificity,
            coverage: areas
                .iter()
                .enumerate()
                .map(|(i, a)| (a.clone(), i < said.covers))
                .collect(),
            depth: said.depth,
            vague: said.vague,
            evasive: false,
            named_technologies: said.technologies.iter().map(|s| s.to_string()).collect(),
            numbers: said.numbers.iter().map(|s| s.to_string()).collect(),
            years_claimed: None,
            affirmative: None,
        });
    }

    fn knockout_answer(&mut self, id: &str, text: &str, years: Option<f32>, yes: Option<bool>) {
        let index = self.candidate(id, text);
        self.assessments.push(AnswerAssessment {
            turn_index: index,
            question_id: id.to_string(),
            specificity: 0.5,
            coverage: Vec::new(),
            depth: Depth::None,
            vague: false,
            evasive: false,
            named_technologies: Vec::new(),
            numbers: years.map(|y| vec![y.to_string()]).unwrap_or_default(),
            years_claimed: years,
            affirmative: yes,
        });
    }
}

/// Knockout answers of a scripted candidate.
pub struct Knockouts {
    pub years: Option<f32>,
    pub can_start: Option<bool>,
}

pub const PASSING: Knockouts = Knockouts {
    years: Some(6.0),
    can_start: Some(true),
};

/// A whole interview on the shipped job.
pub fn interview(job: &Job, profile: Profile, knockouts: Knockouts) -> Script {
    let mut s = Script {
        transcript: Transcript::default(),
        assessments: Vec::new(),
        clock: 0,
    };
    s.interviewer(
        TurnKind::Greeting,
        None,
        "Hi, I'm Viva. This call is recorded and I am an AI. Ready?",
    );
    s.candidate("greeting", "Yes, ready when you are.");
    for k in &job.knockouts {
        s.interviewer(TurnKind::Knockout, Some(&k.id), &k.question);
        if k.id == "api_experience" {
            let text = match knockouts.years {
                Some(y) => format!("I have been designing APIs for {y} years."),
                None => "Quite a while, on and off.".to_string(),
            };
            s.knockout_answer(&k.id, &text, knockouts.years, None);
        } else {
            let text = match knockouts.can_start {
                Some(true) => "Yes, I can start within a month.",
                Some(false) => "No, my notice period is three months.",
                None => "Maybe, I would have to see.",
            };
            s.knockout_answer(&k.id, text, None, knockouts.can_start);
        }
    }
    for q in &job.questions {
        s.interviewer(TurnKind::Question, Some(&q.id), &q.text);
        for (i, said) in answers_for(&q.id, profile).into_iter().enumerate() {
            if i > 0 {
                s.interviewer(
                    TurnKind::FollowUp,
                    Some(&q.id),
                    "Can you give me a concrete example?",
                );
            }
            s.answer(&q.id, &q.areas, said);
        }
    }
    for b in &job.blueprints {
        s.interviewer(TurnKind::Question, Some(&b.id), &b.text);
        for said in answers_for(&b.id, profile) {
            s.answer(&b.id, &b.areas, said);
        }
        for (j, f) in b.follow_ups.iter().enumerate() {
            s.interviewer(TurnKind::BlueprintFollowUp, Some(&f.id), &f.text);
            for said in answers_for(&f.id, profile) {
                // A follow-up answer covers the blueprint area its follow-up is about.
                let areas: Vec<String> = b.areas.iter().skip(j + 1).cloned().collect();
                s.answer(&f.id, &areas, said);
            }
        }
    }
    s.interviewer(
        TurnKind::Closing,
        None,
        "Thank you, the team will be in touch <soon> & well.",
    );
    s
}
