//! The HTML report is self-contained, escapes everything and links evidence to its moment.

mod common;

use common::{PASSING, Profile, interview, shipped_job};
use viva_interview::{HtmlOptions, Report, ReportContext, render_html};

#[test]
fn html_report_escapes_text_and_links_evidence() {
    let job = shipped_job();
    let mut script = interview(&job, Profile::Strong, PASSING);
    // A candidate who says markup, and a name that is markup.
    let answer = script
        .assessments
        .iter()
        .find(|a| a.question_id == "api_design")
        .unwrap()
        .turn_index;
    script.transcript.turns[answer]
        .text
        .push_str(" <script>alert('x')</script> & more.");
    let context = ReportContext {
        candidate: Some("<script>alert(1)</script>".to_string()),
        ..ReportContext::default()
    };
    let report = Report::build(&job, &script.transcript, &script.assessments, &context).unwrap();
    let options = HtmlOptions {
        recording_url: Some("recording.wav?x=\"1\"".to_string()),
    };
    let html = render_html(&report, &script.transcript, &options);

    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        !html.to_lowercase().contains("<script"),
        "unescaped script tag"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more."));
    assert!(html.contains("recording.wav?x=&quot;1&quot;#t="));
    // Self-contained: no external resources of any kind.
    for forbidden in ["<link", " src=", "http://", "https://", "@import"] {
        assert!(!html.contains(forbidden), "found {forbidden}");
    }
    // Every turn has an anchor and every evidence link points at one that exists.
    for i in 0..script.transcript.turns.len() {
        assert!(html.contains(&format!("id=\"turn-{i}\"")));
    }
    let evidence_links = html.matches("href=\"#turn-").count();
    assert!(
        evidence_links >= report.scorecard.dimensions.len(),
        "{evidence_links} evidence links"
    );
    for d in &report.scorecard.dimensions {
        for e in &d.evidence {
            let seconds = format!("#t={:.1}", e.start_ms as f64 / 1000.0);
            assert!(html.contains(&seconds), "no link to {seconds}");
        }
    }
    assert!(html.contains("Strong yes") || html.contains(">Yes<"));
    assert!(html.contains(&report.next_step.replace('"', "&quot;")));
}
