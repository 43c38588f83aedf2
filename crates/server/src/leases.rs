//! This node's leases on the interviews it runs, when several nodes share one database: they
//! are renewed while the node lives, and the interviews of a node that died (its leases ran
//! out) are taken over and finished here, as a crash's are at start-up.

use std::sync::Arc;
use std::time::Duration;

use viva_store::{Lease, Store, Timestamp};

use crate::conclusion::Conclusions;
use crate::config::ServerConfig;

/// The lease of an interview this node starts now.
pub fn starting_now(server: &ServerConfig) -> Lease {
    Lease::new(
        &server.node_name(),
        Timestamp::now(),
        Duration::from_secs(server.lease_secs),
    )
}

/// What this node leases interviews as.
#[derive(Clone)]
pub struct Leases {
    store: Store,
    node: Arc<str>,
    length: Duration,
}

impl Leases {
    pub fn new(store: Store, config: &ServerConfig) -> Self {
        Self {
            store,
            node: config.node_name().into(),
            length: Duration::from_secs(config.lease_secs),
        }
    }

    /// A lease on an interview starting now.
    pub fn lease(&self) -> Lease {
        Lease::new(&self.node, Timestamp::now(), self.length)
    }

    /// At start-up: what ran under this node's name before is not running any more (this is
    /// its new life), so those interviews need not wait for their leases to run out; then every
    /// interview no live node holds is finished, before the server takes calls.
    pub async fn recover(&self, conclusions: &Arc<Conclusions>) -> anyhow::Result<()> {
        let forfeited = self.store.forfeit_leases(&self.node).await?;
        if forfeited > 0 {
            tracing::warn!(node = %self.node, forfeited, "interviews this node ran before it stopped are finished now");
        }
        self.take_over(conclusions).await
    }

    /// Renews this node's leases every third of their length, and as often takes over the
    /// interviews of dead nodes, for the life of the server. Two tasks: finishing orphans
    /// writes their reports, which must not hold up the renewals that keep this node's own
    /// calls its own.
    pub fn keep(&self, conclusions: Arc<Conclusions>) {
        let every = self.length / 3;
        let this = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                if let Err(err) = this.store.renew_leases(&this.lease()).await {
                    tracing::error!(node = %this.node, %err, "cannot renew this node's interview leases: other nodes take its calls over if this lasts");
                }
            }
        });
        let this = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(err) = this.take_over(&conclusions).await {
                    tracing::error!(error = %format!("{err:#}"), "cannot take over the interviews of dead nodes");
                }
            }
        });
    }

    async fn take_over(&self, conclusions: &Arc<Conclusions>) -> anyhow::Result<()> {
        for orphan in self
            .store
            .take_over_orphans(Timestamp::now(), &self.lease())
            .await?
        {
            tracing::warn!(interview_id = %orphan.id, node = %self.node, "finishing an interview no live node runs");
            conclusions.finish_orphan(orphan).await?;
        }
        Ok(())
    }
}
