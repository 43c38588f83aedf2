//! The job configuration shipped in `config/jobs/` loads and carries the ids the product
//! documentation and the simulator scripts rely on.

use std::path::PathBuf;

use viva_interview::{DimensionBasis, Job, KnockoutRule};

fn shipped(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../config/jobs")
        .join(name)
}

#[test]
fn backend_developer_job_loads_with_the_expected_ids() {
    let job = Job::load(shipped("backend-developer.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(job.id, "backend-developer");

    let knockouts: Vec<_> = job
        .knockouts
        .iter()
        .map(|k| (k.id.as_str(), k.rule()))
        .collect();
    assert_eq!(
        knockouts,
        [
            ("api_experience", KnockoutRule::MinYears(3.0)),
            ("start_date", KnockoutRule::MustConfirm)
        ]
    );

    let questions: Vec<_> = job.questions.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(
        questions,
        [
            "api_design",
            "db_optimization",
            "reliability",
            "async_tasks"
        ]
    );
    assert!(job.questions.iter().all(|q| q.areas.len() >= 4));

    let blueprints: Vec<_> = job.blueprints.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(blueprints, ["microservices", "caching"]);
    assert!(job.blueprints.iter().all(|b| b.follow_ups.len() == 3));

    let rubric: Vec<_> = job
        .dimensions
        .iter()
        .map(|d| (d.id.as_str(), d.weight))
        .collect();
    assert_eq!(
        rubric,
        [
            ("technical_depth", 25),
            ("api_design", 20),
            ("database_optimization", 18),
            ("service_reliability", 15),
            ("problem_solving", 10),
            ("communication", 7),
            ("blueprint_depth", 5),
        ]
    );
    assert_eq!(
        job.dimension("blueprint_depth").unwrap().basis,
        DimensionBasis::Blueprints
    );

    let required: Vec<_> = job.required_skills.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        required,
        [
            "api_contracts",
            "database_tuning",
            "concurrency",
            "observability"
        ]
    );
    let preferred: Vec<_> = job.preferred_skills.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(preferred, ["kafka", "kubernetes"]);
    assert_eq!(job.competencies.len(), 3);
    let banned: Vec<_> = job.banned_topics.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        banned,
        ["compensation", "other_interviews", "unrelated_projects"]
    );
    assert!((30..=45).contains(&job.duration_minutes));
    assert!((0..=5).contains(&job.max_follow_ups));
}

#[test]
fn every_shipped_job_is_valid() {
    let dir = shipped("");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            Job::load(&path).unwrap_or_else(|e| panic!("{e}"));
            checked += 1;
        }
    }
    assert!(checked >= 1, "no job files in {}", dir.display());
}
