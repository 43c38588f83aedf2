//! The interview list as recruiters browse it: filtered, searched and sorted in the database,
//! with each interview's score, AI recommendation and current decision beside it.

use sqlx::Row;

use crate::{Interview, Page, Status, Store, StoreError, Timestamp, Verdict, interview_from_row};

/// The longest name search accepted; longer ones are cut (no name is that long).
const MAX_SEARCH_CHARS: usize = 100;

/// Which interviews to list, and in what order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Only this job's.
    pub job: Option<String>,
    /// Only those in this state.
    pub status: Option<Status>,
    /// Only those whose report advises this (`strong_yes`, `yes`, `maybe`, `no`).
    pub recommendation: Option<String>,
    /// Only those with this current decision.
    pub decision: Option<DecisionFilter>,
    /// Only those scheduled at or after this moment.
    pub created_from: Option<Timestamp>,
    /// Only those scheduled before this moment.
    pub created_before: Option<Timestamp>,
    /// Only candidates whose name contains this, in any case.
    pub name: Option<String>,
    pub sort: Sort,
}

/// A filter on the hiring team's current decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionFilter {
    /// Nobody has decided yet.
    Undecided,
    /// The current decision is this one.
    Is(Verdict),
}

/// The order of the list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    /// Most recently scheduled first.
    #[default]
    Newest,
    /// Oldest first.
    Oldest,
    /// Highest composite score first; unscored ones last.
    ScoreHigh,
    /// Lowest composite score first; unscored ones last.
    ScoreLow,
    /// By candidate name, A to Z.
    Candidate,
}

impl Sort {
    /// Every order, as the list offers them.
    pub const ALL: [Sort; 5] = [
        Sort::Newest,
        Sort::Oldest,
        Sort::ScoreHigh,
        Sort::ScoreLow,
        Sort::Candidate,
    ];

    /// The name in URLs: `newest`, `oldest`, `score`, `score_low`, `candidate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Newest => "newest",
            Sort::Oldest => "oldest",
            Sort::ScoreHigh => "score",
            Sort::ScoreLow => "score_low",
            Sort::Candidate => "candidate",
        }
    }

    /// The order called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Sort> {
        Sort::ALL.into_iter().find(|sort| sort.as_str() == name)
    }

    fn order_by(self) -> &'static str {
        // `score IS NULL` first puts unscored rows last in both directions on SQLite and
        // PostgreSQL alike (they disagree on where NULLs sort by default).
        match self {
            Sort::Newest => "created_at DESC, id DESC",
            Sort::Oldest => "created_at, id",
            Sort::ScoreHigh => "score IS NULL, score DESC, created_at DESC, id DESC",
            Sort::ScoreLow => "score IS NULL, score, created_at DESC, id DESC",
            Sort::Candidate => "LOWER(candidate_name), created_at DESC, id DESC",
        }
    }
}

/// A value bound to a list query.
enum Value {
    Text(String),
    Number(i64),
}

/// An interview with what the list shows beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub interview: Interview,
    /// The report's composite score, once there is a report.
    pub score: Option<f64>,
    /// The report's recommendation (`strong_yes`, `yes`, `maybe`, `no`).
    pub recommendation: Option<String>,
    /// The hiring team's current decision.
    pub decision: Option<Verdict>,
}

impl Store {
    /// A page of the interviews `filter` selects, in its order.
    pub async fn list_interviews(
        &self,
        filter: &Filter,
        page: Page,
    ) -> Result<Vec<Listed>, StoreError> {
        // Only fixed SQL text is put together here; every value is a bound parameter, numbered
        // in the order it is bound.
        let mut conditions: Vec<String> = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        let mut condition = |sql: &str, value: Option<Value>| {
            if let Some(value) = value {
                values.push(value);
            }
            conditions.push(sql.replace('?', &format!("${}", values.len())));
        };
        if let Some(job) = &filter.job {
            condition("job = ?", Some(Value::Text(job.clone())));
        }
        if let Some(status) = filter.status {
            condition("status = ?", Some(Value::Text(status.as_str().to_owned())));
        }
        if let Some(recommendation) = &filter.recommendation {
            condition(
                "recommendation = ?",
                Some(Value::Text(recommendation.clone())),
            );
        }
        match filter.decision {
            None => {}
            Some(DecisionFilter::Undecided) => condition("decision IS NULL", None),
            Some(DecisionFilter::Is(verdict)) => condition(
                "decision = ?",
                Some(Value::Text(verdict.as_str().to_owned())),
            ),
        }
        if let Some(name) = filter
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            let name: String = name.chars().take(MAX_SEARCH_CHARS).collect();
            condition(
                "LOWER(candidate_name) LIKE ? ESCAPE '\\'",
                Some(Value::Text(format!(
                    "%{}%",
                    like_escaped(&name.to_lowercase())
                ))),
            );
        }
        if let Some(from) = filter.created_from {
            condition("created_at >= ?", Some(Value::Number(from.unix_ms())));
        }
        if let Some(before) = filter.created_before {
            condition("created_at < ?", Some(Value::Number(before.unix_ms())));
        }
        let mut sql = String::from(concat!(
            "SELECT id, job, candidate_name, candidate_email, candidate_phone, pin, status, ",
            "created_at, expires_at, started_at, ended_at, duration_ms, failure, dial_status, ",
            "dial_updated_at, end_reason, score, recommendation, decision FROM interviews",
        ));
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        let limit = values.len() + 1;
        sql.push_str(&format!(
            " ORDER BY {} LIMIT ${limit} OFFSET ${}",
            filter.sort.order_by(),
            limit + 1
        ));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in values {
            query = match value {
                Value::Text(text) => query.bind(text),
                Value::Number(number) => query.bind(number),
            };
        }
        let rows = query
            .bind(i64::from(page.limit))
            .bind(i64::from(page.offset))
            .fetch_all(&self.pool)
            .await
            .map_err(|source| StoreError::Database {
                action: "list interviews".to_owned(),
                source,
            })?;
        rows.iter()
            .map(|row| {
                let interview = interview_from_row(row)?;
                let read = |source| StoreError::Database {
                    action: format!("read the list entry of interview {}", interview.id),
                    source,
                };
                let decision: Option<String> = row.try_get("decision").map_err(read)?;
                let decision = decision
                    .map(|name| {
                        Verdict::from_name(&name).ok_or_else(|| StoreError::Corrupt {
                            id: interview.id.clone(),
                            column: "decision",
                            value: name,
                        })
                    })
                    .transpose()?;
                Ok(Listed {
                    score: row.try_get("score").map_err(read)?,
                    recommendation: row.try_get("recommendation").map_err(read)?,
                    decision,
                    interview,
                })
            })
            .collect()
    }

    /// Records what an interview's report concluded, for the list to filter and sort on.
    pub async fn record_assessment(
        &self,
        id: &str,
        score: f64,
        recommendation: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE interviews SET score = $2, recommendation = $3 WHERE id = $1")
            .bind(id)
            .bind(score)
            .bind(recommendation)
            .execute(&self.pool)
            .await
            .map_err(|source| StoreError::Database {
                action: format!("record the assessment of interview {id}"),
                source,
            })?;
        Ok(())
    }

    /// Finished interviews whose assessment was never recorded (reports written before the
    /// list kept one), so that it can be read back from their reports.
    pub async fn unassessed(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM interviews WHERE score IS NULL \
             AND status IN ('completed', 'abandoned', 'failed')",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|source| StoreError::Database {
            action: "list unassessed interviews".to_owned(),
            source,
        })?;
        rows.iter()
            .map(|row| {
                row.try_get("id").map_err(|source| StoreError::Database {
                    action: "read an unassessed interview".to_owned(),
                    source,
                })
            })
            .collect()
    }

    /// The distinct jobs interviews were scheduled for, sorted.
    pub async fn interview_jobs(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT job FROM interviews ORDER BY job")
            .fetch_all(&self.pool)
            .await
            .map_err(|source| StoreError::Database {
                action: "list the jobs of interviews".to_owned(),
                source,
            })?;
        rows.iter()
            .map(|row| {
                row.try_get("job").map_err(|source| StoreError::Database {
                    action: "read a job name".to_owned(),
                    source,
                })
            })
            .collect()
    }
}

/// `text` for a LIKE pattern: its own `%`, `_` and `\` match only themselves.
fn like_escaped(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_match_their_wildcards_literally() {
        assert_eq!(like_escaped("50%_a\\b"), "50\\%\\_a\\\\b");
        assert_eq!(like_escaped("Ada"), "Ada");
    }
}
