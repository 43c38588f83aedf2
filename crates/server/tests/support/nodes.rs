//! Two `viva serve` nodes side by side, as docs/deploy.md sets several nodes up: bound to
//! 127.0.0.2 and 127.0.0.3, sharing one PostgreSQL database and one S3 store, each leasing the
//! interviews it runs under its own name. Used by the cluster and browser tests.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::process::Command;

use crate::s3::S3Server;
use crate::server::{Postgres, TestServer};

/// The nodes: their names (`server.node`) and the loopback address each binds HTTP and SIP
/// to; HAProxy's servers `node1` and `node2`, in this order.
pub const NODES: [(&str, &str); 2] = [("node-a", "127.0.0.2"), ("node-b", "127.0.0.3")];

/// Starts the nodes at once on `database` and `s3`, named `{test}-{node}` (their scratch
/// directories), with `env` on top of what they share.
pub fn start_nodes(
    test: &str,
    database: &Postgres,
    s3: &S3Server,
    env: &[(&str, &str)],
) -> Vec<TestServer> {
    let url = database.url();
    let storage = s3.storage_env();
    std::thread::scope(|scope| {
        let started: Vec<_> = NODES
            .iter()
            .map(|(name, ip)| {
                let (url, storage) = (&url, &storage);
                scope.spawn(move || {
                    let any_port = format!("{ip}:0");
                    let node_env: Vec<(&str, &str)> = [
                        ("VIVA_SERVER_DATABASE", url.as_str()),
                        ("VIVA_SERVER_NODE", name),
                        ("VIVA_SERVER_HTTP", any_port.as_str()),
                        ("VIVA_SIP_UDP", any_port.as_str()),
                        ("VIVA_SIP_TCP", any_port.as_str()),
                    ]
                    .into_iter()
                    .chain(storage.iter().map(|(k, v)| (*k, v.as_str())))
                    .chain(env.iter().copied())
                    .collect();
                    TestServer::start_node(&format!("{test}-{name}"), &node_env)
                })
            })
            .collect();
        started
            .into_iter()
            .map(|node| node.join().expect("a node started"))
            .collect()
    })
}

/// The node an interview was started on, from the shared database; `None` before it started.
pub fn owner(database: &Postgres, id: &str) -> Option<String> {
    let sql = format!("SELECT owner_node FROM interviews WHERE id = '{id}'");
    let output = Command::new("psql")
        .args([&database.url(), "-tA", "-c", &sql])
        .output()
        .expect("psql runs");
    assert!(output.status.success(), "{sql}: {output:?}");
    let owner = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    (!owner.is_empty()).then_some(owner)
}

/// The node's `viva_calls_active`.
pub fn calls_active(node: &TestServer) -> usize {
    let metrics = node.request("GET", "/metrics", None, &[], None).text();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("viva_calls_active "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no viva_calls_active in\n{metrics}")) as usize
}
