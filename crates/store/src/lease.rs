//! A node's hold on the interviews it runs, when several nodes share one database.

use std::time::Duration;

use crate::Timestamp;

/// A node's claim to run an interview until an instant; it renews its leases while its calls
/// run, and an interview in progress whose lease ran out is taken over by another node.
///
/// ```
/// use std::time::Duration;
/// use viva_store::{Lease, Timestamp};
///
/// let now = Timestamp::from_unix_ms(1_000);
/// let lease = Lease::new("node-a", now, Duration::from_secs(30));
/// assert_eq!(lease.until, Timestamp::from_unix_ms(31_000));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The node's name, unique among the nodes sharing the database.
    pub node: String,
    /// When the lease runs out unless renewed.
    pub until: Timestamp,
}

impl Lease {
    /// A lease for `node` from `now` for `length`.
    pub fn new(node: &str, now: Timestamp, length: Duration) -> Lease {
        let millis = i64::try_from(length.as_millis()).unwrap_or(i64::MAX);
        Lease {
            node: node.to_owned(),
            until: Timestamp::from_unix_ms(now.unix_ms().saturating_add(millis)),
        }
    }
}
