//! Webhook endpoints and the durable queue of deliveries to them (which is also their log).
//!
//! The store keeps what must survive a restart: each message's payload, its id, how many
//! attempts were made and when the next is due. Several server nodes may share one database,
//! so a node takes a row for one attempt with a lease (a conditional update of `locked_until`
//! that only one node can win) and records the outcome only while it still holds that lease.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, Timestamp, new_id};

/// A URL the server posts events to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `ep_...` for endpoints made in the pages, `cfg_...` for those from the config file.
    pub id: String,
    pub url: String,
    /// The signing secret, `whsec_` and base64.
    pub secret: String,
    /// The event types sent to it; empty: every type.
    pub events: Vec<String>,
    /// A disabled endpoint is sent nothing; its pending deliveries wait.
    pub enabled: bool,
    /// Defined in the config file (and changed there, not in the pages).
    pub from_config: bool,
    pub created_at: Timestamp,
}

impl Endpoint {
    /// Whether messages of `event_type` go to this endpoint.
    pub fn takes(&self, event_type: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == event_type)
    }
}

/// An endpoint to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    pub url: String,
    pub secret: String,
    /// Empty: every event type.
    pub events: Vec<String>,
}

/// One event to send: its id (`webhook-id`, the same for every endpoint and every attempt),
/// its type and its JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookMessage {
    pub id: String,
    pub event_type: String,
    pub payload: String,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// An attempt was answered with a 2xx status.
    Delivered,
    /// Every attempt failed; no more will be made.
    Failed,
}

impl DeliveryStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    fn from_name(name: &str) -> Option<DeliveryStatus> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// One message to one endpoint, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub endpoint_id: String,
    pub message_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending deliveries only).
    pub next_attempt_at: Option<Timestamp>,
    /// The HTTP status of the last attempt, if it got one.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A delivery this node holds the lease on, with what it takes to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    pub id: String,
    pub message_id: String,
    pub event_type: String,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: u32,
    pub url: String,
    pub secret: String,
    /// The lease: the outcome is recorded only while the row still carries it.
    pub locked_until: Timestamp,
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Answered with this 2xx status.
    Delivered { status: u16 },
    /// Failed (with the status, if any was answered); the next attempt is due `at`.
    Retry {
        status: Option<u16>,
        error: String,
        at: Timestamp,
    },
    /// Failed, and it was the last attempt.
    Failed { status: Option<u16>, error: String },
}

/// Endpoint ids from the config file are derived from the URL, so a restart (or another node
/// starting from the same file) finds the same endpoint and its delivery log again.
fn config_endpoint_id(url: &str) -> String {
    // FNV-1a, 64 bits: stable across builds and platforms, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in url.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("cfg_{hash:016x}")
}

fn db_error(action: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
    let action = action.into();
    move |source| StoreError::Database { action, source }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Adds an endpoint made in the pages.
    pub async fn create_endpoint(
        &self,
        new: NewEndpoint,
        now: Timestamp,
    ) -> Result<Endpoint, StoreError> {
        let endpoint = Endpoint {
            id: format!("ep_{}", new_id()),
            url: new.url,
            secret: new.secret,
            events: new.events,
            enabled: true,
            from_config: false,
            created_at: now,
        };
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, url, secret, events, enabled, from_config, \
             created_at) VALUES ($1, $2, $3, $4, 1, 0, $5)",
        )
        .bind(&endpoint.id)
        .bind(&endpoint.url)
        .bind(&endpoint.secret)
        .bind(endpoint.events.join(" "))
        .bind(now.unix_ms())
        .execute(&self.pool)
        .await
        .map_err(db_error("add a webhook endpoint"))?;
        Ok(endpoint)
    }

    /// Makes the config file's endpoints the enabled `from_config` ones: each is added or
    /// updated (URL, secret, events; enabled again), and those no longer in the file are
    /// disabled, keeping their delivery log.
    pub async fn sync_config_endpoints(
        &self,
        endpoints: &[NewEndpoint],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let action = "sync the webhook endpoints of the config file";
        let mut kept = HashSet::new();
        for endpoint in endpoints {
            let id = config_endpoint_id(&endpoint.url);
            // One statement, so nodes starting together from one file cannot add it twice.
            sqlx::query(
                "INSERT INTO webhook_endpoints (id, url, secret, events, enabled, from_config, \
                 created_at) VALUES ($1, $2, $3, $4, 1, 1, $5) \
                 ON CONFLICT (id) DO UPDATE SET url = excluded.url, secret = excluded.secret, \
                 events = excluded.events, enabled = 1, from_config = 1",
            )
            .bind(&id)
            .bind(&endpoint.url)
            .bind(&endpoint.secret)
            .bind(endpoint.events.join(" "))
            .bind(now.unix_ms())
            .execute(&self.pool)
            .await
            .map_err(db_error(action))?;
            kept.insert(id);
        }
        for old in self.endpoints().await? {
            if old.from_config && old.enabled && !kept.contains(&old.id) {
                self.set_endpoint_enabled(&old.id, false).await?;
            }
        }
        Ok(())
    }

    /// Every endpoint, oldest first.
    pub async fn endpoints(&self) -> Result<Vec<Endpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, url, secret, events, enabled, from_config, created_at \
             FROM webhook_endpoints ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_error("list webhook endpoints"))?;
        rows.iter().map(endpoint_from_row).collect()
    }

    /// The endpoint with this id, if there is one.
    pub async fn endpoint(&self, id: &str) -> Result<Option<Endpoint>, StoreError> {
        let row = sqlx::query(
            "SELECT id, url, secret, events, enabled, from_config, created_at \
             FROM webhook_endpoints WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error(format!("read webhook endpoint {id}")))?;
        row.as_ref().map(endpoint_from_row).transpose()
    }

    /// Enables or disables an endpoint; `false` when there is no such endpoint.
    pub async fn set_endpoint_enabled(&self, id: &str, enabled: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE webhook_endpoints SET enabled = $2 WHERE id = $1")
            .bind(id)
            .bind(i64::from(enabled))
            .execute(&self.pool)
            .await
            .map_err(db_error(format!("enable or disable webhook endpoint {id}")))?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes an endpoint with its deliveries (pending ones are not sent); `false` when there
    /// is no such endpoint.
    pub async fn delete_endpoint(&self, id: &str) -> Result<bool, StoreError> {
        let action = format!("delete webhook endpoint {id}");
        let mut tx = self.pool.begin().await.map_err(db_error(&action))?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_error(&action))?;
        let done = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_error(&action))?;
        tx.commit().await.map_err(db_error(&action))?;
        Ok(done.rows_affected() == 1)
    }

    /// Queues `message` for every enabled endpoint that takes its type, due at `now`; returns
    /// how many deliveries were queued.
    pub async fn enqueue(
        &self,
        message: &WebhookMessage,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let targets: Vec<Endpoint> = self
            .endpoints()
            .await?
            .into_iter()
            .filter(|e| e.enabled && e.takes(&message.event_type))
            .collect();
        if targets.is_empty() {
            return Ok(0);
        }
        let action = format!("queue webhook {}", message.event_type);
        // All endpoints or none: a message is never half queued.
        let mut tx = self.pool.begin().await.map_err(db_error(&action))?;
        for endpoint in &targets {
            insert_delivery(&mut tx, &endpoint.id, message, now)
                .await
                .map_err(db_error(&action))?;
        }
        tx.commit().await.map_err(db_error(&action))?;
        Ok(targets.len())
    }

    /// Queues `message` for one endpoint, whatever types it takes (the test event); `false`
    /// when there is no such endpoint.
    pub async fn enqueue_to(
        &self,
        endpoint_id: &str,
        message: &WebhookMessage,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        if self.endpoint(endpoint_id).await?.is_none() {
            return Ok(false);
        }
        let action = format!("queue webhook {}", message.event_type);
        let mut conn = self.pool.acquire().await.map_err(db_error(&action))?;
        insert_delivery(&mut conn, endpoint_id, message, now)
            .await
            .map_err(db_error(&action))?;
        Ok(true)
    }

    /// Takes up to `limit` deliveries that are due at `now` (pending, their endpoint enabled,
    /// no live lease on them) for one attempt each, leased until `now + lease`. Another node
    /// calling at the same time gets other rows or none: each row's lease is won by exactly
    /// one conditional update.
    pub async fn claim_due(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let action = "claim due webhook deliveries";
        let due = sqlx::query(
            "SELECT d.id FROM webhook_deliveries d \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE d.status = 'pending' AND e.enabled = 1 AND d.next_attempt_at <= $1 \
             AND (d.locked_until IS NULL OR d.locked_until <= $1) \
             ORDER BY d.next_attempt_at, d.id LIMIT $2",
        )
        .bind(now.unix_ms())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error(action))?;
        let locked_until = Timestamp::from_unix_ms(now.unix_ms().saturating_add(millis(lease)));
        let mut claimed = Vec::new();
        for row in &due {
            let id: String = row.try_get("id").map_err(db_error(action))?;
            let won = sqlx::query(
                "UPDATE webhook_deliveries SET locked_until = $3 \
                 WHERE id = $1 AND status = 'pending' AND next_attempt_at <= $2 \
                 AND (locked_until IS NULL OR locked_until <= $2)",
            )
            .bind(&id)
            .bind(now.unix_ms())
            .bind(locked_until.unix_ms())
            .execute(&self.pool)
            .await
            .map_err(db_error(action))?;
            if won.rows_affected() != 1 {
                continue;
            }
            let row = sqlx::query(
                "SELECT d.id, d.message_id, d.event_type, d.payload, d.attempts, e.url, e.secret \
                 FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                 WHERE d.id = $1",
            )
            .bind(&id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error(action))?;
            // Gone between the update and this read: its endpoint was just deleted.
            let Some(row) = row else { continue };
            let read = db_error(action);
            let attempts: i64 = row.try_get("attempts").map_err(read)?;
            let read = |name: &str| -> Result<String, StoreError> {
                row.try_get(name).map_err(db_error(action))
            };
            claimed.push(ClaimedDelivery {
                id: read("id")?,
                message_id: read("message_id")?,
                event_type: read("event_type")?,
                payload: read("payload")?,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                url: read("url")?,
                secret: read("secret")?,
                locked_until,
            });
        }
        Ok(claimed)
    }

    /// Records how an attempt on a claimed delivery went and releases the lease. `false` when
    /// the lease was lost meanwhile (it ran out and another node took the row): that node's
    /// attempt is the one that counts.
    pub async fn record_attempt(
        &self,
        claimed: &ClaimedDelivery,
        attempt: &Attempt,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let (status, code, error, next) = match attempt {
            Attempt::Delivered { status } => (DeliveryStatus::Delivered, Some(*status), None, None),
            Attempt::Retry { status, error, at } => (
                DeliveryStatus::Pending,
                *status,
                Some(error.as_str()),
                Some(at.unix_ms()),
            ),
            Attempt::Failed { status, error } => {
                (DeliveryStatus::Failed, *status, Some(error.as_str()), None)
            }
        };
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = $3, attempts = attempts + 1, \
             next_attempt_at = $4, last_status = $5, last_error = $6, locked_until = NULL, \
             updated_at = $7 \
             WHERE id = $1 AND locked_until = $2 AND status = 'pending'",
        )
        .bind(&claimed.id)
        .bind(claimed.locked_until.unix_ms())
        .bind(status.as_str())
        .bind(next)
        .bind(code.map(i64::from))
        .bind(error)
        .bind(now.unix_ms())
        .execute(&self.pool)
        .await
        .map_err(db_error(format!(
            "record an attempt of webhook delivery {}",
            claimed.id
        )))?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets delivered and failed deliveries last attempted before `before`, so the log
    /// does not grow without end; pending ones stay whatever their age. Returns how many went.
    pub async fn prune_deliveries(&self, before: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND updated_at < $1",
        )
        .bind(before.unix_ms())
        .execute(&self.pool)
        .await
        .map_err(db_error("prune the webhook delivery log"))?;
        Ok(done.rows_affected())
    }

    /// Deliveries to enabled endpoints still to be sent or retried: the backlog an operator
    /// watches (a disabled endpoint's are paused on purpose).
    pub async fn webhook_backlog(&self) -> Result<u64, StoreError> {
        let action = "count the webhook backlog";
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM webhook_deliveries d \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE d.status = 'pending' AND e.enabled = 1",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db_error(action))?;
        let n: i64 = row.try_get("n").map_err(db_error(action))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// An endpoint's deliveries, newest first, at most `limit`.
    pub async fn deliveries(
        &self,
        endpoint_id: &str,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let action = format!("read the deliveries of webhook endpoint {endpoint_id}");
        let rows = sqlx::query(
            "SELECT id, endpoint_id, message_id, event_type, status, attempts, next_attempt_at, \
             last_status, last_error, created_at, updated_at FROM webhook_deliveries \
             WHERE endpoint_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(endpoint_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error(&action))?;
        rows.iter()
            .map(|row| delivery_from_row(row, &action))
            .collect()
    }
}

/// One delivery row, due at once.
async fn insert_delivery(
    conn: &mut sqlx::AnyConnection,
    endpoint_id: &str,
    message: &WebhookMessage,
    now: Timestamp,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, endpoint_id, message_id, event_type, payload, \
         status, attempts, next_attempt_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6, $6)",
    )
    .bind(format!("dl_{}", new_id()))
    .bind(endpoint_id)
    .bind(&message.id)
    .bind(&message.event_type)
    .bind(&message.payload)
    .bind(now.unix_ms())
    .execute(conn)
    .await?;
    Ok(())
}

fn endpoint_from_row(row: &AnyRow) -> Result<Endpoint, StoreError> {
    let read = || db_error("read a webhook endpoint");
    let events: String = row.try_get("events").map_err(read())?;
    Ok(Endpoint {
        id: row.try_get("id").map_err(read())?,
        url: row.try_get("url").map_err(read())?,
        secret: row.try_get("secret").map_err(read())?,
        events: events.split_whitespace().map(str::to_owned).collect(),
        enabled: row.try_get::<i64, _>("enabled").map_err(read())? != 0,
        from_config: row.try_get::<i64, _>("from_config").map_err(read())? != 0,
        created_at: Timestamp::from_unix_ms(row.try_get("created_at").map_err(read())?),
    })
}

fn delivery_from_row(row: &AnyRow, action: &str) -> Result<Delivery, StoreError> {
    let read = || db_error(action);
    let id: String = row.try_get("id").map_err(read())?;
    let status: String = row.try_get("status").map_err(read())?;
    let status = DeliveryStatus::from_name(&status).ok_or_else(|| StoreError::Corrupt {
        id: id.clone(),
        column: "webhook_deliveries.status",
        value: status.clone(),
    })?;
    let attempts: i64 = row.try_get("attempts").map_err(read())?;
    let last_status: Option<i64> = row.try_get("last_status").map_err(read())?;
    let next: Option<i64> = row.try_get("next_attempt_at").map_err(read())?;
    Ok(Delivery {
        endpoint_id: row.try_get("endpoint_id").map_err(read())?,
        message_id: row.try_get("message_id").map_err(read())?,
        event_type: row.try_get("event_type").map_err(read())?,
        status,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_at: next
            .filter(|_| status == DeliveryStatus::Pending)
            .map(Timestamp::from_unix_ms),
        last_status: last_status.and_then(|s| u16::try_from(s).ok()),
        last_error: row.try_get("last_error").map_err(read())?,
        created_at: Timestamp::from_unix_ms(row.try_get("created_at").map_err(read())?),
        updated_at: Timestamp::from_unix_ms(row.try_get("updated_at").map_err(read())?),
        id,
    })
}
