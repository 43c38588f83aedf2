//! A readable, self-contained HTML rendering of a report and its transcript (`report.html`):
//! inline CSS, no scripts, no external resources, so it can be mailed, archived or opened from
//! disk. Every piece of text is escaped; evidence quotes link to their moment in the recording
//! (`recording.wav#t=12.3`, a media fragment browsers seek to) and to the transcript turn.

use std::fmt::Write;

use crate::report::Report;
use crate::scoring::{Evidence, Recommendation};
use crate::transcript::{Speaker, Transcript, TurnKind};

/// How to link the rendering to the call's other files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HtmlOptions {
    /// URL of the recording relative to the page (e.g. `recording.wav`); when set, timestamps
    /// link to `URL#t=SECONDS`.
    pub recording_url: Option<String>,
}

const STYLE: &str = "
body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1d2330;background:#f5f6f8;margin:0}
main{max-width:960px;margin:0 auto;padding:24px}
section{background:#fff;border:1px solid #e1e4ea;border-radius:8px;padding:16px 20px;margin:16px 0}
h1{margin:0 0 4px;font-size:26px}h2{margin:0 0 12px;font-size:18px}
.muted{color:#5d6675}.small{font-size:13px}
header{display:flex;justify-content:space-between;align-items:center;gap:16px;flex-wrap:wrap}
.score{font-size:40px;font-weight:700;text-align:right}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;font-size:14px;color:#fff}
.strong_yes{background:#137333}.yes{background:#2e7d32}.maybe{background:#b26a00}.no{background:#b3261e}
.pass{color:#137333;font-weight:600}.fail{color:#b3261e;font-weight:600}.na{color:#5d6675;font-weight:600}
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;padding:6px 8px;border-top:1px solid #eceef2}
th{font-size:13px;color:#5d6675;border-top:none}
.bar{background:#eceef2;border-radius:4px;height:8px;width:120px}.bar span{display:block;height:8px;border-radius:4px;background:#3b6fd8}
blockquote{margin:6px 0;padding:4px 10px;border-left:3px solid #3b6fd8;background:#f3f6fd}
blockquote a{font-size:12px;margin-left:6px}
.turn{display:grid;grid-template-columns:70px 110px 1fr;gap:8px;padding:6px 0;border-top:1px solid #eceef2}
.turn.candidate{background:#fafbfc}.turn .who{font-weight:600}.turn:target{background:#fff4d6}
.kind{font-size:12px;color:#5d6675}
ul{margin:4px 0;padding-left:20px}
";

/// Renders the report and its transcript as one HTML page.
pub fn render_html(report: &Report, transcript: &Transcript, options: &HtmlOptions) -> String {
    let mut page = String::new();
    let candidate = report.candidate.as_deref().unwrap_or("Candidate");
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} — {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        escape(candidate),
        escape(&report.job_title)
    );
    header(&mut page, report, candidate);
    knockouts(&mut page, report, options);
    dimensions(&mut page, report, options);
    skills(&mut page, report, options);
    coverage(&mut page, report);
    summary(&mut page, report);
    transcript_section(&mut page, transcript, options);
    let v = &report.versions;
    let models: Vec<String> = v
        .models
        .iter()
        .map(|(role, model)| format!("{}: {}", escape(role), escape(model)))
        .collect();
    let _ = write!(
        page,
        "<p class=\"muted small\">Job {} ({}) · Viva {}{}{}</p>\n</main>\n</body>\n</html>\n",
        escape(&v.job_id),
        escape(&v.job_fingerprint),
        escape(&v.viva),
        if models.is_empty() { "" } else { " · " },
        models.join(" · ")
    );
    page
}

fn header(page: &mut String, report: &Report, candidate: &str) {
    let mut meta = vec![format!("Interview length {}", clock(report.duration_ms))];
    // How it ended, in the words the API's `end_reason` stands for: "completed" alone would
    // misstate an interview the candidate ended.
    let ended = report
        .ended
        .as_ref()
        .map_or("ended", |ended| ended.description.as_str());
    match &report.completed_at {
        Some(at) => meta.push(format!("{} {}", escape(ended), escape(at))),
        None if report.ended.is_some() => meta.push(escape(ended)),
        None => {}
    }
    let _ = writeln!(
        page,
        "<section><header><div><h1>{}</h1><div class=\"muted\">{}</div><div class=\"muted small\">{}</div></div>\
         <div><div class=\"score\">{}<span class=\"muted small\">/100</span></div>{}</div></header>\
         <p>{}</p></section>",
        escape(candidate),
        escape(&report.job_title),
        meta.join(" · "),
        report.scorecard.overall_score,
        badge(report.scorecard.recommendation),
        escape(&report.scorecard.recommendation_reason)
    );
}

fn badge(recommendation: Recommendation) -> String {
    let label = match recommendation {
        Recommendation::StrongYes => "Strong yes",
        Recommendation::Yes => "Yes",
        Recommendation::Maybe => "Maybe",
        Recommendation::No => "No",
    };
    format!(
        "<span class=\"badge {}\">{label}</span>",
        recommendation.as_str()
    )
}

fn verdict(passed: bool) -> &'static str {
    if passed {
        "<span class=\"pass\">Passed</span>"
    } else {
        "<span class=\"fail\">Failed</span>"
    }
}

fn knockouts(page: &mut String, report: &Report, options: &HtmlOptions) {
    if report.scorecard.knockouts.is_empty() {
        return;
    }
    page.push_str("<section><h2>Knockouts</h2><table><tr><th>Question</th><th>Fails if</th><th>Result</th></tr>\n");
    for k in &report.scorecard.knockouts {
        let result = if k.asked {
            verdict(k.passed)
        } else {
            "<span class=\"na\">Not asked</span>"
        };
        let _ = writeln!(
            page,
            "<tr><td>{}{}</td><td>{}</td><td>{result}<div class=\"muted small\">{}</div></td></tr>",
            escape(&k.question),
            quotes(&k.evidence, options),
            escape(&k.fail_if),
            escape(&k.detail)
        );
    }
    page.push_str("</table></section>\n");
}

fn dimensions(page: &mut String, report: &Report, options: &HtmlOptions) {
    page.push_str(
        "<section><h2>Scores</h2><table><tr><th>Dimension</th><th>Weight</th><th>Score</th><th>Rationale and evidence</th></tr>\n",
    );
    for d in &report.scorecard.dimensions {
        let score = if d.assessed {
            format!(
                "{}/10<div class=\"bar\"><span style=\"width:{}%\"></span></div>",
                d.score,
                (d.score * 10.0).clamp(0.0, 100.0)
            )
        } else {
            "<span class=\"na\">not assessed</span>".to_string()
        };
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}%</td><td>{score}</td><td>{}{}</td></tr>",
            escape(&d.name),
            d.weight,
            escape(&d.rationale),
            quotes(&d.evidence, options)
        );
    }
    page.push_str("</table></section>\n");
}

fn skills(page: &mut String, report: &Report, options: &HtmlOptions) {
    if report.scorecard.competencies.is_empty()
        && report.scorecard.required_skills.is_empty()
        && report.scorecard.preferred_skills.is_empty()
    {
        return;
    }
    page.push_str("<section><h2>Competencies and skills</h2><table><tr><th>Item</th><th>Result</th><th>Evidence</th></tr>\n");
    for c in &report.scorecard.competencies {
        let _ = writeln!(
            page,
            "<tr><td>{}<div class=\"kind\">must-have</div></td><td>{}</td><td>{}</td></tr>",
            escape(&c.name),
            verdict(c.passed),
            quotes(&c.evidence, options)
        );
    }
    for s in &report.scorecard.required_skills {
        let _ = writeln!(
            page,
            "<tr><td>{}<div class=\"kind\">required</div></td><td>{}/10</td><td>{}</td></tr>",
            escape(&s.name),
            s.score,
            quotes(&s.evidence, options)
        );
    }
    for p in &report.scorecard.preferred_skills {
        let result = if p.demonstrated {
            "<span class=\"pass\">Demonstrated</span>"
        } else {
            "<span class=\"na\">Not shown</span>"
        };
        let _ = writeln!(
            page,
            "<tr><td>{}<div class=\"kind\">preferred</div></td><td>{result}</td><td>{}</td></tr>",
            escape(&p.name),
            quotes(&p.evidence, options)
        );
    }
    page.push_str("</table></section>\n");
}

fn coverage(page: &mut String, report: &Report) {
    if report.scorecard.coverage.is_empty() {
        return;
    }
    page.push_str(
        "<section><h2>Question coverage</h2><table><tr><th>Question</th><th>Asked</th><th>Follow-ups</th>\
         <th>Depth</th><th>Score</th><th>Areas covered</th><th>Areas missed</th></tr>\n",
    );
    for c in &report.scorecard.coverage {
        let asked = match (c.asked, c.answered) {
            (true, true) => "answered",
            (true, false) => "no answer",
            (false, _) => "not asked",
        };
        let depth = serde_json::to_value(c.depth)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{asked}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.text),
            c.follow_ups,
            escape(&depth),
            c.score,
            escape(&c.areas_covered.join("; ")),
            escape(&c.areas_missed.join("; "))
        );
    }
    page.push_str("</table></section>\n");
}

fn summary(page: &mut String, report: &Report) {
    let list = |items: &[String]| {
        if items.is_empty() {
            "<p class=\"muted\">None noted.</p>".to_string()
        } else {
            let lis: String = items
                .iter()
                .map(|i| format!("<li>{}</li>", escape(i)))
                .collect();
            format!("<ul>{lis}</ul>")
        }
    };
    let _ = writeln!(
        page,
        "<section><h2>Strengths</h2>{}<h2>Risks</h2>{}<h2>Suggested next step</h2><p>{}</p></section>",
        list(&report.strengths),
        list(&report.risks),
        escape(&report.next_step)
    );
}

fn transcript_section(page: &mut String, transcript: &Transcript, options: &HtmlOptions) {
    page.push_str("<section><h2>Transcript</h2>\n");
    for (index, turn) in transcript.turns.iter().enumerate() {
        let (class, who) = match turn.speaker {
            Speaker::Interviewer => ("interviewer", "Interviewer"),
            Speaker::Candidate => ("candidate", "Candidate"),
        };
        let mut kind = kind_label(turn.kind).to_string();
        if turn.interrupted {
            kind.push_str(", interrupted");
        }
        let _ = writeln!(
            page,
            "<div class=\"turn {class}\" id=\"turn-{index}\"><div class=\"small\">{}</div>\
             <div><div class=\"who\">{who}</div><div class=\"kind\">{}</div></div><div>{}</div></div>",
            timestamp(turn.start_ms, options),
            escape(&kind),
            escape(&turn.text)
        );
    }
    page.push_str("</section>\n");
}

fn kind_label(kind: TurnKind) -> &'static str {
    match kind {
        TurnKind::Greeting => "greeting",
        TurnKind::Notice => "notice",
        TurnKind::Knockout => "knockout",
        TurnKind::Question => "question",
        TurnKind::FollowUp => "follow-up",
        TurnKind::BlueprintFollowUp => "blueprint follow-up",
        TurnKind::Clarification => "clarification",
        TurnKind::Nudge => "nudge",
        TurnKind::Steer => "steer",
        TurnKind::CandidateQuestions => "candidate questions",
        TurnKind::Closing => "closing",
        TurnKind::Answer => "answer",
    }
}

fn quotes(evidence: &[Evidence], options: &HtmlOptions) -> String {
    evidence
        .iter()
        .map(|e| {
            format!(
                "<blockquote>“{}”{}<a href=\"#turn-{}\">transcript</a></blockquote>",
                escape(&e.quote),
                timestamp(e.start_ms, options),
                e.turn
            )
        })
        .collect()
}

/// `m:ss`, linked into the recording when there is one.
fn timestamp(ms: u64, options: &HtmlOptions) -> String {
    match &options.recording_url {
        Some(url) => format!(
            "<a href=\"{}#t={:.1}\">{}</a>",
            escape(url),
            ms as f64 / 1000.0,
            clock(ms)
        ),
        None => clock(ms),
    }
}

fn clock(ms: u64) -> String {
    let seconds = ms / 1000;
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

/// Escapes text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
    }

    #[test]
    fn timestamps_link_into_the_recording() {
        let options = HtmlOptions {
            recording_url: Some("recording.wav".to_string()),
        };
        assert_eq!(
            timestamp(72_340, &options),
            "<a href=\"recording.wav#t=72.3\">1:12</a>"
        );
        assert_eq!(timestamp(72_340, &HtmlOptions::default()), "1:12");
    }
}
