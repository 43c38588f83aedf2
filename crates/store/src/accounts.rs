//! Recruiter accounts and their signed-in sessions.
//!
//! The store never sees a password or a session cookie: the server hands it the password's
//! hash (a PHC string) and the SHA-256 of each session token, so a copy of the database lets
//! nobody sign in.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, Timestamp, new_id};

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads interviews, reports and decisions (a hiring manager).
    Viewer,
    /// Invites candidates, reviews and decides.
    Recruiter,
    /// Everything a recruiter does, plus users, jobs, webhooks and settings.
    Admin,
}

impl Role {
    /// Every role, least powerful first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Recruiter, Role::Admin];

    /// The name stored and shown: `viewer`, `recruiter`, `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Recruiter => "recruiter",
            Role::Admin => "admin",
        }
    }

    /// The role called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }

    /// Whether this role includes everything `needed` may do.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

/// A recruiter account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Random id.
    pub id: String,
    /// Lower-cased.
    pub email: String,
    /// What the account may do.
    pub role: Role,
    /// When the account was made.
    pub created_at: Timestamp,
    /// When an admin disabled it: it then signs nobody in and its keys open nothing.
    pub disabled_at: Option<Timestamp>,
}

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Compared without regard to case; kept lower-cased.
    pub email: String,
    /// The PHC string of the password's hash.
    pub password_hash: String,
    /// What the account may do.
    pub role: Role,
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The account signed in.
    pub user: User,
    /// The token every form and state-changing request of this session must carry.
    pub csrf_token: String,
    /// When the session stops being valid.
    pub expires_at: Timestamp,
}

impl Store {
    /// Creates an account; [`StoreError::EmailTaken`] when the email (in any case) has one.
    pub async fn create_user(&self, new: NewUser) -> Result<User, StoreError> {
        let user = User {
            id: new_id(),
            email: new.email.trim().to_lowercase(),
            role: new.role,
            created_at: Timestamp::now(),
            disabled_at: None,
        };
        let inserted = sqlx::query(
            "INSERT INTO users (id, email, password_hash, role, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&user.id)
        .bind(&user.email)
        .bind(&new.password_hash)
        .bind(user.role.as_str())
        .bind(user.created_at.unix_ms())
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(user),
            Err(sqlx::Error::Database(err)) if err.is_unique_violation() => {
                Err(StoreError::EmailTaken { email: user.email })
            }
            Err(source) => Err(StoreError::Database {
                action: format!("create the account of {}", user.email),
                source,
            }),
        }
    }

    /// The enabled account with this email (in any case) and its password hash, for signing
    /// in.
    pub async fn credentials(&self, email: &str) -> Result<Option<(User, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT id, email, role, created_at, disabled_at, password_hash FROM users \
             WHERE email = $1 AND disabled_at IS NULL",
        )
        .bind(email.trim().to_lowercase())
        .fetch_optional(&self.pool)
        .await
        .map_err(|source| database("look an account up by email", source))?;
        row.map(|row| Ok((user_from_row(&row)?, get(&row, "password_hash")?)))
            .transpose()
    }

    /// Every account, oldest first.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, email, role, created_at, disabled_at FROM users ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|source| database("list accounts", source))?;
        rows.iter().map(user_from_row).collect()
    }

    /// The account with this id, enabled or not.
    pub async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let row =
            sqlx::query("SELECT id, email, role, created_at, disabled_at FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|source| database("look an account up", source))?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Gives an account another role; `false` when there is no such account.
    pub async fn set_role(&self, id: &str, role: Role) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET role = $2 WHERE id = $1")
            .bind(id)
            .bind(role.as_str())
            .execute(&self.pool)
            .await
            .map_err(|source| database("change the role of an account", source))?;
        Ok(done.rows_affected() == 1)
    }

    /// Disables an account at `at`: its sessions end and its API keys are revoked at once.
    /// `false` when there is no such enabled account.
    pub async fn disable_user(&self, id: &str, at: Timestamp) -> Result<bool, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|source| database("disable an account", source))?;
        let done =
            sqlx::query("UPDATE users SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL")
                .bind(id)
                .bind(at.unix_ms())
                .execute(&mut *tx)
                .await
                .map_err(|source| database("disable an account", source))?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|source| database("end the sessions of a disabled account", source))?;
        sqlx::query(
            "UPDATE api_keys SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(at.unix_ms())
        .execute(&mut *tx)
        .await
        .map_err(|source| database("revoke the keys of a disabled account", source))?;
        tx.commit()
            .await
            .map_err(|source| database("disable an account", source))?;
        Ok(done.rows_affected() == 1)
    }

    /// Starts a session for `user` under the hash of its cookie token.
    pub async fn create_session(
        &self,
        user: &User,
        token_hash: &str,
        csrf_token: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(&user.id)
        .bind(csrf_token)
        .bind(Timestamp::now().unix_ms())
        .bind(expires_at.unix_ms())
        .execute(&self.pool)
        .await
        .map_err(|source| database("start a session", source))?;
        Ok(())
    }

    /// The session whose cookie token hashes to `token_hash`, if it is still valid at `now`.
    pub async fn session(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(
            "SELECT u.id, u.email, u.role, u.created_at, u.disabled_at, s.csrf_token, \
             s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
        )
        .bind(token_hash)
        .bind(now.unix_ms())
        .fetch_optional(&self.pool)
        .await
        .map_err(|source| database("look a session up", source))?;
        row.map(|row| {
            Ok(Session {
                user: user_from_row(&row)?,
                csrf_token: get(&row, "csrf_token")?,
                expires_at: Timestamp::from_unix_ms(get(&row, "expires_at")?),
            })
        })
        .transpose()
    }

    /// Ends a session (signing out). Ending one that does not exist is not an error.
    pub async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(|source| database("end a session", source))?;
        Ok(())
    }

    /// Forgets sessions that expired before `now`; returns how many.
    pub async fn forget_expired_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now.unix_ms())
            .execute(&self.pool)
            .await
            .map_err(|source| database("forget expired sessions", source))?;
        Ok(done.rows_affected())
    }
}

pub(crate) fn database(action: &str, source: sqlx::Error) -> StoreError {
    StoreError::Database {
        action: action.to_owned(),
        source,
    }
}

pub(crate) fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    let id: String = get(row, "id")?;
    let role: String = get(row, "role")?;
    Ok(User {
        role: Role::from_name(&role).ok_or_else(|| StoreError::CorruptAccount {
            id: id.clone(),
            value: role,
        })?,
        email: get(row, "email")?,
        created_at: Timestamp::from_unix_ms(get(row, "created_at")?),
        disabled_at: get::<Option<i64>>(row, "disabled_at")?.map(Timestamp::from_unix_ms),
        id,
    })
}

pub(crate) fn get<'r, T>(row: &'r AnyRow, name: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(name)
        .map_err(|source| database(&format!("read column {name} of an account"), source))
}
