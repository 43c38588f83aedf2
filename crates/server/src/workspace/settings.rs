//! Settings: accounts and their roles (admins), and API keys (everyone their own; admins see
//! and revoke all).

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::value::Serde;
use serde::{Deserialize, Serialize};
use viva_store::{ApiKey, NewUser, Role, StoreError, Timestamp, User};

use crate::accounts::{check_email, check_password, hash_password};
use crate::api_keys;
use crate::state::AppState;

use super::session::SignedIn;
use super::{message, minute, render};

/// Live API keys one account may hold.
const MAX_LIVE_KEYS: usize = 20;

/// An account as the users page shows it.
#[derive(Serialize)]
struct UserRow {
    id: String,
    email: String,
    role: &'static str,
    created: String,
    disabled: Option<String>,
    /// The admin's own row: they cannot demote or disable themselves (and lock everyone out).
    is_self: bool,
}

/// The add-account form, shown again beside its error.
#[derive(Deserialize, Serialize, Default)]
pub struct NewUserForm {
    #[serde(default, skip_serializing)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default, skip_serializing)]
    password: String,
    #[serde(default)]
    role: String,
}

/// A form that only carries its CSRF token (and maybe a role).
#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    name: String,
}

pub async fn users(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    if let Some(refused) = signed_in.denied(Role::Admin) {
        return refused;
    }
    show_users(&state, &signed_in, NewUserForm::default(), None, None).await
}

async fn show_users(
    state: &AppState,
    signed_in: &SignedIn,
    form: NewUserForm,
    error: Option<String>,
    added: Option<String>,
) -> Response {
    let users = match state.store.users().await {
        Ok(users) => users,
        Err(err) => return unavailable(err),
    };
    let rows: Vec<UserRow> = users
        .into_iter()
        .map(|user| UserRow {
            is_self: user.id == signed_in.user.id,
            id: user.id,
            email: user.email,
            role: user.role.as_str(),
            created: minute(user.created_at),
            disabled: user.disabled_at.map(minute),
        })
        .collect();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut page = render(
        "users.html",
        Some(signed_in),
        "settings",
        minijinja::context! {
            users => Serde(rows),
            roles => Role::ALL.map(Role::as_str),
            form => Serde(form),
            error,
            added,
        },
    );
    *page.status_mut() = status;
    page
}

/// Adds an account.
pub async fn add_user(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<NewUserForm>,
) -> Response {
    if let Some(refused) = signed_in
        .forged(&form.csrf)
        .or_else(|| signed_in.denied(Role::Admin))
    {
        return refused;
    }
    let checked = check_email(&form.email)
        .and_then(|()| check_password(&form.password))
        .and_then(|()| {
            Role::from_name(&form.role).ok_or_else(|| format!("{:?} is not a role", form.role))
        });
    let role = match checked {
        Ok(role) => role,
        Err(error) => return show_users(&state, &signed_in, form, Some(error), None).await,
    };
    let password = form.password.clone();
    // argon2id takes a moment of CPU: off the async workers.
    let hash = match tokio::task::spawn_blocking(move || hash_password(&password)).await {
        Ok(Ok(hash)) => hash,
        _ => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let created = state
        .store
        .create_user(NewUser {
            email: form.email.clone(),
            password_hash: hash,
            role,
        })
        .await;
    match created {
        Ok(user) => {
            tracing::info!(email = %user.email, role = role.as_str(), by = %signed_in.user.email, "account added");
            show_users(
                &state,
                &signed_in,
                NewUserForm::default(),
                None,
                Some(user.email),
            )
            .await
        }
        Err(StoreError::EmailTaken { email }) => {
            let error = format!("{email} already has an account");
            show_users(&state, &signed_in, form, Some(error), None).await
        }
        Err(err) => unavailable(err),
    }
}

/// Gives an account another role.
pub async fn set_role(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = admin_acting_on_another(&signed_in, &form, &id) {
        return refused;
    }
    let Some(role) = Role::from_name(&form.role) else {
        return message(
            StatusCode::BAD_REQUEST,
            Some(&signed_in),
            "No such role",
            "Choose viewer, recruiter or admin.",
        );
    };
    let changed = state.store.set_role(&id, role).await;
    account_changed(
        changed,
        &signed_in,
        &id,
        &format!("role changed to {}", role.as_str()),
    )
}

/// Disables an account: signed out everywhere, its keys revoked, its decisions kept.
pub async fn disable_user(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = admin_acting_on_another(&signed_in, &form, &id) {
        return refused;
    }
    let changed = state.store.disable_user(&id, Timestamp::now()).await;
    account_changed(changed, &signed_in, &id, "account disabled")
}

/// Back to the users page after a change to account `id` (`what`, for the log), or why not.
fn account_changed(
    changed: Result<bool, StoreError>,
    signed_in: &SignedIn,
    id: &str,
    what: &str,
) -> Response {
    match changed {
        Ok(true) => {
            tracing::info!(user_id = %id, by = %signed_in.user.email, "{what}");
            Redirect::to("/settings/users").into_response()
        }
        Ok(false) => message(
            StatusCode::NOT_FOUND,
            Some(signed_in),
            "No such account",
            "There is no enabled account with this id.",
        ),
        Err(err) => unavailable(err),
    }
}

/// The refusal when the form is forged, the user no admin, or the account their own.
fn admin_acting_on_another(signed_in: &SignedIn, form: &ActionForm, id: &str) -> Option<Response> {
    signed_in
        .forged(&form.csrf)
        .or_else(|| signed_in.denied(Role::Admin))
        .or_else(|| {
            (id == signed_in.user.id).then(|| {
                message(
                    StatusCode::BAD_REQUEST,
                    Some(signed_in),
                    "Not your own account",
                    "Another admin must change or disable your account, so that there is \
                     always one left.",
                )
            })
        })
}

/// A key as the keys page shows it.
#[derive(Serialize)]
struct KeyRow {
    id: String,
    name: String,
    owner: String,
    role: &'static str,
    created: String,
    last_used: Option<String>,
    revoked: Option<String>,
}

impl From<ApiKey> for KeyRow {
    fn from(key: ApiKey) -> Self {
        KeyRow {
            id: key.id,
            name: key.name,
            owner: key.owner.email,
            role: key.owner.role.as_str(),
            created: minute(key.created_at),
            last_used: key.last_used_at.map(minute),
            revoked: key.revoked_at.map(minute),
        }
    }
}

pub async fn keys(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    show_keys(&state, &signed_in, None, StatusCode::OK).await
}

/// The keys page; `created` is a key just made, shown this once.
async fn show_keys(
    state: &AppState,
    signed_in: &SignedIn,
    created: Option<String>,
    status: StatusCode,
) -> Response {
    let keys = match state.store.api_keys(owner_scope(&signed_in.user)).await {
        Ok(keys) => keys.into_iter().map(KeyRow::from).collect::<Vec<_>>(),
        Err(err) => return unavailable(err),
    };
    let mut page = render(
        "keys.html",
        Some(signed_in),
        "keys",
        minijinja::context! {
            keys => Serde(keys),
            created,
            everyone => signed_in.user.role == Role::Admin,
            max_name => api_keys::MAX_NAME_CHARS,
        },
    );
    *page.status_mut() = status;
    page
}

/// Makes a key for the signed-in user and shows it once.
pub async fn create_key(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = signed_in.forged(&form.csrf) {
        return refused;
    }
    let name = if form.name.trim().is_empty() {
        "API key"
    } else {
        form.name.as_str()
    };
    // A bound on what one account can make the database hold.
    match state.store.api_keys(Some(&signed_in.user.id)).await {
        Ok(keys) if keys.iter().filter(|k| k.revoked_at.is_none()).count() >= MAX_LIVE_KEYS => {
            return message(
                StatusCode::CONFLICT,
                Some(&signed_in),
                "Too many keys",
                &format!(
                    "An account may hold {MAX_LIVE_KEYS} live keys: revoke one you no longer use first."
                ),
            );
        }
        Ok(_) => {}
        Err(err) => return unavailable(err),
    }
    match api_keys::create(&state, &signed_in.user, name).await {
        Ok(new) => {
            tracing::info!(key_id = %new.key.id, user = %signed_in.user.email, "API key created");
            // Not cacheable (the page renderer says no-store): the key is in this page only.
            show_keys(&state, &signed_in, Some(new.text), StatusCode::CREATED).await
        }
        Err(err) => unavailable(err),
    }
}

/// Revokes a key: the owner's own, or any for an admin.
pub async fn revoke_key(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = signed_in.forged(&form.csrf) {
        return refused;
    }
    let revoked = state
        .store
        .revoke_api_key(&id, owner_scope(&signed_in.user), Timestamp::now())
        .await;
    match revoked {
        Ok(true) => {
            tracing::info!(key_id = %id, by = %signed_in.user.email, "API key revoked");
            Redirect::to("/settings/keys").into_response()
        }
        Ok(false) => message(
            StatusCode::NOT_FOUND,
            Some(&signed_in),
            "No such key",
            "There is no live key of yours with this id.",
        ),
        Err(err) => unavailable(err),
    }
}

/// Whose keys `user` sees and revokes: everyone's for an admin, else their own.
fn owner_scope(user: &User) -> Option<&str> {
    (user.role != Role::Admin).then_some(user.id.as_str())
}

fn unavailable(err: StoreError) -> Response {
    tracing::error!(error = %err, "the settings cannot reach the database");
    StatusCode::SERVICE_UNAVAILABLE.into_response()
}
