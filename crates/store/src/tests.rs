//! The store's behaviour, every case run twice: on SQLite in a temporary directory and on a real
//! PostgreSQL server (start one with `scripts/postgres-test-server` and pass its URL in
//! `VIVA_TEST_POSTGRES_URL`; each case gets a database of its own there).

use std::collections::HashSet;
use std::sync::Arc;

use sqlx::{AnyConnection, AssertSqlSafe, Connection};
use tokio::sync::Barrier;
use viva_test_support::TempDir;
use viva_test_support::scratch_dir;
use viva_test_support::services::service_url;

use super::*;

/// The PostgreSQL server's URL. Without one the PostgreSQL cases pass without running (with a
/// note), unless `VIVA_TEST_REQUIRE_SERVICES=1` (CI) makes that a failure: the PostgreSQL
/// option is only known to work where this suite ran on a real server.
fn postgres_url() -> Option<String> {
    service_url("VIVA_TEST_POSTGRES_URL", "scripts/postgres-test-server")
}

/// An ending with the reason its outcome usually has.
fn ending(
    outcome: Outcome,
    at: Timestamp,
    duration_ms: Option<u64>,
    failure: Option<&str>,
) -> Ending {
    Ending {
        outcome,
        reason: match outcome {
            Outcome::Completed => EndReason::ReachedClosing,
            Outcome::Abandoned => EndReason::EndedByCandidate,
            Outcome::Failed => EndReason::Error,
        },
        at,
        duration_ms,
        failure: failure.map(str::to_owned),
    }
}

/// One case's database and data directory.
struct Db {
    url: String,
    data_dir: PathBuf,
    /// Holds `data_dir` (and SQLite's file); removed with it.
    _scratch: TempDir,
    /// The server's URL and this case's database on it.
    postgres: Option<(String, String)>,
}

impl Db {
    fn sqlite(case: &str) -> Db {
        let scratch = scratch_dir(&format!("store-sqlite-{case}"));
        Db {
            url: format!("sqlite://{}/viva.db", scratch.path().display()),
            data_dir: scratch.path().to_owned(),
            _scratch: scratch,
            postgres: None,
        }
    }

    /// `None` when there is no PostgreSQL server to test on.
    async fn postgres(case: &str) -> Option<Db> {
        let server = postgres_url()?;
        let name = format!("viva_store_{case}");
        // Dropped first: a failed earlier run leaves its database behind.
        admin(
            &server,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await;
        admin(&server, &format!("CREATE DATABASE {name}")).await;
        let (base, query) = server.split_once('?').unwrap_or((&server, ""));
        let (host, _) = base
            .rsplit_once('/')
            .expect("VIVA_TEST_POSTGRES_URL has no /DATABASE part");
        let url = if query.is_empty() {
            format!("{host}/{name}")
        } else {
            format!("{host}/{name}?{query}")
        };
        let scratch = scratch_dir(&format!("store-postgres-{case}"));
        Some(Db {
            url,
            data_dir: scratch.path().to_owned(),
            _scratch: scratch,
            postgres: Some((server, name)),
        })
    }

    async fn open(&self) -> Store {
        Store::open(&self.url, &self.data_dir)
            .await
            .unwrap_or_else(|err| panic!("{err}"))
    }

    async fn clean_up(self) {
        if let Some((server, name)) = &self.postgres {
            admin(
                server,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await;
        }
    }
}

async fn admin(server: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(server)
        .await
        .unwrap_or_else(|err| panic!("cannot connect to {server}: {err}"));
    sqlx::query(AssertSqlSafe(sql.to_string()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
}

/// Runs each case on SQLite (`sqlite::CASE`) and on PostgreSQL (`postgres::CASE`, which passes
/// without running when there is no server; see [`postgres_url`]).
macro_rules! on_both_databases {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = super::Db::sqlite(stringify!($case));
                    super::$case(&db).await;
                    db.clean_up().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(db) = super::Db::postgres(stringify!($case)).await else {
                        return;
                    };
                    super::$case(&db).await;
                    db.clean_up().await;
                }
            )*
        }
    };
}

on_both_databases!(
    created_interview_reads_back,
    timestamps_round_trip,
    start_is_compare_and_set,
    start_races_have_one_winner,
    finish_transitions,
    pin_lookup_finds_only_open_interviews,
    pins_are_unique_among_open_interviews,
    interview_dirs_stay_in_the_data_dir,
    pages_are_newest_first,
    leases_hand_interviews_of_dead_nodes_to_one_live_node,
    settings_keep_the_first_value,
    reopening_keeps_data,
    dial_status_is_kept,
    accounts_are_found_by_email_in_any_case,
    sessions_expire_and_end,
    decisions_keep_their_history,
    the_list_filters_searches_and_sorts,
    api_keys_open_only_while_live,
    disabled_accounts_sign_nobody_in,
    job_versions_are_added_only_on_change,
    racing_job_versions_get_distinct_numbers,
    interviews_record_their_job_version,
    webhook_messages_go_to_the_endpoints_that_take_them,
    config_endpoints_are_synced_by_url,
    webhook_leases_have_one_winner,
    webhook_attempts_are_recorded_until_delivered_or_failed,
    old_finished_deliveries_are_pruned,
);

const JOB: &str = "backend-developer";
/// 2030-01-01T00:00:00.000Z
const EXPIRES_MS: i64 = 1_893_456_000_000;

/// A lease that outlasts every test.
fn test_lease() -> Lease {
    Lease {
        node: "test-node".to_string(),
        until: Timestamp::from_unix_ms(EXPIRES_MS),
    }
}

fn new_interview(name: &str) -> NewInterview {
    NewInterview {
        job: JOB.to_string(),
        candidate: Candidate {
            name: name.to_string(),
            email: Some(format!("{}@example.com", name.to_lowercase())),
            phone: None,
        },
        expires_at: Timestamp::from_unix_ms(EXPIRES_MS),
    }
}

/// Ids `case-0`, `case-1`, ... for [`Store::create_with`].
fn ids(prefix: &str) -> impl FnMut() -> String {
    let prefix = prefix.to_string();
    let mut n = 0;
    move || {
        n += 1;
        format!("{prefix}-{n}")
    }
}

/// PINs from a list, for [`Store::create_with`].
fn pins(list: &[&str]) -> impl FnMut() -> String {
    let mut list: Vec<String> = list.iter().rev().map(|p| p.to_string()).collect();
    move || list.pop().expect("the test ran out of PINs")
}

async fn created_interview_reads_back(db: &Db) {
    let store = db.open().await;
    let before = Timestamp::now();
    let mut new = new_interview("Ada Lovelace");
    new.candidate.phone = Some("sip:ada@example.com".to_string());
    let created = store.create_interview(new.clone()).await.unwrap();
    let after = Timestamp::now();

    assert_eq!(created.id.len(), ID_LEN);
    assert!(
        created
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    );
    assert_eq!(created.pin.len(), PIN_DIGITS);
    assert_ne!(created.pin.as_bytes()[0], b'0');
    assert!(created.pin.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(created.status, Status::Scheduled);
    assert_eq!(created.job, JOB);
    assert_eq!(created.candidate, new.candidate);
    assert_eq!(created.expires_at, new.expires_at);
    assert!(before <= created.created_at && created.created_at <= after);
    assert_eq!(
        (
            created.started_at,
            created.ended_at,
            created.duration_ms,
            &created.failure
        ),
        (None, None, None, &None)
    );
    assert_eq!(
        store.interview(&created.id).await.unwrap(),
        Some(created.clone())
    );

    // A candidate with no email or phone keeps them absent (NULL), not empty.
    let mut bare = new_interview("Grace");
    bare.candidate.email = None;
    let bare = store.create_interview(bare).await.unwrap();
    let read = store.interview(&bare.id).await.unwrap().unwrap();
    assert_eq!((read.candidate.email, read.candidate.phone), (None, None));
    assert_ne!(bare.id, created.id);

    assert_eq!(store.interview("nosuchinterview0").await.unwrap(), None);
    assert_eq!(store.interview("../../etc/passwd").await.unwrap(), None);
}

async fn dial_status_is_kept(db: &Db) {
    let store = db.open().await;
    let created = store.create_interview(new_interview("Ada")).await.unwrap();
    assert_eq!(created.dial, None);
    let at = Timestamp::from_unix_ms(1_800_000_000_123);
    store
        .set_dial_status(&created.id, "ringing", at)
        .await
        .unwrap();
    store
        .set_dial_status(
            &created.id,
            "busy",
            Timestamp::from_unix_ms(at.unix_ms() + 5),
        )
        .await
        .unwrap();
    let read = store.interview(&created.id).await.unwrap().unwrap();
    assert_eq!(
        read.dial,
        Some(Dial {
            status: "busy".to_string(),
            at: Timestamp::from_unix_ms(at.unix_ms() + 5)
        })
    );
    // Other interviews are untouched.
    let other = store
        .create_interview(new_interview("Grace"))
        .await
        .unwrap();
    assert_eq!(
        store.interview(&other.id).await.unwrap().unwrap().dial,
        None
    );
}

async fn timestamps_round_trip(db: &Db) {
    let store = db.open().await;
    // Millisecond values that a lossy (seconds, float) column would change.
    let created_at = Timestamp::from_unix_ms(1_793_973_787_001);
    let mut new = new_interview("Edsger");
    new.expires_at = Timestamp::from_unix_ms(1_794_060_187_999);
    let created = store
        .create_with(new, created_at, ids("ts"), pins(&["111111"]))
        .await
        .unwrap();
    let started_at = Timestamp::from_unix_ms(1_793_973_800_123);
    let ended_at = Timestamp::from_unix_ms(1_793_975_600_456);
    assert!(
        store
            .start(&created.id, started_at, &test_lease())
            .await
            .unwrap()
    );
    store
        .finish(
            &created.id,
            &ending(Outcome::Completed, ended_at, Some(1_800_333), None),
        )
        .await
        .unwrap();

    let read = store.interview(&created.id).await.unwrap().unwrap();
    assert_eq!(read.created_at, created_at);
    assert_eq!(read.expires_at.unix_ms(), 1_794_060_187_999);
    assert_eq!(read.started_at, Some(started_at));
    assert_eq!(read.ended_at, Some(ended_at));
    assert_eq!(read.duration_ms, Some(1_800_333));
    assert_eq!(read.end_reason, Some(EndReason::ReachedClosing));
    assert_eq!(read.created_at.to_string(), "2026-11-06T14:03:07.001Z");

    // The duration is the call's own length, not the wall-clock time between start and end
    // (which would count the time a crashed server was down).
    let recovered = store
        .create_interview(new_interview("Crash"))
        .await
        .unwrap();
    assert!(
        store
            .start(&recovered.id, started_at, &test_lease())
            .await
            .unwrap()
    );
    let mut after_crash = ending(Outcome::Abandoned, ended_at, Some(42_000), None);
    after_crash.reason = EndReason::ServerStopped;
    store.finish(&recovered.id, &after_crash).await.unwrap();
    let read = store.interview(&recovered.id).await.unwrap().unwrap();
    assert_eq!(read.duration_ms, Some(42_000));
    assert_eq!(read.end_reason, Some(EndReason::ServerStopped));
}

async fn start_is_compare_and_set(db: &Db) {
    let store = db.open().await;
    let interview = store.create_interview(new_interview("Alan")).await.unwrap();
    let at = Timestamp::from_unix_ms(1_793_973_787_250);
    assert!(store.start(&interview.id, at, &test_lease()).await.unwrap());
    // A second start (a reload, a second tab) does not move the start time.
    let later = Timestamp::from_unix_ms(at.unix_ms() + 5_000);
    assert!(
        !store
            .start(&interview.id, later, &test_lease())
            .await
            .unwrap()
    );
    let read = store.interview(&interview.id).await.unwrap().unwrap();
    assert_eq!(read.status, Status::InProgress);
    assert_eq!(read.started_at, Some(at));
    assert!(
        !store
            .start("nosuchinterview0", at, &test_lease())
            .await
            .unwrap()
    );
}

async fn start_races_have_one_winner(db: &Db) {
    // Two racers per interview: one through the same pool, one through a second store on the
    // same database (as a second server process would be).
    let first = db.open().await;
    let second = db.open().await;
    for round in 0..20 {
        let interview = first
            .create_interview(new_interview(&format!("Racer {round}")))
            .await
            .unwrap();
        let barrier = Arc::new(Barrier::new(3));
        let racers: Vec<_> = [first.clone(), first.clone(), second.clone()]
            .into_iter()
            .enumerate()
            .map(|(n, store)| {
                let barrier = Arc::clone(&barrier);
                let id = interview.id.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    let at = Timestamp::from_unix_ms(1_793_973_787_000 + n as i64);
                    (at, store.start(&id, at, &test_lease()).await.unwrap())
                })
            })
            .collect();
        let mut winners = Vec::new();
        for racer in racers {
            let (at, won) = racer.await.unwrap();
            if won {
                winners.push(at);
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: {winners:?} all started the interview"
        );
        let read = first.interview(&interview.id).await.unwrap().unwrap();
        assert_eq!(read.started_at, Some(winners[0]), "round {round}");
    }
}

async fn finish_transitions(db: &Db) {
    let store = db.open().await;
    let at = |ms: i64| Timestamp::from_unix_ms(1_793_973_787_000 + ms);

    // in progress -> completed
    let completed = store.create_interview(new_interview("A")).await.unwrap();
    assert!(
        store
            .start(&completed.id, at(0), &test_lease())
            .await
            .unwrap()
    );
    store
        .finish(
            &completed.id,
            &ending(Outcome::Completed, at(90_000), Some(90_000), None),
        )
        .await
        .unwrap();
    let read = store.interview(&completed.id).await.unwrap().unwrap();
    assert_eq!(read.status, Status::Completed);
    assert_eq!(
        (read.ended_at, read.duration_ms, read.failure),
        (Some(at(90_000)), Some(90_000), None)
    );

    // scheduled -> abandoned: never started, so no start and no duration
    let never = store.create_interview(new_interview("B")).await.unwrap();
    store
        .finish(&never.id, &ending(Outcome::Abandoned, at(1), None, None))
        .await
        .unwrap();
    let read = store.interview(&never.id).await.unwrap().unwrap();
    assert_eq!(read.status, Status::Abandoned);
    assert_eq!(
        (read.started_at, read.ended_at, read.duration_ms),
        (None, Some(at(1)), None)
    );
    // A finished interview cannot start.
    assert!(!store.start(&never.id, at(2), &test_lease()).await.unwrap());

    // in progress -> failed, with the reason
    let failed = store.create_interview(new_interview("C")).await.unwrap();
    assert!(store.start(&failed.id, at(0), &test_lease()).await.unwrap());
    store
        .finish(
            &failed.id,
            &ending(
                Outcome::Failed,
                at(10),
                Some(10),
                Some("the speech engine stopped"),
            ),
        )
        .await
        .unwrap();
    let read = store.interview(&failed.id).await.unwrap().unwrap();
    assert_eq!(read.status, Status::Failed);
    assert_eq!(read.failure.as_deref(), Some("the speech engine stopped"));

    // The first end stands.
    let again = store
        .finish(
            &completed.id,
            &ending(Outcome::Failed, at(99_000), None, Some("late")),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&again, StoreError::AlreadyFinished { id, status: Status::Completed } if *id == completed.id),
        "{again}"
    );
    assert!(
        again.to_string().contains("already ended as completed"),
        "{again}"
    );
    let read = store.interview(&completed.id).await.unwrap().unwrap();
    assert_eq!(
        (read.status, read.ended_at, read.failure),
        (Status::Completed, Some(at(90_000)), None)
    );

    let unknown = store
        .finish(
            "nosuchinterview0",
            &ending(Outcome::Completed, at(0), None, None),
        )
        .await
        .unwrap_err();
    assert!(matches!(unknown, StoreError::NotFound { .. }), "{unknown}");
}

async fn pin_lookup_finds_only_open_interviews(db: &Db) {
    let store = db.open().await;
    let new = || new_interview("Pin");
    let now = Timestamp::now();
    let scheduled = store
        .create_with(new(), now, ids("pin"), pins(&["200001"]))
        .await
        .unwrap();
    let running = store
        .create_with(new(), now, ids("run"), pins(&["200002"]))
        .await
        .unwrap();
    let finished = store
        .create_with(new(), now, ids("end"), pins(&["200003"]))
        .await
        .unwrap();
    assert!(store.start(&running.id, now, &test_lease()).await.unwrap());
    store
        .finish(&finished.id, &ending(Outcome::Completed, now, None, None))
        .await
        .unwrap();

    let found = |pin: &'static str| {
        let store = store.clone();
        async move { store.interview_by_pin(pin).await.unwrap().map(|i| i.id) }
    };
    assert_eq!(found("200001").await, Some(scheduled.id));
    assert_eq!(found("200002").await, Some(running.id));
    assert_eq!(found("200003").await, None);
    assert_eq!(found("999999").await, None);
    assert_eq!(found("").await, None);
}

async fn pins_are_unique_among_open_interviews(db: &Db) {
    let store = db.open().await;
    let now = Timestamp::now();
    let first = store
        .create_with(new_interview("First"), now, ids("a"), pins(&["123456"]))
        .await
        .unwrap();
    // The second draw collides with the first interview's PIN, so the store draws again.
    let second = store
        .create_with(
            new_interview("Second"),
            now,
            ids("b"),
            pins(&["123456", "654321"]),
        )
        .await
        .unwrap();
    assert_eq!(
        (first.pin.as_str(), second.pin.as_str()),
        ("123456", "654321")
    );
    assert_eq!(
        store.interview("b-1").await.unwrap(),
        None,
        "the colliding draw left a row"
    );

    // While 123456 and 654321 are open, every draw collides: the store gives up, clearly.
    let exhausted = store
        .create_with(new_interview("Third"), now, ids("c"), || {
            "123456".to_string()
        })
        .await
        .unwrap_err();
    assert!(matches!(exhausted, StoreError::NoFreePin), "{exhausted}");

    // An in-progress interview still holds its PIN; a finished one gives it back.
    assert!(store.start(&first.id, now, &test_lease()).await.unwrap());
    let held = store
        .create_with(new_interview("Fourth"), now, ids("d"), || {
            "123456".to_string()
        })
        .await
        .unwrap_err();
    assert!(matches!(held, StoreError::NoFreePin), "{held}");
    store
        .finish(&first.id, &ending(Outcome::Completed, now, None, None))
        .await
        .unwrap();
    let reuse = store
        .create_with(new_interview("Fifth"), now, ids("e"), pins(&["123456"]))
        .await
        .unwrap();
    assert_eq!(reuse.pin, "123456");
    assert_eq!(
        store
            .interview_by_pin("123456")
            .await
            .unwrap()
            .map(|i| i.id),
        Some(reuse.id)
    );

    // Generated PINs of many interviews are all distinct while open.
    let mut seen = HashSet::new();
    for n in 0..50 {
        let interview = store
            .create_interview(new_interview(&format!("Many {n}")))
            .await
            .unwrap();
        assert!(
            seen.insert(interview.pin.clone()),
            "PIN {} given twice",
            interview.pin
        );
    }
}

async fn interview_dirs_stay_in_the_data_dir(db: &Db) {
    let store = db.open().await;
    let interview = store.create_interview(new_interview("Dir")).await.unwrap();
    let files = store.files(&interview.id).unwrap();
    let dir = files.dir().to_path_buf();
    assert_eq!(dir, db.data_dir.join("interviews").join(&interview.id));
    assert!(dir.is_dir());
    assert_eq!(files.recording(), dir.join("recording.wav"));
    // Asking again is fine and gives the same directory.
    assert_eq!(store.files(&interview.id).unwrap(), files);
    assert!(is_valid_id("Legacy_id-42") && is_valid_id(&"z".repeat(MAX_ID_LEN)));
    assert!(store.files("Legacy_id-42").unwrap().dir().is_dir());

    let too_long = "a".repeat(MAX_ID_LEN + 1);
    for bad in [
        "", ".", "..", "../x", "a/b", "a\\b", "/etc", "a.b", "a b", "é", "a\0b", &too_long,
    ] {
        assert!(!is_valid_id(bad), "{bad:?}");
        let err = store.files(bad).unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidId { .. }),
            "{bad:?}: {err}"
        );
    }
    // Nothing was created beside the interviews.
    let entries: Vec<_> = std::fs::read_dir(&db.data_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| !name.to_string_lossy().starts_with("viva.db"))
        .collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("interviews")]);
}

async fn pages_are_newest_first(db: &Db) {
    let store = db.open().await;
    let base = 1_793_973_787_000;
    let mut pin = 300_000;
    // Created out of order; two share a millisecond (ordered by id then).
    for (n, ms) in [(0, 0), (3, 30), (1, 10), (6, 60), (2, 20), (5, 50), (4, 50)] {
        pin += 1;
        let pin = pin.to_string();
        store
            .create_with(
                new_interview(&format!("Page {n}")),
                Timestamp::from_unix_ms(base + ms),
                move || format!("page-{n}"),
                move || pin.clone(),
            )
            .await
            .unwrap();
    }
    let page = |limit, offset| {
        let store = store.clone();
        async move {
            store
                .interviews(Page { limit, offset })
                .await
                .unwrap()
                .into_iter()
                .map(|i| i.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page(3, 0).await, ["page-6", "page-5", "page-4"]);
    assert_eq!(page(3, 3).await, ["page-3", "page-2", "page-1"]);
    assert_eq!(page(3, 6).await, ["page-0"]);
    assert!(page(3, 7).await.is_empty());
    assert!(page(0, 0).await.is_empty());
    assert_eq!(page(100, 0).await.len(), 7);
    assert_eq!(page(2, 4).await, ["page-2", "page-1"]);
}

async fn leases_hand_interviews_of_dead_nodes_to_one_live_node(db: &Db) {
    let store = db.open().await;
    let now = Timestamp::now();
    let lease = |node: &str, at: Timestamp| Lease::new(node, at, Duration::from_secs(30));
    let later = move |secs: i64| Timestamp::from_unix_ms(now.unix_ms() + secs * 1000);
    let mut running = Vec::new();
    for n in 0..3 {
        let interview = store
            .create_interview(new_interview(&format!("Crash {n}")))
            .await
            .unwrap();
        if n != 1 {
            assert!(
                store
                    .start(&interview.id, now, &lease("a", now))
                    .await
                    .unwrap()
            );
            running.push(interview.id);
        }
    }
    let done = store.create_interview(new_interview("Done")).await.unwrap();
    assert!(store.start(&done.id, now, &lease("a", now)).await.unwrap());
    store
        .finish(&done.id, &ending(Outcome::Completed, now, None, None))
        .await
        .unwrap();
    let ids = |interviews: Vec<Interview>| {
        let mut ids: Vec<String> = interviews.into_iter().map(|i| i.id).collect();
        ids.sort();
        ids
    };
    running.sort();

    // Node a's leases are live: nobody takes its interviews, and renewing keeps them.
    assert!(
        store
            .take_over_orphans(later(29), &lease("b", later(29)))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.renew_leases(&lease("a", later(20))).await.unwrap(), 2);
    assert!(
        store
            .take_over_orphans(later(49), &lease("b", later(49)))
            .await
            .unwrap()
            .is_empty()
    );

    // Node a stops renewing: once its leases ran out, b takes both over, and c, a moment
    // later, finds them b's.
    let taken = store
        .take_over_orphans(later(51), &lease("b", later(51)))
        .await
        .unwrap();
    assert_eq!(ids(taken), running);
    assert!(
        store
            .take_over_orphans(later(52), &lease("c", later(52)))
            .await
            .unwrap()
            .is_empty()
    );

    // b restarts: what it held is given up at once and waits for no lease to run out.
    assert_eq!(store.forfeit_leases("b").await.unwrap(), 2);
    assert_eq!(store.forfeit_leases("c").await.unwrap(), 0);

    // Nodes racing for the orphans share them out: each is taken exactly once.
    let barrier = Arc::new(Barrier::new(4));
    let racers: Vec<_> = (0..4)
        .map(|n| {
            let store = store.clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let node = format!("racer-{n}");
                store
                    .take_over_orphans(
                        later(53),
                        &Lease::new(&node, later(53), Duration::from_secs(30)),
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut all = Vec::new();
    for racer in racers {
        all.extend(racer.await.unwrap());
    }
    assert_eq!(ids(all), running);
}

async fn settings_keep_the_first_value(db: &Db) {
    let store = db.open().await;
    assert_eq!(store.setting("api_key").await.unwrap(), None);
    assert_eq!(
        store.set_setting_if_absent("api_key", "k1").await.unwrap(),
        "k1"
    );
    assert_eq!(
        store.set_setting_if_absent("api_key", "k2").await.unwrap(),
        "k1"
    );
    assert_eq!(
        store.setting("api_key").await.unwrap().as_deref(),
        Some("k1")
    );

    // Racing first starts all end up with one key.
    let other = db.open().await;
    let barrier = Arc::new(Barrier::new(8));
    let racers: Vec<_> = (0..8)
        .map(|n| {
            let store = if n % 2 == 0 {
                store.clone()
            } else {
                other.clone()
            };
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .set_setting_if_absent("link_key", &format!("secret-{n}"))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut values = HashSet::new();
    for racer in racers {
        values.insert(racer.await.unwrap());
    }
    assert_eq!(values.len(), 1, "{values:?}");
    let stored = store.setting("link_key").await.unwrap().unwrap();
    assert!(values.contains(&stored));
}

async fn reopening_keeps_data(db: &Db) {
    let (interview, key) = {
        let store = db.open().await;
        let interview = store
            .create_interview(new_interview("Again"))
            .await
            .unwrap();
        assert!(
            store
                .start(&interview.id, Timestamp::now(), &test_lease())
                .await
                .unwrap()
        );
        let key = store
            .set_setting_if_absent("api_key", "kept")
            .await
            .unwrap();
        (store.interview(&interview.id).await.unwrap().unwrap(), key)
    };
    // The migrations find the schema current and leave the rows alone.
    let store = db.open().await;
    assert_eq!(
        store.interview(&interview.id).await.unwrap(),
        Some(interview.clone())
    );
    assert_eq!(store.setting("api_key").await.unwrap(), Some(key));
    // Its lease ran out while the store was closed: it is found left in progress.
    let after = Timestamp::from_unix_ms(EXPIRES_MS + 1);
    assert_eq!(
        store
            .take_over_orphans(after, &Lease::new("next", after, Duration::from_secs(30)))
            .await
            .unwrap(),
        vec![interview]
    );
}

// --- SQLite only: the file, its mode, and the settings that cannot work -----------------------

#[tokio::test]
async fn sqlite_file_and_directories_are_created_in_wal_mode() {
    let scratch = scratch_dir("store-sqlite-created");
    let dir = scratch.path();
    // A space and a '#' check the path survives the trip through a URL.
    let file = dir.join("nested dir #1").join("viva.db");
    let store = Store::open(&format!("sqlite://{}", file.display()), &dir.join("data"))
        .await
        .unwrap();
    assert!(file.is_file(), "{} was not created", file.display());
    assert!(dir.join("data").join("interviews").is_dir());
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&store.pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(mode, "wal");
    let busy_ms: i64 = sqlx::query("PRAGMA busy_timeout")
        .fetch_one(&store.pool)
        .await
        .unwrap()
        .get(0);
    assert!(busy_ms >= 1_000, "busy timeout {busy_ms} ms");
    drop(store);
    // `sqlite:PATH` names the same file.
    let store = Store::open(&format!("sqlite:{}", file.display()), &dir.join("data"))
        .await
        .unwrap();
    assert!(
        store
            .interviews(Page {
                limit: 1,
                offset: 0
            })
            .await
            .unwrap()
            .is_empty()
    );

    // A relative path (the server's default with a relative data dir) is relative to the
    // working directory, case kept: enough `..` to climb from it to the root, then into `dir`.
    let climb = "../".repeat(std::env::current_dir().unwrap().components().count());
    let relative = format!("{climb}{}/Relative/viva.db", dir.display());
    Store::open(&format!("sqlite://{relative}"), &dir.join("data"))
        .await
        .unwrap();
    assert!(dir.join("Relative").join("viva.db").is_file());
}

#[tokio::test]
async fn unusable_database_settings_are_explained() {
    let scratch = scratch_dir("store-sqlite-unusable");
    let dir = scratch.path();
    let data = dir.join("data");
    for memory in [
        "sqlite::memory:",
        "sqlite://:memory:",
        "sqlite://x.db?mode=memory",
        "sqlite:",
    ] {
        let err = Store::open(memory, &data).await.unwrap_err();
        assert!(
            matches!(err, StoreError::InMemorySqlite { .. }),
            "{memory}: {err}"
        );
        assert!(err.to_string().contains("give a file"), "{err}");
    }
    for other in ["mysql://root@localhost/viva", "viva.db", "", "postgres:/x"] {
        let err = Store::open(other, &data).await.unwrap_err();
        assert!(
            matches!(err, StoreError::UnsupportedDatabase { .. }),
            "{other}: {err}"
        );
    }
    let err = Store::open("sqlite:///tmp/x.db?journal=off", &data)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidSqliteUrl { .. }), "{err}");

    // A database path that is a directory cannot be opened; the message names it.
    std::fs::create_dir_all(dir.join("a-directory")).unwrap();
    let url = format!("sqlite://{}", dir.join("a-directory").display());
    let err = Store::open(&url, &data).await.unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(err.to_string().contains("a-directory"), "{err}");

    // A database whose directory cannot be made (its parent is a file).
    std::fs::write(dir.join("plain-file"), b"").unwrap();
    let url = format!(
        "sqlite://{}",
        dir.join("plain-file").join("viva.db").display()
    );
    let err = Store::open(&url, &data).await.unwrap_err();
    assert!(matches!(err, StoreError::Directory { .. }), "{err}");
    assert!(err.to_string().contains("plain-file"), "{err}");
}

#[tokio::test]
async fn unreachable_postgres_is_explained_at_once() {
    let scratch = scratch_dir("store-unreachable");
    let started = std::time::Instant::now();
    // Nothing listens on port 1.
    let err = Store::open("postgres://viva:s3cret@127.0.0.1:1/viva", scratch.path())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("postgres://viva:***@127.0.0.1:1/viva"),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(
        message.contains("check that the server is running"),
        "{message}"
    );
    assert!(
        started.elapsed() < ACQUIRE_TIMEOUT,
        "took {:?}",
        started.elapsed()
    );
}

// --- helpers -------------------------------------------------------------------------------------

#[test]
fn passwords_are_hidden_in_messages() {
    assert_eq!(
        redacted("postgres://viva:s3cret@db.example:5432/viva"),
        "postgres://viva:***@db.example:5432/viva"
    );
    assert_eq!(
        redacted("postgres://viva@db/viva?sslmode=require&password=s3cret"),
        "postgres://viva@db/viva?sslmode=require&password=***"
    );
    assert_eq!(redacted("postgres://db/viva"), "postgres://db/viva");
    assert_eq!(
        redacted("sqlite:///var/lib/viva/viva.db"),
        "sqlite:///var/lib/viva/viva.db"
    );
    let err = Backend::of("mysql://root:hunter2@db/viva").unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn generated_ids_and_pins_have_their_shape() {
    let ids: HashSet<String> = (0..1000).map(|_| new_id()).collect();
    assert_eq!(ids.len(), 1000);
    for id in &ids {
        assert_eq!(id.len(), ID_LEN);
        assert!(check_id(id).is_ok());
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "{id}"
        );
    }
    let pins: Vec<String> = (0..1000).map(|_| new_pin()).collect();
    for pin in &pins {
        assert_eq!(pin.len(), PIN_DIGITS, "{pin}");
        assert!(
            pin.bytes().all(|b| b.is_ascii_digit()) && !pin.starts_with('0'),
            "{pin}"
        );
    }
    // Not a constant: 1000 draws from 9 x 10^9 values are all distinct but for a fluke.
    assert!(pins.iter().collect::<HashSet<_>>().len() > 998);
}

async fn accounts_are_found_by_email_in_any_case(db: &Db) {
    let store = db.open().await;
    let new = |email: &str, role| NewUser {
        email: email.to_string(),
        password_hash: format!("hash-of-{email}"),
        role,
    };
    let ada = store
        .create_user(new(" Ada@Example.com", Role::Admin))
        .await
        .unwrap();
    assert_eq!(ada.email, "ada@example.com");
    let taken = store
        .create_user(new("ADA@example.com", Role::Viewer))
        .await
        .unwrap_err();
    assert!(matches!(taken, StoreError::EmailTaken { .. }), "{taken}");
    // Accounts are listed oldest first; two made within the same millisecond would be in the
    // order of their random ids.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    store
        .create_user(new("grace@example.com", Role::Viewer))
        .await
        .unwrap();

    let (found, hash) = store.credentials("ADA@EXAMPLE.COM").await.unwrap().unwrap();
    assert_eq!(found, ada);
    assert_eq!(hash, "hash-of- Ada@Example.com");
    assert!(
        store
            .credentials("nobody@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let roles: Vec<Role> = store
        .users()
        .await
        .unwrap()
        .iter()
        .map(|u| u.role)
        .collect();
    assert_eq!(roles, [Role::Admin, Role::Viewer]);
}

async fn sessions_expire_and_end(db: &Db) {
    let store = db.open().await;
    let user = store
        .create_user(NewUser {
            email: "ada@example.com".to_string(),
            password_hash: "h".to_string(),
            role: Role::Recruiter,
        })
        .await
        .unwrap();
    let now = Timestamp::from_unix_ms(EXPIRES_MS - 10_000);
    let expires = Timestamp::from_unix_ms(EXPIRES_MS);
    store
        .create_session(&user, "token-hash", "csrf", expires)
        .await
        .unwrap();
    let session = store.session("token-hash", now).await.unwrap().unwrap();
    assert_eq!(session.user, user);
    assert_eq!(session.csrf_token, "csrf");
    assert!(store.session("other-hash", now).await.unwrap().is_none());
    assert!(
        store
            .session("token-hash", expires)
            .await
            .unwrap()
            .is_none(),
        "expired at its expiry"
    );
    assert_eq!(store.forget_expired_sessions(now).await.unwrap(), 0);
    store.end_session("token-hash").await.unwrap();
    assert!(store.session("token-hash", now).await.unwrap().is_none());
}

async fn decisions_keep_their_history(db: &Db) {
    let store = db.open().await;
    let interview = store.create_interview(new_interview("Ada")).await.unwrap();
    let user = store
        .create_user(NewUser {
            email: "hm@example.com".to_string(),
            password_hash: "h".to_string(),
            role: Role::Recruiter,
        })
        .await
        .unwrap();
    assert!(store.decisions(&interview.id).await.unwrap().is_empty());
    let at = |ms| Timestamp::from_unix_ms(EXPIRES_MS - 100_000 + ms);
    store
        .record_decision(
            &interview.id,
            &user.id,
            Verdict::Hold,
            "ask the team",
            at(0),
        )
        .await
        .unwrap();
    store
        .record_decision(
            &interview.id,
            &user.id,
            Verdict::Advance,
            "strong answers <b>",
            at(5),
        )
        .await
        .unwrap();
    let decisions = store.decisions(&interview.id).await.unwrap();
    let verdicts: Vec<Verdict> = decisions.iter().map(|d| d.verdict).collect();
    assert_eq!(verdicts, [Verdict::Advance, Verdict::Hold], "current first");
    assert_eq!(decisions[0].note, "strong answers <b>");
    assert_eq!(decisions[0].by, "hm@example.com");
    assert_eq!(decisions[1].at, at(0));
}

/// A recruiter account for the key and decision cases.
async fn recruiter(store: &Store, email: &str) -> User {
    store
        .create_user(NewUser {
            email: email.to_string(),
            password_hash: "h".to_string(),
            role: Role::Recruiter,
        })
        .await
        .unwrap()
}

async fn the_list_filters_searches_and_sorts(db: &Db) {
    let store = db.open().await;
    let page = Page {
        limit: 50,
        offset: 0,
    };
    let mut made = Vec::new();
    for name in [
        "Ada Lovelace",
        "Grace Hopper",
        "Alan 100%_Turing",
        "Katherine",
    ] {
        made.push(store.create_interview(new_interview(name)).await.unwrap());
    }
    let mut other = new_interview("Edsger");
    other.job = "data-engineer".to_string();
    let edsger = store.create_interview(other).await.unwrap();
    let at = Timestamp::from_unix_ms(EXPIRES_MS - 50_000);
    for (interview, score, advice) in [
        (&made[0], 8.5, "yes"),
        (&made[1], 4.0, "no"),
        (&made[2], 9.25, "strong_yes"),
    ] {
        store.start(&interview.id, at, &test_lease()).await.unwrap();
        store
            .finish(
                &interview.id,
                &ending(Outcome::Completed, at, Some(60_000), None),
            )
            .await
            .unwrap();
        store
            .record_assessment(&interview.id, score, advice)
            .await
            .unwrap();
    }
    let hm = recruiter(&store, "hm@example.com").await;
    store
        .record_decision(&made[1].id, &hm.id, Verdict::Reject, "", at)
        .await
        .unwrap();
    store
        .record_decision(&made[0].id, &hm.id, Verdict::Hold, "", at)
        .await
        .unwrap();
    store
        .record_decision(&made[0].id, &hm.id, Verdict::Advance, "", at)
        .await
        .unwrap();

    let names = |listed: Vec<Listed>| -> Vec<String> {
        listed
            .into_iter()
            .map(|l| l.interview.candidate.name)
            .collect()
    };
    let list = |filter: Filter| {
        let store = store.clone();
        async move { store.list_interviews(&filter, page).await.unwrap() }
    };
    assert_eq!(list(Filter::default()).await.len(), 5);
    let by_score = list(Filter {
        sort: Sort::ScoreHigh,
        ..Filter::default()
    })
    .await;
    assert_eq!(by_score[0].score, Some(9.25));
    assert_eq!(by_score[0].recommendation.as_deref(), Some("strong_yes"));
    assert_eq!(
        names(by_score)[..3],
        ["Alan 100%_Turing", "Ada Lovelace", "Grace Hopper"],
        "unscored last"
    );
    assert_eq!(
        names(
            list(Filter {
                sort: Sort::ScoreLow,
                ..Filter::default()
            })
            .await
        )[..3],
        ["Grace Hopper", "Ada Lovelace", "Alan 100%_Turing"]
    );
    let job = list(Filter {
        job: Some("data-engineer".to_string()),
        ..Filter::default()
    })
    .await;
    assert_eq!(job.len(), 1);
    assert_eq!(job[0].interview.id, edsger.id);
    let advanced = list(Filter {
        decision: Some(DecisionFilter::Is(Verdict::Advance)),
        ..Filter::default()
    })
    .await;
    assert_eq!(
        names(advanced),
        ["Ada Lovelace"],
        "the current decision, not the first"
    );
    assert_eq!(
        list(Filter {
            decision: Some(DecisionFilter::Undecided),
            ..Filter::default()
        })
        .await
        .len(),
        3
    );
    assert_eq!(
        names(
            list(Filter {
                recommendation: Some("no".to_string()),
                status: Some(Status::Completed),
                ..Filter::default()
            })
            .await
        ),
        ["Grace Hopper"]
    );
    // Search is by part of the name in any case, and its wildcards are only characters.
    assert_eq!(
        names(
            list(Filter {
                name: Some("  LOVE ".to_string()),
                ..Filter::default()
            })
            .await
        ),
        ["Ada Lovelace"]
    );
    assert_eq!(
        names(
            list(Filter {
                name: Some("0%_t".to_string()),
                ..Filter::default()
            })
            .await
        ),
        ["Alan 100%_Turing"]
    );
    assert!(
        list(Filter {
            name: Some("%".to_string()),
            job: Some("data-engineer".to_string()),
            ..Filter::default()
        })
        .await
        .is_empty()
    );
    let created = made[2].created_at;
    let since = list(Filter {
        created_from: Some(created),
        sort: Sort::Oldest,
        ..Filter::default()
    })
    .await;
    assert!(since.iter().all(|l| l.interview.created_at >= created));
    assert!(
        list(Filter {
            created_before: Some(made[0].created_at),
            ..Filter::default()
        })
        .await
        .iter()
        .all(|l| l.interview.created_at < made[0].created_at)
    );
    assert_eq!(
        names(
            list(Filter {
                sort: Sort::Candidate,
                ..Filter::default()
            })
            .await
        ),
        [
            "Ada Lovelace",
            "Alan 100%_Turing",
            "Edsger",
            "Grace Hopper",
            "Katherine"
        ]
    );
    assert_eq!(
        store.interview_jobs().await.unwrap(),
        ["backend-developer", "data-engineer"]
    );
    // Finished, with no assessment: a report to read back.
    let unscored = store
        .create_interview(new_interview("Barbara"))
        .await
        .unwrap();
    store
        .finish(&unscored.id, &ending(Outcome::Abandoned, at, None, None))
        .await
        .unwrap();
    assert_eq!(store.unassessed().await.unwrap(), [unscored.id]);
}

async fn api_keys_open_only_while_live(db: &Db) {
    let store = db.open().await;
    let ada = recruiter(&store, "ada@example.com").await;
    let grace = recruiter(&store, "grace@example.com").await;
    let key = store
        .create_api_key(&ada, "k1", "ATS", "hash-1")
        .await
        .unwrap();
    store
        .create_api_key(&grace, "k2", "scripts", "hash-2")
        .await
        .unwrap();
    let (owner, hash) = store.api_key_owner("k1").await.unwrap().unwrap();
    assert_eq!(
        (owner.email.as_str(), hash.as_str()),
        ("ada@example.com", "hash-1")
    );
    assert!(store.api_key_owner("nope").await.unwrap().is_none());
    let used = Timestamp::from_unix_ms(EXPIRES_MS - 5_000);
    store.touch_api_key("k1", used).await.unwrap();
    let mine = store.api_keys(Some(&ada.id)).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].last_used_at, Some(used));
    assert_eq!(mine[0].name, key.name);
    assert_eq!(store.api_keys(None).await.unwrap().len(), 2);
    // Only its owner (or an admin, who passes no owner) revokes a key, once.
    assert!(
        !store
            .revoke_api_key("k1", Some(&grace.id), used)
            .await
            .unwrap()
    );
    assert!(
        store
            .revoke_api_key("k1", Some(&ada.id), used)
            .await
            .unwrap()
    );
    assert!(!store.revoke_api_key("k1", None, used).await.unwrap());
    assert!(store.api_key_owner("k1").await.unwrap().is_none());
    assert!(store.revoke_api_key("k2", None, used).await.unwrap());
}

async fn disabled_accounts_sign_nobody_in(db: &Db) {
    let store = db.open().await;
    let ada = recruiter(&store, "ada@example.com").await;
    let expires = Timestamp::from_unix_ms(EXPIRES_MS);
    let now = Timestamp::from_unix_ms(EXPIRES_MS - 10_000);
    store
        .create_session(&ada, "session", "csrf", expires)
        .await
        .unwrap();
    store
        .create_api_key(&ada, "k1", "ATS", "hash")
        .await
        .unwrap();
    assert!(store.set_role(&ada.id, Role::Viewer).await.unwrap());
    assert_eq!(
        store
            .session("session", now)
            .await
            .unwrap()
            .unwrap()
            .user
            .role,
        Role::Viewer,
        "a role change applies to a session at once"
    );
    assert!(store.disable_user(&ada.id, now).await.unwrap());
    assert!(!store.disable_user(&ada.id, now).await.unwrap());
    assert!(store.session("session", now).await.unwrap().is_none());
    assert!(
        store
            .credentials("ada@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.api_key_owner("k1").await.unwrap().is_none());
    let kept = store.user(&ada.id).await.unwrap().unwrap();
    assert_eq!(kept.disabled_at, Some(now));
    assert!(
        store.api_keys(Some(&ada.id)).await.unwrap()[0]
            .revoked_at
            .is_some()
    );
}

async fn job_versions_are_added_only_on_change(db: &Db) {
    let store = db.open().await;
    let admin = store
        .create_user(NewUser {
            email: "admin@example.com".to_string(),
            password_hash: "h".to_string(),
            role: Role::Admin,
        })
        .await
        .unwrap();
    let by_admin = Author::User(admin.id.clone());
    let at = |ms| Timestamp::from_unix_ms(EXPIRES_MS - 100_000 + ms);
    assert!(store.job_versions(JOB).await.unwrap().is_empty());
    assert_eq!(store.job_version(JOB, 1).await.unwrap(), None);

    let record = |fingerprint: &'static str, text: &'static str, author: Author, ms: i64| {
        let store = store.clone();
        async move {
            store
                .record_job_version(JOB, fingerprint, text, &author, at(ms))
                .await
                .unwrap()
        }
    };
    let first = record("fp-a", "title = 'A'", Author::File, 0).await;
    assert_eq!(
        first,
        Recorded {
            version: 1,
            added: true
        }
    );
    // The same text again (a restart, a save without changes) is no new version.
    let same = record("fp-a", "title = 'A'", by_admin.clone(), 1).await;
    assert_eq!(
        same,
        Recorded {
            version: 1,
            added: false
        }
    );
    let second = record("fp-b", "title = 'B'", by_admin.clone(), 2).await;
    assert_eq!(
        second,
        Recorded {
            version: 2,
            added: true
        }
    );
    // Going back to an earlier text is a change too: a new version, not the old number.
    let back = record("fp-a", "title = 'A'", Author::File, 3).await;
    assert_eq!(back.version, 3);
    assert!(back.added);

    // Another job is numbered on its own.
    let other = store
        .record_job_version("designer", "fp-a", "title = 'D'", &Author::File, at(4))
        .await
        .unwrap();
    assert_eq!(other.version, 1);

    let versions = store.job_versions(JOB).await.unwrap();
    let numbers: Vec<u32> = versions.iter().map(|v| v.version).collect();
    assert_eq!(numbers, [3, 2, 1], "latest first");
    assert_eq!(versions[1].author, by_admin);
    assert_eq!(
        versions[1].author_email.as_deref(),
        Some("admin@example.com")
    );
    assert_eq!(versions[1].fingerprint, "fp-b");
    assert_eq!(versions[1].created_at, at(2));
    assert_eq!(versions[2].author, Author::File);
    assert_eq!(versions[2].author_email, None);
    assert!(versions.iter().all(|v| v.job == JOB));

    let (version, text) = store.job_version(JOB, 2).await.unwrap().unwrap();
    assert_eq!((version.version, text.as_str()), (2, "title = 'B'"));
    assert_eq!(version, versions[1]);
    assert_eq!(store.job_version(JOB, 4).await.unwrap(), None);
    assert_eq!(store.job_version("nosuchjob", 1).await.unwrap(), None);

    let latest = store.latest_job_versions().await.unwrap();
    assert_eq!(latest.len(), 2);
    assert_eq!(latest[JOB].version, 3);
    assert_eq!(latest["designer"].version, 1);
}

async fn racing_job_versions_get_distinct_numbers(db: &Db) {
    let store = db.open().await;
    const WRITERS: usize = 6;
    let barrier = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let store = store.clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .record_job_version(
                        JOB,
                        &format!("fp-{i}"),
                        &format!("text {i}"),
                        &Author::File,
                        Timestamp::now(),
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut numbers = HashSet::new();
    for writer in writers {
        let recorded = writer.await.unwrap();
        assert!(recorded.added);
        assert!(numbers.insert(recorded.version), "{numbers:?}");
    }
    assert_eq!(numbers, (1..=WRITERS as u32).collect::<HashSet<_>>());
    // Each number holds the text of the writer it was given to.
    for version in store.job_versions(JOB).await.unwrap() {
        let (_, text) = store
            .job_version(JOB, version.version)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            text,
            format!("text {}", &version.fingerprint["fp-".len()..])
        );
    }
}

async fn interviews_record_their_job_version(db: &Db) {
    let store = db.open().await;
    let ada = store.create_interview(new_interview("Ada")).await.unwrap();
    let grace = store
        .create_interview(new_interview("Grace"))
        .await
        .unwrap();
    let mut designer = new_interview("Alan");
    designer.job = "designer".to_string();
    store.create_interview(designer).await.unwrap();

    assert_eq!(store.interview_job_version(&ada.id).await.unwrap(), None);
    store.set_interview_job_version(&ada.id, 2).await.unwrap();
    assert_eq!(store.interview_job_version(&ada.id).await.unwrap(), Some(2));
    // The call ran with a later version than the one scheduled.
    store.set_interview_job_version(&ada.id, 3).await.unwrap();
    assert_eq!(store.interview_job_version(&ada.id).await.unwrap(), Some(3));
    assert_eq!(store.interview_job_version(&grace.id).await.unwrap(), None);
    assert_eq!(
        store
            .interview_job_version("nosuchinterview0")
            .await
            .unwrap(),
        None
    );
    // The rest of the interview is untouched.
    assert_eq!(
        store.interview(&ada.id).await.unwrap().unwrap().candidate,
        ada.candidate
    );

    let counts = store.interviews_per_job().await.unwrap();
    assert_eq!(counts.len(), 2);
    assert_eq!((counts[JOB], counts["designer"]), (2, 1));
}

fn message(event_type: &str, n: u32) -> WebhookMessage {
    WebhookMessage {
        id: format!("msg_{n}"),
        event_type: event_type.to_string(),
        payload: format!("{{\"type\":\"{event_type}\",\"n\":{n}}}"),
    }
}

fn endpoint(url: &str, events: &[&str]) -> NewEndpoint {
    NewEndpoint {
        url: url.to_string(),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string(),
        events: events.iter().map(|e| e.to_string()).collect(),
    }
}

/// 2029-12-31T23:58:20Z: any fixed moment, so due times are exact.
const NOW_MS: i64 = EXPIRES_MS - 100_000;
const LEASE: Duration = Duration::from_secs(30);

fn at(ms: i64) -> Timestamp {
    Timestamp::from_unix_ms(NOW_MS + ms)
}

async fn webhook_messages_go_to_the_endpoints_that_take_them(db: &Db) {
    let store = db.open().await;
    let all = store
        .create_endpoint(endpoint("https://ats.example/all", &[]), at(0))
        .await
        .unwrap();
    let decisions = store
        .create_endpoint(
            endpoint("https://ats.example/decisions", &["decision.recorded"]),
            at(1),
        )
        .await
        .unwrap();
    let off = store
        .create_endpoint(endpoint("https://ats.example/off", &[]), at(2))
        .await
        .unwrap();
    assert!(all.id.starts_with("ep_") && all.enabled && !all.from_config);
    assert!(store.set_endpoint_enabled(&off.id, false).await.unwrap());
    assert!(!store.set_endpoint_enabled("ep_nope", false).await.unwrap());
    let listed = store.endpoints().await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[1], decisions, "reads back as made, oldest first");
    assert!(!listed[2].enabled);

    let scheduled = message("interview.scheduled", 1);
    assert_eq!(store.enqueue(&scheduled, at(10)).await.unwrap(), 1);
    assert_eq!(
        store
            .enqueue(&message("decision.recorded", 2), at(11))
            .await
            .unwrap(),
        2
    );
    let to_all = store.deliveries(&all.id, 10).await.unwrap();
    let types: Vec<&str> = to_all.iter().map(|d| d.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["decision.recorded", "interview.scheduled"],
        "newest first"
    );
    assert_eq!(to_all[1].message_id, "msg_1");
    assert_eq!(to_all[1].status, DeliveryStatus::Pending);
    assert_eq!(to_all[1].attempts, 0);
    assert_eq!(to_all[1].next_attempt_at, Some(at(10)));
    assert_eq!(store.deliveries(&decisions.id, 10).await.unwrap().len(), 1);
    assert!(store.deliveries(&off.id, 10).await.unwrap().is_empty());
    // The message id is shared by its endpoints' deliveries.
    let to_decisions = store.deliveries(&decisions.id, 10).await.unwrap();
    assert_eq!(to_decisions[0].message_id, to_all[0].message_id);

    // The test event goes to the one endpoint asked for, whatever types it takes.
    assert!(
        store
            .enqueue_to(&decisions.id, &message("webhook.test", 3), at(12))
            .await
            .unwrap()
    );
    assert!(
        !store
            .enqueue_to("ep_nope", &message("webhook.test", 4), at(12))
            .await
            .unwrap()
    );
    assert_eq!(store.deliveries(&decisions.id, 10).await.unwrap().len(), 2);

    // A disabled endpoint's pending deliveries wait; deleting one removes its log.
    assert!(store.set_endpoint_enabled(&all.id, false).await.unwrap());
    let claimed = store.claim_due(at(20), LEASE, 10).await.unwrap();
    assert!(
        claimed.iter().all(|c| c.url.ends_with("/decisions")),
        "{claimed:?}"
    );
    assert_eq!(claimed.len(), 2);
    assert!(store.delete_endpoint(&all.id).await.unwrap());
    assert!(!store.delete_endpoint(&all.id).await.unwrap());
    assert!(store.endpoint(&all.id).await.unwrap().is_none());
    assert!(store.deliveries(&all.id, 10).await.unwrap().is_empty());
}

async fn config_endpoints_are_synced_by_url(db: &Db) {
    let store = db.open().await;
    let first = [
        endpoint("https://ats.example/a", &[]),
        endpoint("https://ats.example/b", &["interview.completed"]),
    ];
    store.sync_config_endpoints(&first, at(0)).await.unwrap();
    // A second node starting from the same file adds nothing twice.
    db.open()
        .await
        .sync_config_endpoints(&first, at(1))
        .await
        .unwrap();
    let listed = store.endpoints().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|e| e.from_config && e.enabled));
    assert!(listed.iter().all(|e| e.id.starts_with("cfg_")));
    let b = listed
        .iter()
        .find(|e| e.url.ends_with("/b"))
        .unwrap()
        .clone();
    store
        .enqueue(&message("interview.completed", 1), at(2))
        .await
        .unwrap();

    // The file changes: b takes other events and a new secret, a is gone, c is new.
    let mut changed_b = endpoint("https://ats.example/b", &["decision.recorded"]);
    changed_b.secret = "whsec_c2Vjb25kIHNlY3JldCBvZiBlbm91Z2ggYnl0ZXM=".to_string();
    let second = [changed_b.clone(), endpoint("https://ats.example/c", &[])];
    store.sync_config_endpoints(&second, at(3)).await.unwrap();
    let listed = store.endpoints().await.unwrap();
    assert_eq!(listed.len(), 3, "a is kept, disabled, with its log");
    let by_url = |url: &str| listed.iter().find(|e| e.url == url).unwrap();
    assert!(!by_url("https://ats.example/a").enabled);
    let new_b = by_url("https://ats.example/b");
    assert_eq!(new_b.id, b.id, "the same endpoint");
    assert_eq!(new_b.secret, changed_b.secret);
    assert_eq!(new_b.events, ["decision.recorded"]);
    assert_eq!(store.deliveries(&b.id, 10).await.unwrap().len(), 1);
    assert!(by_url("https://ats.example/c").enabled);
}

async fn webhook_leases_have_one_winner(db: &Db) {
    // Three claimers per round: two on one pool, one on a second store (a second node).
    let first = db.open().await;
    let second = db.open().await;
    first
        .create_endpoint(endpoint("https://ats.example/hooks", &[]), at(0))
        .await
        .unwrap();
    for round in 0..10 {
        for n in 0..3 {
            first
                .enqueue(&message("interview.scheduled", round * 10 + n), at(0))
                .await
                .unwrap();
        }
        let barrier = Arc::new(Barrier::new(3));
        let claimers: Vec<_> = [first.clone(), first.clone(), second.clone()]
            .into_iter()
            .map(|store| {
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.claim_due(at(1), LEASE, 10).await.unwrap()
                })
            })
            .collect();
        let mut claimed = Vec::new();
        for claimer in claimers {
            claimed.extend(claimer.await.unwrap());
        }
        let ids: HashSet<&str> = claimed.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(claimed.len(), 3, "round {round}: {claimed:?}");
        assert_eq!(ids.len(), 3, "round {round}: a row was claimed twice");
        for c in &claimed {
            let delivered = Attempt::Delivered { status: 200 };
            assert!(first.record_attempt(c, &delivered, at(2)).await.unwrap());
        }
    }

    // A lease that runs out lets another node take the row; the first holder's late outcome
    // is then not recorded.
    first
        .enqueue(&message("interview.started", 99), at(0))
        .await
        .unwrap();
    let slow = first.claim_due(at(1), LEASE, 10).await.unwrap();
    assert_eq!(slow.len(), 1);
    assert!(
        second.claim_due(at(2), LEASE, 10).await.unwrap().is_empty(),
        "leased"
    );
    let expired = at(1 + LEASE.as_millis() as i64);
    let taken = second.claim_due(expired, LEASE, 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].id, slow[0].id);
    let late = Attempt::Delivered { status: 204 };
    assert!(
        !first
            .record_attempt(&slow[0], &late, expired)
            .await
            .unwrap()
    );
    assert!(
        second
            .record_attempt(&taken[0], &late, expired)
            .await
            .unwrap()
    );
}

async fn webhook_attempts_are_recorded_until_delivered_or_failed(db: &Db) {
    let store = db.open().await;
    let ep = store
        .create_endpoint(endpoint("http://127.0.0.1:9/hooks", &[]), at(0))
        .await
        .unwrap();
    store
        .enqueue(&message("interview.completed", 1), at(0))
        .await
        .unwrap();
    let claimed = store.claim_due(at(0), LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let c = &claimed[0];
    assert_eq!((c.attempts, c.message_id.as_str()), (0, "msg_1"));
    assert_eq!(c.url, ep.url);
    assert_eq!(c.secret, ep.secret);
    assert_eq!(c.payload, message("interview.completed", 1).payload);
    let retry = Attempt::Retry {
        status: Some(503),
        error: "HTTP 503: busy".to_string(),
        at: at(5_000),
    };
    assert!(store.record_attempt(c, &retry, at(10)).await.unwrap());
    let log = store.deliveries(&ep.id, 10).await.unwrap();
    assert_eq!(log[0].status, DeliveryStatus::Pending);
    assert_eq!(log[0].attempts, 1);
    assert_eq!(log[0].last_status, Some(503));
    assert_eq!(log[0].last_error.as_deref(), Some("HTTP 503: busy"));
    assert_eq!(log[0].next_attempt_at, Some(at(5_000)));
    assert_eq!(log[0].updated_at, at(10));

    // Not due before its time; due at it, with the attempts so far.
    assert!(
        store
            .claim_due(at(4_999), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim_due(at(5_000), LEASE, 10).await.unwrap();
    assert_eq!(again[0].attempts, 1);
    let refused = Attempt::Retry {
        status: None,
        error: "connection refused".to_string(),
        at: at(6_000),
    };
    assert!(
        store
            .record_attempt(&again[0], &refused, at(5_001))
            .await
            .unwrap()
    );
    let log = store.deliveries(&ep.id, 10).await.unwrap();
    assert_eq!((log[0].attempts, log[0].last_status), (2, None));

    let third = store.claim_due(at(6_000), LEASE, 10).await.unwrap();
    let failed = Attempt::Failed {
        status: Some(500),
        error: "HTTP 500".to_string(),
    };
    assert!(
        store
            .record_attempt(&third[0], &failed, at(6_001))
            .await
            .unwrap()
    );
    let log = store.deliveries(&ep.id, 10).await.unwrap();
    assert_eq!(log[0].status, DeliveryStatus::Failed);
    assert_eq!(log[0].attempts, 3);
    assert_eq!(log[0].next_attempt_at, None);
    assert!(
        store
            .claim_due(at(999_999), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A finished delivery takes no further outcome, even from a stale claim.
    let delivered = Attempt::Delivered { status: 200 };
    assert!(
        !store
            .record_attempt(&third[0], &delivered, at(6_002))
            .await
            .unwrap()
    );

    store
        .enqueue(&message("interview.completed", 2), at(7_000))
        .await
        .unwrap();
    let fresh = store.claim_due(at(7_000), LEASE, 10).await.unwrap();
    assert!(
        store
            .record_attempt(&fresh[0], &delivered, at(7_001))
            .await
            .unwrap()
    );
    let log = store.deliveries(&ep.id, 10).await.unwrap();
    assert_eq!(log[0].status, DeliveryStatus::Delivered);
    assert_eq!((log[0].attempts, log[0].last_status), (1, Some(200)));
    assert_eq!(log[0].last_error, None);
}

async fn old_finished_deliveries_are_pruned(db: &Db) {
    let store = db.open().await;
    let ep = store
        .create_endpoint(endpoint("https://ats.example/hooks", &[]), at(0))
        .await
        .unwrap();
    for n in 0..3 {
        store
            .enqueue(&message("interview.scheduled", n), at(0))
            .await
            .unwrap();
    }
    let claimed = store.claim_due(at(0), LEASE, 10).await.unwrap();
    let delivered = Attempt::Delivered { status: 200 };
    let failed = Attempt::Failed {
        status: None,
        error: "refused".to_string(),
    };
    let retry = Attempt::Retry {
        status: None,
        error: "refused".to_string(),
        at: at(999_999),
    };
    store
        .record_attempt(&claimed[0], &delivered, at(10))
        .await
        .unwrap();
    store
        .record_attempt(&claimed[1], &failed, at(20))
        .await
        .unwrap();
    store
        .record_attempt(&claimed[2], &retry, at(5))
        .await
        .unwrap();
    // Before the delivered one was recorded: nothing is old enough.
    assert_eq!(store.prune_deliveries(at(10)).await.unwrap(), 0);
    assert_eq!(store.prune_deliveries(at(15)).await.unwrap(), 1);
    assert_eq!(store.prune_deliveries(at(1_000_000)).await.unwrap(), 1);
    let left = store.deliveries(&ep.id, 10).await.unwrap();
    assert_eq!(left.len(), 1, "a pending delivery stays, however old");
    assert_eq!(left[0].status, DeliveryStatus::Pending);
}
