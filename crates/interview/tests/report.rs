//! Scoring and reports on scripted interviews of the shipped backend-developer job.

mod common;

use common::{Knockouts, PASSING, Profile, interview, shipped_job};
use viva_interview::{
    Recommendation, Report, ReportContext, ScoringError, Speaker, Transcript, Turn, TurnKind,
};

fn context() -> ReportContext {
    ReportContext {
        candidate: Some("Dana Example".to_string()),
        completed_at: None,
        ended: None,
        call_length_ms: None,
        models: [
            ("stt", "whisper tiny.en"),
            ("tts", "piper en_US-joe-medium"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    }
}

fn report(profile: Profile, knockouts: Knockouts) -> Report {
    let job = shipped_job();
    let script = interview(&job, profile, knockouts);
    Report::build(&job, &script.transcript, &script.assessments, &context()).unwrap()
}

#[test]
fn strong_specific_answers_score_clearly_higher_than_vague_ones() {
    let strong = report(Profile::Strong, PASSING);
    let vague = report(Profile::Vague, PASSING);
    println!(
        "strong {} {:?}, vague {} {:?}",
        strong.scorecard.overall_score,
        strong.scorecard.recommendation,
        vague.scorecard.overall_score,
        vague.scorecard.recommendation
    );
    for (s, v) in strong
        .scorecard
        .dimensions
        .iter()
        .zip(&vague.scorecard.dimensions)
    {
        println!("  {:<24} strong {:>4}  vague {:>4}", s.id, s.score, v.score);
        assert!(s.assessed && v.assessed, "{} should be assessed", s.id);
        assert!(
            s.score >= v.score + 2.0,
            "{}: strong {} vs vague {}",
            s.id,
            s.score,
            v.score
        );
    }
    assert!(strong.scorecard.overall_score >= vague.scorecard.overall_score + 40.0);
    assert!(
        strong.scorecard.recommendation >= Recommendation::Yes,
        "{:?}",
        strong.scorecard.recommendation
    );
    assert_eq!(vague.scorecard.recommendation, Recommendation::No);
    for (s, v) in strong
        .scorecard
        .required_skills
        .iter()
        .zip(&vague.scorecard.required_skills)
    {
        assert!(
            s.score > v.score + 3.0,
            "{}: {} vs {}",
            s.id,
            s.score,
            v.score
        );
    }
    assert!(strong.scorecard.competencies.iter().all(|c| c.passed));
    assert!(vague.scorecard.competencies.iter().all(|c| !c.passed));
    assert!(
        strong
            .scorecard
            .preferred_skills
            .iter()
            .all(|p| p.demonstrated)
    );
    assert!(
        vague
            .scorecard
            .preferred_skills
            .iter()
            .all(|p| !p.demonstrated)
    );
    assert!(!strong.strengths.is_empty());
    assert!(vague.risks.iter().any(|r| r.contains("vague or evasive")));
}

#[test]
fn scores_rise_with_specificity_coverage_and_depth() {
    let job = shipped_job();
    let mut previous = -1.0;
    for step in 0..=10 {
        let mut script = interview(&job, Profile::Strong, PASSING);
        let s = step as f32 / 10.0;
        for a in &mut script.assessments {
            a.specificity = s;
            let covered = (a.coverage.len() * step).div_ceil(10);
            for (i, area) in a.coverage.iter_mut().enumerate() {
                area.1 = i < covered;
            }
        }
        let report =
            Report::build(&job, &script.transcript, &script.assessments, &context()).unwrap();
        assert!(
            report.scorecard.overall_score >= previous,
            "step {step}: {} < {previous}",
            report.scorecard.overall_score
        );
        previous = report.scorecard.overall_score;
    }
}

#[test]
fn same_input_gives_byte_identical_json() {
    let job = shipped_job();
    let script = interview(&job, Profile::Strong, PASSING);
    let first = Report::build(&job, &script.transcript, &script.assessments, &context())
        .unwrap()
        .to_json();
    // Round-trip the transcript through its JSON form, as a reload from disk would.
    let reloaded: Transcript = serde_json::from_str(&script.transcript.to_json()).unwrap();
    let second = Report::build(&job, &reloaded, &script.assessments, &context())
        .unwrap()
        .to_json();
    assert_eq!(first, second);
    let value: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(value["versions"]["job_id"], "backend-developer");
    assert_eq!(value["versions"]["job_fingerprint"], job.fingerprint());
    assert_eq!(value["versions"]["models"]["stt"], "whisper tiny.en");
    assert!(value["recommendation"].is_string());
    assert_eq!(value["dimensions"].as_array().unwrap().len(), 7);
}

#[test]
fn a_failed_knockout_forces_no() {
    let few_years = report(
        Profile::Strong,
        Knockouts {
            years: Some(2.0),
            can_start: Some(true),
        },
    );
    assert_eq!(few_years.scorecard.recommendation, Recommendation::No);
    let k = &few_years.scorecard.knockouts[0];
    assert!(k.asked && !k.passed, "{k:?}");
    assert!(
        few_years.scorecard.overall_score > 70.0,
        "the score itself stays high: {}",
        few_years.scorecard.overall_score
    );
    assert!(few_years.next_step.starts_with("Do not advance"));
    assert!(k.evidence[0].quote.contains("2 years"), "{:?}", k.evidence);

    let no_years = report(
        Profile::Strong,
        Knockouts {
            years: None,
            can_start: Some(true),
        },
    );
    assert_eq!(no_years.scorecard.recommendation, Recommendation::No);
    assert_eq!(
        no_years.scorecard.knockouts[0].detail,
        "no number of years given"
    );

    let cannot_start = report(
        Profile::Strong,
        Knockouts {
            years: Some(6.0),
            can_start: Some(false),
        },
    );
    assert_eq!(cannot_start.scorecard.recommendation, Recommendation::No);
    assert!(
        cannot_start.scorecard.knockouts[0].passed && !cannot_start.scorecard.knockouts[1].passed
    );
}

#[test]
fn an_unasked_knockout_caps_at_maybe() {
    let job = shipped_job();
    let mut script = interview(&job, Profile::Strong, PASSING);
    // Remove the start_date question and its answer, as if the interviewer skipped it.
    let question = script
        .transcript
        .turns
        .iter()
        .position(|t| t.question_id.as_deref() == Some("start_date"))
        .unwrap();
    script.transcript.turns.drain(question..question + 2);
    script.assessments.retain(|a| a.question_id != "start_date");
    for a in &mut script.assessments {
        if a.turn_index > question {
            a.turn_index -= 2;
        }
    }
    let report = Report::build(&job, &script.transcript, &script.assessments, &context()).unwrap();
    assert_eq!(report.scorecard.recommendation, Recommendation::Maybe);
    assert!(!report.scorecard.knockouts[1].asked);
    assert!(
        report
            .scorecard
            .recommendation_reason
            .contains("start_date")
    );
}

#[test]
fn evidence_quotes_are_verbatim_and_timed_within_their_turn() {
    let job = shipped_job();
    for profile in [Profile::Strong, Profile::Vague] {
        let script = interview(&job, profile, PASSING);
        let report =
            Report::build(&job, &script.transcript, &script.assessments, &context()).unwrap();
        let mut quotes = Vec::new();
        for d in &report.scorecard.dimensions {
            assert!(!d.evidence.is_empty(), "{} has no evidence", d.id);
            quotes.extend(&d.evidence);
        }
        quotes.extend(report.scorecard.knockouts.iter().flat_map(|k| &k.evidence));
        quotes.extend(
            report
                .scorecard
                .required_skills
                .iter()
                .flat_map(|s| &s.evidence),
        );
        quotes.extend(
            report
                .scorecard
                .competencies
                .iter()
                .flat_map(|c| &c.evidence),
        );
        for e in quotes {
            let turn = &script.transcript.turns[e.turn];
            assert_eq!(turn.speaker, Speaker::Candidate);
            assert!(
                turn.text.contains(&e.quote),
                "{:?} not in {:?}",
                e.quote,
                turn.text
            );
            assert!(!e.quote.trim().is_empty() && e.quote.trim() == e.quote);
            assert!(
                turn.start_ms <= e.start_ms && e.start_ms < e.end_ms && e.end_ms <= turn.end_ms
            );
        }
    }
    // Strong evidence favours concrete sentences: numbers and named technologies.
    let strong = report(Profile::Strong, PASSING);
    let db = strong
        .scorecard
        .dimensions
        .iter()
        .find(|d| d.id == "database_optimization")
        .unwrap();
    assert!(
        db.evidence[0].quote.chars().any(|c| c.is_ascii_digit()),
        "{:?}",
        db.evidence
    );
}

/// An answer the candidate went on with after talking over the first words of the reply
/// (two turns, [`Transcript::continued_answer`]) scores as the same answer in one turn, and
/// its evidence points into whichever turn said it.
#[test]
fn an_answer_in_two_turns_scores_as_one_with_evidence_in_each() {
    let job = shipped_job();
    let whole = interview(&job, Profile::Strong, PASSING);
    let assessed = whole
        .assessments
        .iter()
        .find(|a| a.question_id == "db_optimization")
        .unwrap()
        .turn_index;
    let turn = &whole.transcript.turns[assessed];
    let cut = turn.text.find(". ").expect("two sentences") + 1;
    let middle = turn.start_ms + (turn.end_ms - turn.start_ms) / 3;
    let mut split = Transcript {
        turns: whole.transcript.turns[..assessed].to_vec(),
    };
    split.turns.extend([
        Turn::candidate(
            turn.question_id.as_deref(),
            &turn.text[..cut],
            turn.start_ms,
            middle,
        ),
        Turn::interviewer(
            TurnKind::FollowUp,
            turn.question_id.as_deref(),
            "Thanks. Can you",
            middle,
            middle + 200,
        )
        .interrupted(),
        Turn::candidate(
            turn.question_id.as_deref(),
            &turn.text[cut + 1..],
            middle + 300,
            turn.end_ms,
        ),
    ]);
    split
        .turns
        .extend_from_slice(&whole.transcript.turns[assessed + 1..]);
    let mut assessments = whole.assessments.clone();
    for a in &mut assessments {
        if a.turn_index > assessed {
            a.turn_index += 2;
        }
    }

    let one = Report::build(&job, &whole.transcript, &whole.assessments, &context()).unwrap();
    let two = Report::build(&job, &split, &assessments, &context()).unwrap();
    let scores =
        |r: &Report| -> Vec<f64> { r.scorecard.dimensions.iter().map(|d| d.score).collect() };
    assert_eq!(scores(&two), scores(&one));
    let db = |r: &Report| {
        r.scorecard
            .dimensions
            .iter()
            .find(|d| d.id == "database_optimization")
            .unwrap()
            .evidence
            .clone()
    };
    let evidence = db(&two);
    assert_eq!(
        evidence.iter().map(|e| &e.quote).collect::<Vec<_>>(),
        db(&one).iter().map(|e| &e.quote).collect::<Vec<_>>()
    );
    for e in &evidence {
        let said = &split.turns[e.turn];
        assert!(said.text.contains(&e.quote), "{e:?} not in {said:?}");
        assert!(
            said.start_ms <= e.start_ms && e.end_ms <= said.end_ms,
            "{e:?}"
        );
    }
    assert!(
        evidence.iter().any(|e| e.turn == assessed + 2),
        "no evidence from the rest of the answer: {evidence:?}"
    );
}

#[test]
fn coverage_reports_asked_answered_follow_ups_and_areas() {
    let strong = report(Profile::Strong, PASSING);
    let vague = report(Profile::Vague, PASSING);
    let ids: Vec<&str> = strong
        .scorecard
        .coverage
        .iter()
        .map(|c| c.question_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "api_design",
            "db_optimization",
            "reliability",
            "async_tasks",
            "microservices",
            "caching"
        ]
    );
    assert!(
        strong
            .scorecard
            .coverage
            .iter()
            .all(|c| c.asked && c.answered)
    );
    assert!(
        strong.scorecard.coverage[..4]
            .iter()
            .all(|c| c.areas_missed.is_empty() && c.follow_ups == 0)
    );
    assert_eq!(strong.scorecard.coverage[4].follow_ups, 3);
    assert!(
        vague.scorecard.coverage[..4]
            .iter()
            .all(|c| c.follow_ups == 1 && c.areas_covered.is_empty())
    );
    assert!(
        vague
            .scorecard
            .coverage
            .iter()
            .all(|c| c.score < strong.scorecard.coverage[0].score)
    );
}

#[test]
fn assessments_must_fit_the_transcript() {
    let job = shipped_job();
    let mut script = interview(&job, Profile::Strong, PASSING);
    script.assessments[0].turn_index = 10_000;
    assert!(matches!(
        Report::build(&job, &script.transcript, &script.assessments, &context()),
        Err(ScoringError::TurnOutOfRange {
            turn_index: 10_000,
            ..
        })
    ));
    script.assessments[0].turn_index = 0; // the greeting, an interviewer turn
    assert!(matches!(
        Report::build(&job, &script.transcript, &script.assessments, &context()),
        Err(ScoringError::NotAnAnswer { turn_index: 0 })
    ));
    script.assessments[0].turn_index = script.assessments[1].turn_index;
    assert!(matches!(
        Report::build(&job, &script.transcript, &script.assessments, &context()),
        Err(ScoringError::DuplicateAssessment { .. })
    ));
}
