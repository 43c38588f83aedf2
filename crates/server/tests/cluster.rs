//! Several nodes, set up as docs/deploy.md says: two `viva serve` nodes, bound to 127.0.0.2
//! and 127.0.0.3, share one PostgreSQL database (each leasing the interviews it runs, for a
//! short lease); Kamailio (deploy/kamailio/kamailio.cfg) spreads the phone calls over them and
//! HAProxy (deploy/haproxy/haproxy.cfg) their HTTP, both on 127.0.0.1. sipp callers call
//! through Kamailio and type their PINs; then one node is killed (SIGKILL) in the middle of its
//! calls. The test checks that:
//!
//! - calls land on both nodes (the node each interview runs on, and each node's
//!   `viva_calls_active`);
//! - a candidate's join link always reaches the same node through HAProxy (a reload too), and
//!   still answers once its node is dead;
//! - after the kill, new calls go to the other node: a caller whose node died calls again,
//!   Kamailio sends them to their node (it picks a caller's node by their number), which does
//!   not answer, and fails over; the dead node is marked down;
//! - any node reads a live interview's transcript, which its node copies to the object store
//!   (a real S3 server, s3s-fs) as the call goes;
//! - the dead node's interviews are finished by the other node's lease sweep, `abandoned` with
//!   `server_stopped`, within a few lease lengths, with what was said and recorded up to the
//!   kill brought back from the object store;
//! - the surviving node's calls go on to their end through Kamailio (key presses and BYE follow
//!   the recorded route).
//!
//! It prints how the calls were spread and how long each step after the kill took.
//!
//! Needs PostgreSQL (`VIVA_TEST_POSTGRES_URL=$(scripts/postgres-test-server)`), s3s-fs
//! (`VIVA_TEST_S3_SERVER`), kamailio, haproxy and sipp. Without PostgreSQL, s3s-fs or kamailio the test passes without running, unless
//! `VIVA_TEST_REQUIRE_SERVICES=1` (scripts/test) makes that a failure. The scratch directory
//! keeps the Kamailio and HAProxy logs and sipp's traces while the test runs; set
//! VIVA_TEST_SERVER_LOG=info to see the nodes' logs.

#[path = "support/kamailio.rs"]
mod kamailio;
#[path = "support/nodes.rs"]
mod nodes;
#[path = "support/proxy.rs"]
mod proxy;
#[path = "support/s3.rs"]
mod s3;
#[path = "support/server.rs"]
mod server;
#[path = "support/sipp.rs"]
mod sipp;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use kamailio::Kamailio;
use nodes::{NODES, calls_active, owner};
use proxy::Haproxy;
use s3::S3Server;
use serde_json::Value;
use server::{Postgres, TestServer};
use sipp::{Transport, pin_keys};
use viva_test_support::net::free_media_port;
use viva_test_support::scratch_dir;
use viva_test_support::services::service_url;
use viva_test_support::sipp::{Sipp, trace};

/// A short lease, so that a dead node's interviews are finished within seconds.
const LEASE_SECS: u64 = 3;
/// A caller who hangs up could call back within this long; the tests' callers never do.
const REJOIN_GRACE_SECS: u64 = 3;
/// The numbers of the callers who call while both nodes are up. Kamailio picks a caller's
/// node by a hash of their number: these four land on both nodes.
const CALLERS: [&str; 4] = ["15550100001", "15550100002", "15550100003", "15550100004"];
/// How long those callers stay on once they have typed their PIN: past the interviewer's
/// greeting (the kill waits for it to be on record), the kill and the takeover of the dead
/// node's interviews.
const FIRST_STAY: Duration = Duration::from_secs(32);
/// How long the callers who call after the kill stay on.
const LATER_STAY: Duration = Duration::from_secs(6);
/// Join links asked for through HAProxy: enough that both nodes get some.
const JOIN_LINKS: usize = 24;
/// Between the first callers' calls: not all set up at once.
const CALL_SPACING: Duration = Duration::from_millis(300);
/// mu-law's code for a zero sample; the callers only listen (8000 bytes a second).
const MULAW_SILENCE: u8 = 0xFF;

#[test]
fn calls_spread_over_two_nodes_and_a_dead_nodes_interviews_are_finished_by_the_other() {
    let Some(postgres) = service_url("VIVA_TEST_POSTGRES_URL", "scripts/postgres-test-server")
    else {
        return;
    };
    let Some(kamailio_binary) = Kamailio::binary() else {
        return;
    };
    let test_started = Instant::now();
    let scratch = scratch_dir("cluster");
    let dir = scratch.path();
    let database = Postgres::create(&postgres, "cluster");
    let Some(s3) = S3Server::start(&dir.join("s3")) else {
        return;
    };

    // --- Two nodes on one database, Kamailio and HAProxy in front ---------------------------
    let sip_proxy = kamailio::free_address();
    let mut nodes = start_nodes(&database, &s3, sip_proxy);
    let startup = test_started.elapsed();
    let sip_nodes: Vec<SocketAddr> = nodes
        .iter()
        .map(|node| node.sip_udp.expect("SIP over UDP is on"))
        .collect();
    let kamailio = Kamailio::start(&kamailio_binary, dir, sip_proxy, &sip_nodes);
    let http_nodes: Vec<&str> = nodes
        .iter()
        .map(|node| node.base.trim_start_matches("http://"))
        .collect();
    let proxy = Haproxy::start_nodes(&http_nodes, &dir.join("haproxy.log"));
    eprintln!(
        "cluster up in {:.1} s: {} at {} (SIP {}), {} at {} (SIP {}), Kamailio {sip_proxy}, HAProxy {}",
        startup.as_secs_f64(),
        NODES[0].0,
        nodes[0].base,
        sip_nodes[0],
        NODES[1].0,
        nodes[1].base,
        sip_nodes[1],
        proxy.base
    );

    // --- Join links: the same node every time, through HAProxy ------------------------------
    let links: Vec<String> = (0..JOIN_LINKS)
        .map(|n| join_path(&nodes[0].schedule(&format!("Browser Candidate {n}"))))
        .collect();
    let before = serve_join_links(&proxy, &links);
    let per_node = count(before.values());
    eprintln!("join links by node through HAProxy: {per_node:?}");
    assert_eq!(
        per_node.len(),
        2,
        "HAProxy sent all {JOIN_LINKS} join links to one node: {per_node:?}"
    );

    // --- Phone calls through Kamailio land on both nodes ------------------------------------
    let silence = vec![MULAW_SILENCE; FIRST_STAY.as_secs() as usize * 8_000];
    std::fs::write(dir.join("speech.ul"), silence).unwrap();
    let mut media_ports = Vec::new();
    let first: Vec<(String, Sipp)> = CALLERS
        .iter()
        .map(|number| {
            let (id, pin) = id_and_pin(&nodes[0].schedule(&format!("Phone Candidate {number}")));
            let caller = call(
                dir,
                kamailio.address,
                number,
                &pin,
                FIRST_STAY,
                &mut media_ports,
            );
            std::thread::sleep(CALL_SPACING);
            (id, caller)
        })
        .collect();
    for (id, _) in &first {
        nodes[0].wait_for_interview(id, Duration::from_secs(40), |i| {
            i["status"] == "in_progress"
        });
    }
    let ids: Vec<&str> = first.iter().map(|(id, _)| id.as_str()).collect();
    let first_owners = owners(&database, &ids);
    let calls_per_node = count(first_owners.values());
    eprintln!("phone calls by node through Kamailio: {calls_per_node:?}");
    for (node, (name, _)) in nodes.iter().zip(NODES) {
        let owned = calls_per_node.get(name).copied().unwrap_or(0);
        assert!(
            owned > 0,
            "no call reached {name}: Kamailio sent every call to one node ({first_owners:?})"
        );
        // An interview is marked in progress a moment before its call is counted.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let active = calls_active(node);
            if active == owned {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name} counts {active} live calls but runs {owned} interviews"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    // --- One node dies mid-call -------------------------------------------------------------
    // The node the first caller's call went to. That caller calls again at once, for another
    // interview: Kamailio sends them to their node, which does not answer now, and the call
    // must fail over to the other node.
    let dead = NODES
        .iter()
        .position(|(name, _)| *name == first_owners[first[0].0.as_str()])
        .unwrap();
    let living = 1 - dead;
    let (dead_name, living_name) = (NODES[dead].0, NODES[living].0);
    let (dead_sip, living_server) = (sip_nodes[dead], format!("node{}", living + 1));
    let (orphans, mut carried_on): (Vec<_>, Vec<_>) = first
        .into_iter()
        .partition(|(id, _)| first_owners[id.as_str()] == dead_name);
    // Before the kill, what the dead node's first caller heard is on record: the interviewer's
    // greeting, which the living node reads from the object store while the call runs.
    let watched = orphans[0].0.clone();
    let heard_before_kill = {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let transcript = nodes[living]
                .get(&format!("/api/v1/interviews/{watched}/transcript"))
                .json();
            let turns = transcript["turns"].as_array().map_or(0, Vec::len);
            if turns > 0 {
                break turns;
            }
            assert!(
                Instant::now() < deadline,
                "{living_name} never saw the live transcript of {watched}, running on {dead_name}: {transcript}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    eprintln!("{living_name} reads {heard_before_kill} turn(s) of {dead_name}'s live interview");
    // Scheduled first, so that the call follows the kill at once: before Kamailio's probe can
    // find the node dead, the call itself must.
    let (next_id, next_pin) = id_and_pin(&nodes[living].schedule("Caller After The Crash"));
    nodes[dead].kill();
    let killed = Instant::now();
    let survivor = &nodes[living];
    let next_caller = call(
        dir,
        kamailio.address,
        CALLERS[0],
        &next_pin,
        LATER_STAY,
        &mut media_ports,
    );
    // Every join link still answers, also those of the dead node (HAProxy retries them on the
    // other node until its checks take the dead one out).
    for link in &links {
        let status = proxy.status(link);
        assert_eq!(
            status, 200,
            "{link} answered {status} through HAProxy after a node died"
        );
    }

    // Watched together, each until it happens: Kamailio marks the dead node down (then one
    // more caller calls), the callers' interviews start on the living node, the dead node's
    // interviews end.
    let down = format!("node sip:{dead_sip} is down");
    let mut sip_down = None;
    let mut later = vec![(next_id.clone(), None)];
    let mut later_caller = None;
    let mut orphans_ended: Vec<(String, Option<(Duration, Value)>)> =
        orphans.iter().map(|(id, _)| (id.clone(), None)).collect();
    let deadline = killed + Duration::from_secs(60);
    loop {
        if sip_down.is_none()
            && let Some(at) = kamailio.logged_at(&down)
        {
            sip_down = Some(at.saturating_duration_since(killed));
            let (id, pin) = id_and_pin(&survivor.schedule("Caller Once It Is Known"));
            later_caller = Some((
                id.clone(),
                call(
                    dir,
                    kamailio.address,
                    CALLERS[0],
                    &pin,
                    LATER_STAY,
                    &mut media_ports,
                ),
            ));
            later.push((id, None));
        }
        for (id, started) in later.iter_mut().filter(|(_, at)| at.is_none()) {
            if survivor.get(&format!("/api/v1/interviews/{id}")).json()["status"] == "in_progress" {
                *started = Some(killed.elapsed());
            }
        }
        for (id, ended) in orphans_ended.iter_mut().filter(|(_, end)| end.is_none()) {
            let interview = survivor.get(&format!("/api/v1/interviews/{id}")).json();
            if interview["status"] != "in_progress" {
                *ended = Some((killed.elapsed(), interview));
            }
        }
        if sip_down.is_some()
            && later.iter().all(|(_, at)| at.is_some())
            && orphans_ended.iter().all(|(_, end)| end.is_some())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a minute after the kill: Kamailio marked {dead_name} down after {sip_down:?}, \
             calls in progress after {later:?}, the dead node's interviews ended {orphans_ended:?}\n{}",
            kamailio.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let sip_down = sip_down.unwrap();
    let later: Vec<(String, Duration)> = later
        .into_iter()
        .map(|(id, at)| (id, at.unwrap()))
        .collect();
    let ids: Vec<&str> = later.iter().map(|(id, _)| id.as_str()).collect();
    let later_owners = owners(&database, &ids);
    assert!(
        later_owners.values().all(|owner| owner == living_name),
        "a call after the kill went to the dead node: {later_owners:?}"
    );
    let failed_over = kamailio
        .logged_at(&format!("node sip:{dead_sip} did not answer"))
        .is_some();
    assert!(
        failed_over,
        "the caller's call after the kill did not go to their dead node first (no failover seen):\n{}",
        kamailio.log_text()
    );
    carried_on.push((next_id, next_caller));
    carried_on.extend(later_caller);

    // --- The dead node's interviews were finished by the living one --------------------------
    let mut finished_after = Vec::new();
    for (id, ended) in orphans_ended {
        let (after, ended) = ended.unwrap();
        finished_after.push(after);
        assert_eq!(
            ended["status"], "abandoned",
            "the dead node's interview: {ended}"
        );
        assert_eq!(
            ended["end_reason"], "server_stopped",
            "the dead node's interview {id}: {ended}"
        );
        // What was said and recorded until the kill came back from the object store.
        let recorded = ended["duration_ms"].as_u64().unwrap_or(0);
        assert!(
            recorded >= 5_000,
            "{recorded} ms of the dead node's call {id} came back: {ended}"
        );
        eprintln!("the dead node's interview {id}: {recorded} ms of its recording came back");
        let recording = survivor.get(&format!("/api/v1/interviews/{id}/recording"));
        assert_eq!(recording.status, 200, "{}", recording.text());
        assert_eq!(&recording.body[..4], b"RIFF");
        if id == watched {
            let transcript = survivor
                .get(&format!("/api/v1/interviews/{id}/transcript"))
                .json();
            let turns = transcript["turns"].as_array().map_or(0, Vec::len);
            assert!(
                turns >= heard_before_kill,
                "{turns} turns of the dead node's interview are kept, {heard_before_kill} were on record before the kill: {transcript}"
            );
        }
    }
    assert!(
        finished_after
            .iter()
            .all(|after| *after < Duration::from_secs(LEASE_SECS * 2 + 5)),
        "the dead node's interviews were finished {finished_after:?} after the kill, with a \
         {LEASE_SECS} s lease"
    );
    // The dead node's callers are on a dead line: they go.
    drop(orphans);

    // --- The living node's calls go on to their end through Kamailio -------------------------
    let deadline = FIRST_STAY + Duration::from_secs(60);
    let survivor_calls = carried_on.len();
    let mut answered_after = Vec::new();
    for (id, caller) in carried_on {
        let messages = caller.succeeds(deadline);
        if later.iter().any(|(later_id, _)| *later_id == id) {
            answered_after.push(answer_time(&messages));
        }
        assert!(
            messages.contains("BYE sip:") && messages.contains("Route: <sip:127.0.0.1"),
            "the caller's BYE did not follow Kamailio's recorded route:\n{messages}"
        );
        let ended =
            survivor.wait_for_interview(&id, Duration::from_secs(REJOIN_GRACE_SECS + 30), |i| {
                i["status"] != "in_progress"
            });
        assert_eq!(
            ended["end_reason"], "ended_by_candidate",
            "a call on the living node: {ended}"
        );
    }

    let after = serve_join_links(&proxy, &links);
    assert!(
        after.values().all(|node| *node == living_server),
        "with {dead_name} dead, HAProxy still sent join links elsewhere than {living_server}: {after:?}"
    );
    let moved = before
        .iter()
        .filter(|(link, node)| after[link.as_str()] != **node)
        .count();
    let dead_server = format!("node{}", dead + 1);
    assert_eq!(
        moved,
        per_node.get(&dead_server).copied().unwrap_or(0),
        "only the dead node's join links may move"
    );
    let later: Vec<Duration> = later.iter().map(|(_, at)| *at).collect();
    eprintln!(
        "after killing {dead_name}: Kamailio marked it down after {:.1} s (the first call after \
         the kill went to the dead node, which did not answer, and failed over); the calls after \
         the kill were answered {} after their INVITE and in progress on {living_name} {} after \
         the kill; the dead node's {} interviews finished after {}; \
         {survivor_calls} calls on {living_name} went on to their end; {moved} of \
         {JOIN_LINKS} join links moved to {living_server}, the rest stayed; whole test {:.1} s",
        sip_down.as_secs_f64(),
        seconds(&answered_after),
        seconds(&later),
        finished_after.len(),
        seconds(&finished_after),
        test_started.elapsed().as_secs_f64()
    );
}

/// Starts the two nodes side by side on `database` and `s3`, each taking calls from the SIP
/// proxy at `sip_proxy` as a trunk (as docs/deploy.md has it).
fn start_nodes(database: &Postgres, s3: &S3Server, sip_proxy: SocketAddr) -> Vec<TestServer> {
    let lease = LEASE_SECS.to_string();
    let grace = REJOIN_GRACE_SECS.to_string();
    let trunks = format!(
        "[{{ name = \"kamailio\", address = \"{sip_proxy}\", allow = [\"{}/32\"] }}]",
        sip_proxy.ip()
    );
    nodes::start_nodes(
        "cluster",
        database,
        s3,
        &[
            ("VIVA_SERVER_LEASE_SECS", &lease),
            ("VIVA_SERVER_REJOIN_GRACE_SECS", &grace),
            ("VIVA_SERVER_TRUSTED_PROXIES", "[\"127.0.0.1\"]"),
            ("VIVA_SIP_TRUNKS", &trunks),
        ],
    )
}

/// A caller with the number `number` calling through the SIP proxy at `proxy`, who types
/// `pin` and stays on for `stay`, from a media port of its own.
fn call(
    dir: &Path,
    proxy: SocketAddr,
    number: &str,
    pin: &str,
    stay: Duration,
    used: &mut Vec<u16>,
) -> Sipp {
    let media_port = loop {
        let port = free_media_port();
        if !used.contains(&port) {
            used.push(port);
            break port;
        }
    };
    let mut args = pin_keys(pin);
    args.extend([
        "-key".to_owned(),
        "caller".to_owned(),
        number.to_owned(),
        "-d".to_owned(),
        stay.as_millis().to_string(),
        "-mp".to_owned(),
        media_port.to_string(),
    ]);
    sipp::call(
        "uac_proxied_interview.xml",
        dir,
        Transport::Udp,
        proxy,
        &args,
    )
}

/// Asks HAProxy for each join link's page, details and signalling socket, then the page and the
/// details again (a reload); checks from HAProxy's log that every request for one link went to
/// one node, and returns that node (`node1`, `node2`) per link.
fn serve_join_links(proxy: &Haproxy, links: &[String]) -> BTreeMap<String, String> {
    let already = proxy.requests().len();
    let paths = |link: &String| {
        [
            link.clone(),
            format!("{link}/details"),
            format!("{link}/signal"),
            link.clone(),
            format!("{link}/details"),
        ]
    };
    let mut asked = 0;
    for link in links {
        for path in paths(link) {
            let status = proxy.status(&path);
            assert!(
                (200..500).contains(&status),
                "{path} answered {status} through HAProxy"
            );
            asked += 1;
        }
    }
    // HAProxy logs a request once it is answered: wait for the last lines.
    let deadline = Instant::now() + Duration::from_secs(5);
    let logged = loop {
        let logged = proxy.requests();
        if logged.len() >= already + asked {
            break logged[already..].to_vec();
        }
        assert!(
            Instant::now() < deadline,
            "HAProxy logged {} of {asked} requests",
            logged.len() - already
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut served: BTreeMap<String, String> = BTreeMap::new();
    for request in logged {
        let Some(link) = links
            .iter()
            .find(|link| request.path == **link || request.path.starts_with(&format!("{link}/")))
        else {
            continue;
        };
        assert!(
            request.served_by.starts_with("viva_join/"),
            "{} went to {}, not the join links' backend",
            request.path,
            request.served_by
        );
        let node = request.served_by["viva_join/".len()..].to_owned();
        let first = served.entry(link.clone()).or_insert_with(|| node.clone());
        assert_eq!(
            *first, node,
            "requests for one join link went to two nodes ({} last)",
            request.path
        );
    }
    assert_eq!(served.len(), links.len(), "some join links were not logged");
    served
}

/// How long after sending its INVITE a caller got the 200 OK, from sipp's message trace.
fn answer_time(messages: &str) -> Duration {
    let traced = trace(messages);
    let invite = traced
        .iter()
        .find(|m| m.sent && m.first_line.starts_with("INVITE "))
        .expect("the caller sent an INVITE");
    let ok = traced
        .iter()
        .find(|m| !m.sent && m.first_line.starts_with("SIP/2.0 200"))
        .expect("the caller's INVITE was answered");
    Duration::from_secs_f64((ok.at - invite.at).max(0.0))
}

/// The path of an interview's join link (`/join/TOKEN`).
fn join_path(interview: &Value) -> String {
    let url = interview["join_url"].as_str().expect("a join link");
    let path = &url[url.find("/join/").expect("a /join/ link")..];
    path.to_owned()
}

fn id_and_pin(interview: &Value) -> (String, String) {
    let id = interview["id"].as_str().unwrap().to_owned();
    let pin = interview["pin"].as_str().unwrap().to_owned();
    (id, pin)
}

/// The node each interview of `ids` runs (or ran) on, from the shared database.
fn owners(database: &Postgres, ids: &[&str]) -> BTreeMap<String, String> {
    ids.iter()
        .map(|id| {
            let node = owner(database, id).unwrap_or_else(|| panic!("{id} has no owner node"));
            ((*id).to_owned(), node)
        })
        .collect()
}

/// How many times each value occurs.
fn count<'a>(values: impl Iterator<Item = &'a String>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for value in values {
        *counts.entry(value.clone()).or_insert(0) += 1;
    }
    counts
}

/// "1.2 s, 3.4 s".
fn seconds(times: &[Duration]) -> String {
    times
        .iter()
        .map(|t| format!("{:.1} s", t.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(", ")
}
