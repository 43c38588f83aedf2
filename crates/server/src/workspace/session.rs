//! Signing in and out, and who is signed in.
//!
//! A session is a random token in an HttpOnly, SameSite=Lax cookie (Secure when the server's
//! public URL is https); the database keeps only its SHA-256, with an expiry and the session's
//! CSRF token. Every form carries that CSRF token, and a state-changing request without it is
//! refused. The sign-in form, made before any session exists, carries a token that must match
//! a cookie of its own (double submit). Wrong passwords are counted per address and per
//! account, with the back-off of [`crate::attempts`].

use std::time::Duration;

use axum::extract::{Form, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use viva_store::{Role, StoreError, Timestamp, User};

use crate::accounts::{MAX_EMAIL_BYTES, MAX_PASSWORD_BYTES, hash_password, verify_password};
use crate::metrics::Secret;
use crate::peer::ClientAddr;
use crate::secrets::token_hash;
use crate::state::AppState;

use super::{message, render};

/// The session cookie.
const SESSION_COOKIE: &str = "viva_session";
/// The sign-in form's own CSRF cookie.
const LOGIN_CSRF_COOKIE: &str = "viva_login_csrf";
/// How long a session lasts: a working day, then sign in again.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// A signed-in user, as an extractor: pages that need one redirect to the sign-in page
/// without it.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    /// The token this session's forms must carry.
    pub csrf_token: String,
}

impl SignedIn {
    /// The refusal to answer when the user's role does not include `needed`.
    pub fn denied(&self, needed: Role) -> Option<Response> {
        if self.user.role.allows(needed) {
            return None;
        }
        Some(message(
            StatusCode::FORBIDDEN,
            Some(self),
            "Not allowed",
            &format!(
                "This needs the {} role; your account is a {}.",
                needed.as_str(),
                self.user.role.as_str()
            ),
        ))
    }

    /// The refusal to answer a state-changing request whose form did not carry this
    /// session's CSRF token.
    pub fn forged(&self, presented: &str) -> Option<Response> {
        if bool::from(presented.as_bytes().ct_eq(self.csrf_token.as_bytes())) {
            return None;
        }
        Some(message(
            StatusCode::FORBIDDEN,
            Some(self),
            "Form expired",
            "This form did not come from your current session. Reload the page and try again.",
        ))
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(signed_in) = signed_in(state, &parts.headers).await.map_err(|err| {
            tracing::error!(error = %err, "cannot read a session");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        })? {
            return Ok(signed_in);
        }
        let next = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let to = if next == "/" {
            "/login".to_owned()
        } else {
            format!("/login?next={}", url_encode(&next))
        };
        Err(Redirect::to(&to).into_response())
    }
}

/// Who the session cookie in `headers` signs in, if anyone.
pub async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<SignedIn>, StoreError> {
    let jar = CookieJar::from_headers(headers);
    let Some(token) = jar.get(SESSION_COOKIE) else {
        return Ok(None);
    };
    let session = state
        .store
        .session(&token_hash(token.value()), Timestamp::now())
        .await?;
    Ok(session.map(|session| SignedIn {
        user: session.user,
        csrf_token: session.csrf_token,
    }))
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

/// The sign-in form, with a fresh double-submit CSRF token.
pub async fn login_page(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<LoginQuery>,
) -> Response {
    login_form(&state, jar, StatusCode::OK, "", &query.next, None)
}

fn login_form(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    email: &str,
    next: &str,
    error: Option<&str>,
) -> Response {
    let csrf = random_token();
    let jar = jar.add(cookie(
        state,
        LOGIN_CSRF_COOKIE,
        csrf.clone(),
        Duration::from_secs(3600),
    ));
    let mut page = render(
        "login.html",
        None,
        "",
        minijinja::context! { login_csrf => csrf, email, next => safe_next(next), error },
    );
    *page.status_mut() = status;
    (jar, page).into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    // Missing fields are wrong ones, answered like them (not with a deserializer's 422).
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

/// Checks the password and starts a session.
pub async fn log_in(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = jar.get(LOGIN_CSRF_COOKIE).map(|c| c.value().to_owned());
    let csrf_ok = expected
        .is_some_and(|expected| bool::from(form.csrf.as_bytes().ct_eq(expected.as_bytes())));
    if !csrf_ok {
        return login_form(
            &state,
            jar,
            StatusCode::FORBIDDEN,
            &form.email,
            &form.next,
            Some("The sign-in form expired. Please try again."),
        );
    }
    if form.email.len() > MAX_EMAIL_BYTES || form.password.len() > MAX_PASSWORD_BYTES {
        return wrong_password(&state, jar, &form);
    }
    let email = form.email.trim().to_lowercase();
    // Both counted before the check: one address guessing many accounts, and many addresses
    // guessing one account, are each bounded.
    let by_address = state.credentials.begin(&client.to_string());
    let by_account = state.credentials.begin(&format!("account:{email}"));
    let (by_address, by_account) = match (by_address, by_account) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(lockout), _) | (_, Err(lockout)) => {
            state.metrics.refused(Secret::Credential, lockout.scope);
            tracing::warn!(%client, "sign-in refused: too many wrong passwords");
            let minutes = lockout.retry_after.as_secs().div_ceil(60);
            return login_form(
                &state,
                jar,
                StatusCode::TOO_MANY_REQUESTS,
                &form.email,
                &form.next,
                Some(&format!(
                    "Too many wrong passwords. Try again in {minutes} minute{}.",
                    if minutes == 1 { "" } else { "s" }
                )),
            );
        }
    };
    let found = match state.store.credentials(&email).await {
        Ok(found) => found,
        Err(err) => {
            tracing::error!(error = %err, "cannot read accounts");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let password = form.password.clone();
    // Hashing takes tens of milliseconds of CPU: off the async workers. An unknown email
    // costs a hash too, so timing does not tell which emails have accounts.
    let (user, right) = tokio::task::spawn_blocking(move || match found {
        Some((user, hash)) => {
            let right = verify_password(&password, &hash);
            (Some(user), right)
        }
        None => {
            let _ = hash_password(&password);
            (None, false)
        }
    })
    .await
    .unwrap_or((None, false));
    let Some(user) = user.filter(|_| right) else {
        state.metrics.auth_failure(Secret::Credential);
        for lockout in [
            state.credentials.failed(by_address),
            state.credentials.failed(by_account),
        ]
        .into_iter()
        .flatten()
        {
            state.metrics.lockout(Secret::Credential, lockout.scope);
            tracing::warn!(%client, wait_secs = lockout.retry_after.as_secs(), "an address or account is locked out after wrong passwords");
        }
        return wrong_password(&state, jar, &form);
    };
    state.credentials.succeeded(by_address);
    state.credentials.succeeded(by_account);

    let token = random_token();
    let csrf = random_token();
    let expires_at = Timestamp::from_unix_ms(
        Timestamp::now().unix_ms() + i64::try_from(SESSION_TTL.as_millis()).unwrap_or(i64::MAX),
    );
    if let Err(err) = state
        .store
        .create_session(&user, &token_hash(&token), &csrf, expires_at)
        .await
    {
        tracing::error!(error = %err, "cannot start a session");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    tracing::info!(user = %user.email, %client, "signed in");
    let jar = jar
        .remove(Cookie::build(LOGIN_CSRF_COOKIE).path("/"))
        .add(cookie(&state, SESSION_COOKIE, token, SESSION_TTL));
    (jar, Redirect::to(safe_next(&form.next))).into_response()
}

fn wrong_password(state: &AppState, jar: CookieJar, form: &LoginForm) -> Response {
    login_form(
        state,
        jar,
        StatusCode::UNAUTHORIZED,
        &form.email,
        &form.next,
        Some("Wrong email or password."),
    )
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// Ends the session.
pub async fn log_out(
    State(state): State<AppState>,
    signed_in: SignedIn,
    jar: CookieJar,
    Form(form): Form<LogoutForm>,
) -> Response {
    if let Some(refused) = signed_in.forged(&form.csrf) {
        return refused;
    }
    if let Some(token) = jar.get(SESSION_COOKIE)
        && let Err(err) = state.store.end_session(&token_hash(token.value())).await
    {
        tracing::error!(error = %err, "cannot end a session");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    (jar, Redirect::to("/login")).into_response()
}

/// A cookie only this site's pages send back, never readable by scripts.
fn cookie(state: &AppState, name: &'static str, value: String, ttl: Duration) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.public_url.starts_with("https://"))
        .max_age(time::Duration::seconds(
            i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
        ))
        .build()
}

/// 256 random bits, URL-safe.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database keeps of a session token.
/// Where to go after signing in: a path on this site, never another site (`//evil`,
/// `https://...`, `/\evil`).
fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\");
    if local && !next.chars().any(char::is_control) {
        next
    } else {
        "/"
    }
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next("/interviews/abc?x=1"), "/interviews/abc?x=1");
        for outside in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "",
            "javascript:x",
        ] {
            assert_eq!(safe_next(outside), "/", "{outside}");
        }
        assert_eq!(safe_next("/a\nb"), "/");
    }

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
        assert_eq!(url_encode("/a b?c=d"), "/a%20b%3Fc%3Dd");
    }
}
