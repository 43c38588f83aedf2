//! Personal API keys: made and revoked by their owners (or an admin), kept only as the
//! SHA-256 of their secret part, acting with the owner's role.

use crate::accounts::{database, get, user_from_row};
use crate::{Store, StoreError, Timestamp, User};

/// One key, as lists show it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The public part of the key (`viva_<id>_...`).
    pub id: String,
    /// What the owner called it ("ATS integration").
    pub name: String,
    /// Whose it is; it may do what they may.
    pub owner: User,
    pub created_at: Timestamp,
    /// When it last opened the API.
    pub last_used_at: Option<Timestamp>,
    /// When it was revoked; a revoked key opens nothing.
    pub revoked_at: Option<Timestamp>,
}

/// Every column a key is read from, with its owner's.
const SELECT_KEYS: &str = "SELECT k.id AS key_id, k.name, k.created_at AS key_created_at, \
     k.last_used_at, k.revoked_at, u.id, u.email, u.role, u.created_at, u.disabled_at \
     FROM api_keys k JOIN users u ON u.id = k.user_id";

impl Store {
    /// Records a new key of `owner` whose secret hashes to `secret_hash`.
    pub async fn create_api_key(
        &self,
        owner: &User,
        id: &str,
        name: &str,
        secret_hash: &str,
    ) -> Result<ApiKey, StoreError> {
        let key = ApiKey {
            id: id.to_owned(),
            name: name.to_owned(),
            owner: owner.clone(),
            created_at: Timestamp::now(),
            last_used_at: None,
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, name, secret_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&key.id)
        .bind(&owner.id)
        .bind(&key.name)
        .bind(secret_hash)
        .bind(key.created_at.unix_ms())
        .execute(&self.pool)
        .await
        .map_err(|source| database("create an API key", source))?;
        Ok(key)
    }

    /// The owner of the live key `id` (not revoked, owner enabled) and the hash its secret
    /// must match; `None` for any other id.
    pub async fn api_key_owner(&self, id: &str) -> Result<Option<(User, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT u.id, u.email, u.role, u.created_at, u.disabled_at, k.secret_hash \
             FROM api_keys k JOIN users u ON u.id = k.user_id \
             WHERE k.id = $1 AND k.revoked_at IS NULL AND u.disabled_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|source| database("look an API key up", source))?;
        row.map(|row| Ok((user_from_row(&row)?, get(&row, "secret_hash")?)))
            .transpose()
    }

    /// Notes that key `id` was used at `at`.
    pub async fn touch_api_key(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(at.unix_ms())
            .execute(&self.pool)
            .await
            .map_err(|source| database("note the use of an API key", source))?;
        Ok(())
    }

    /// The keys of `owner`, or everyone's when `None`; newest first.
    pub async fn api_keys(&self, owner: Option<&str>) -> Result<Vec<ApiKey>, StoreError> {
        let rows = match owner {
            Some(owner) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{SELECT_KEYS} WHERE k.user_id = $1 ORDER BY k.created_at DESC, k.id"
                )))
                .bind(owner)
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{SELECT_KEYS} ORDER BY k.created_at DESC, k.id"
                )))
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(|source| database("list API keys", source))?;
        rows.iter()
            .map(|row| {
                Ok(ApiKey {
                    id: get(row, "key_id")?,
                    name: get(row, "name")?,
                    created_at: Timestamp::from_unix_ms(get(row, "key_created_at")?),
                    last_used_at: get::<Option<i64>>(row, "last_used_at")?
                        .map(Timestamp::from_unix_ms),
                    revoked_at: get::<Option<i64>>(row, "revoked_at")?.map(Timestamp::from_unix_ms),
                    owner: user_from_row(row)?,
                })
            })
            .collect()
    }

    /// Revokes key `id` at `at` if it is live and, when `owner` is given, theirs; `false`
    /// otherwise.
    pub async fn revoke_api_key(
        &self,
        id: &str,
        owner: Option<&str>,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $2 \
             WHERE id = $1 AND revoked_at IS NULL AND ($3 = '' OR user_id = $3)",
        )
        .bind(id)
        .bind(at.unix_ms())
        .bind(owner.unwrap_or(""))
        .execute(&self.pool)
        .await
        .map_err(|source| database("revoke an API key", source))?;
        Ok(done.rows_affected() == 1)
    }
}
