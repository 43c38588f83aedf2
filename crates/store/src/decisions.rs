//! The hiring team's decisions, beside (never instead of) the AI's recommendation.

use sqlx::Row;

use crate::{Store, StoreError, Timestamp, new_id};

/// What the hiring team decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// To the next round.
    Advance,
    /// Not yet decided either way.
    Hold,
    /// Not going further.
    Reject,
}

impl Verdict {
    /// Every verdict, in the order forms show them.
    pub const ALL: [Verdict; 3] = [Verdict::Advance, Verdict::Hold, Verdict::Reject];

    /// The name stored, sent and posted: `advance`, `hold`, `reject`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Advance => "advance",
            Verdict::Hold => "hold",
            Verdict::Reject => "reject",
        }
    }

    /// The verdict called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.as_str() == name)
    }
}

/// One recorded decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub interview_id: String,
    pub verdict: Verdict,
    pub note: String,
    /// The email of the account that decided.
    pub by: String,
    pub at: Timestamp,
}

impl Store {
    /// Records `user_id`'s decision on an interview; earlier ones stay as its history.
    pub async fn record_decision(
        &self,
        interview_id: &str,
        user_id: &str,
        verdict: Verdict,
        note: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let failed = |source| StoreError::Database {
            action: format!("record a decision on interview {interview_id}"),
            source,
        };
        // The history and the list's current decision change together.
        let mut tx = self.pool.begin().await.map_err(failed)?;
        sqlx::query(
            "INSERT INTO decisions (id, interview_id, user_id, decision, note, decided_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new_id())
        .bind(interview_id)
        .bind(user_id)
        .bind(verdict.as_str())
        .bind(note)
        .bind(at.unix_ms())
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
        sqlx::query("UPDATE interviews SET decision = $2 WHERE id = $1")
            .bind(interview_id)
            .bind(verdict.as_str())
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        Ok(())
    }

    /// An interview's decisions, the current one first.
    pub async fn decisions(&self, interview_id: &str) -> Result<Vec<Decision>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.interview_id, d.decision, d.note, d.decided_at, u.email \
             FROM decisions d JOIN users u ON u.id = d.user_id \
             WHERE d.interview_id = $1 ORDER BY d.decided_at DESC, d.id DESC",
        )
        .bind(interview_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|source| StoreError::Database {
            action: format!("read the decisions on interview {interview_id}"),
            source,
        })?;
        rows.iter()
            .map(|row| {
                let read = |source| StoreError::Database {
                    action: format!("read a decision on interview {interview_id}"),
                    source,
                };
                let verdict: String = row.try_get("decision").map_err(read)?;
                Ok(Decision {
                    interview_id: row.try_get("interview_id").map_err(read)?,
                    verdict: Verdict::from_name(&verdict).ok_or_else(|| StoreError::Corrupt {
                        id: interview_id.to_owned(),
                        column: "decisions.decision",
                        value: verdict,
                    })?,
                    note: row.try_get("note").map_err(read)?,
                    by: row.try_get("email").map_err(read)?,
                    at: Timestamp::from_unix_ms(row.try_get("decided_at").map_err(read)?),
                })
            })
            .collect()
    }
}
