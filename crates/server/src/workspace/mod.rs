//! The recruiter workspace: server-rendered pages behind a sign-in.
//!
//! Pages are minijinja templates compiled into the binary; every value is HTML-escaped on
//! output (templates named `*.html` escape by default), so a candidate called
//! `<script>` is shown as text. Sessions and CSRF are in [`session`].

mod compare;
mod interviews;
mod invite;
mod jobs;
mod review;
pub mod session;
mod settings;
mod webhooks;

use std::sync::OnceLock;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::Environment;
use minijinja::value::Serde;
use serde::Serialize;
use viva_store::Timestamp;

use crate::state::AppState;
use session::SignedIn;

/// The workspace's routes.
pub fn routes() -> Router<AppState> {
    crate::page_headers::secured(
        Router::new()
            .route("/", get(interviews::list))
            .route("/interviews/{id}", get(review::page))
            .route("/interviews/{id}/decision", post(review::decide))
            .route("/interviews/{id}/dial", post(invite::dial))
            .route("/compare", get(compare::page))
            .route("/invite", get(invite::page).post(invite::invite))
            .route(
                "/invite/csv",
                post(invite::invite_csv)
                    // The file and the form's few small fields.
                    .layer(DefaultBodyLimit::max(invite::MAX_CSV_BYTES + 16 * 1024)),
            )
            .route(
                "/settings/users",
                get(settings::users).post(settings::add_user),
            )
            .route("/settings/users/{id}/role", post(settings::set_role))
            .route("/settings/users/{id}/disable", post(settings::disable_user))
            .route(
                "/settings/keys",
                get(settings::keys).post(settings::create_key),
            )
            .route("/settings/keys/{id}/revoke", post(settings::revoke_key))
            .route(
                "/settings/webhooks",
                get(webhooks::page).post(webhooks::add),
            )
            .route("/settings/webhooks/{id}", get(webhooks::endpoint))
            .route("/settings/webhooks/{id}/test", post(webhooks::send_test))
            .route(
                "/settings/webhooks/{id}/enabled",
                post(webhooks::set_enabled),
            )
            .route("/settings/webhooks/{id}/delete", post(webhooks::delete))
            .route("/login", get(session::login_page).post(session::log_in))
            .route("/logout", post(session::log_out))
            .route("/assets/workspace.css", get(style))
            .route("/assets/review.js", get(review_script))
            .merge(jobs::routes())
            .route("/assets/workspace.js", get(workspace_script)),
    )
}

/// The templates, parsed once.
fn templates() -> &'static Environment<'static> {
    static TEMPLATES: OnceLock<Environment<'static>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in [
            ("base.html", include_str!("../../templates/base.html")),
            ("login.html", include_str!("../../templates/login.html")),
            ("message.html", include_str!("../../templates/message.html")),
            (
                "interviews.html",
                include_str!("../../templates/interviews.html"),
            ),
            ("review.html", include_str!("../../templates/review.html")),
            ("invite.html", include_str!("../../templates/invite.html")),
            ("compare.html", include_str!("../../templates/compare.html")),
            ("users.html", include_str!("../../templates/users.html")),
            ("keys.html", include_str!("../../templates/keys.html")),
            ("jobs.html", include_str!("../../templates/jobs.html")),
            ("job.html", include_str!("../../templates/job.html")),
            (
                "job_edit.html",
                include_str!("../../templates/job_edit.html"),
            ),
            (
                "webhooks.html",
                include_str!("../../templates/webhooks.html"),
            ),
        ] {
            env.add_template(name, source)
                .unwrap_or_else(|err| panic!("template {name} does not parse: {err:#}"));
        }
        env.add_filter("clock", clock);
        env.add_filter("advice", |name: String| {
            serde_json::from_value(serde_json::Value::String(name))
                .map(interviews::recommendation_label)
                .unwrap_or("—")
        });
        env
    })
}

/// The signed-in user as pages show them.
#[derive(Serialize)]
struct Viewer<'a> {
    email: &'a str,
    role: &'static str,
}

/// Renders `template` for `signed_in` (or nobody) with `context`'s fields beside `user`,
/// `csrf` and `section`.
fn render(
    template: &str,
    signed_in: Option<&SignedIn>,
    section: &str,
    context: minijinja::Value,
) -> Response {
    let user = signed_in.map(|s| Viewer {
        email: &s.user.email,
        role: s.user.role.as_str(),
    });
    let csrf = signed_in.map(|s| s.csrf_token.as_str());
    let page = templates().get_template(template).and_then(|t| {
        t.render(minijinja::context! { user => Serde(user), csrf, section, ..context })
    });
    match page {
        Ok(html) => ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(err) => {
            tracing::error!(template, error = %format!("{err:#}"), "a page failed to render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A page with a heading and one message, e.g. "not allowed".
fn message(
    status: StatusCode,
    signed_in: Option<&SignedIn>,
    heading: &str,
    text: &str,
) -> Response {
    let mut page = render(
        "message.html",
        signed_in,
        "",
        minijinja::context! { heading, message => text },
    );
    *page.status_mut() = status;
    page
}

/// `m:ss` of a moment in the recording, from milliseconds.
fn clock(ms: u64) -> String {
    let seconds = ms / 1000;
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

/// A script or style sheet of the pages, revalidated on every load so an upgrade shows at once.
fn asset(mime: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn review_script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/review.js"),
    )
}

async fn workspace_script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/workspace.js"),
    )
}

async fn style() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/workspace.css"),
    )
}

/// A moment to the minute, as the pages show it: "2026-12-04 22:52 UTC".
fn minute(at: Timestamp) -> String {
    format!("{} UTC", at.to_string()[..16].replace('T', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_escapes_what_it_shows() {
        let html = templates()
            .get_template("message.html")
            .unwrap()
            .render(minijinja::context! {
                heading => "<script>alert(1)</script>",
                message => "\"quoted\" & <b>bold</b>",
            })
            .unwrap();
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("&quot;quoted&quot; &amp; &lt;b&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>alert"));
        // Job names and dimension ids go into URLs unencoded: they are [A-Za-z0-9_-].
        let ada = minijinja::context! {
            id => "a1", candidate => "Ada <img src=x onerror=alert(1)>", composite => "7.5",
            recommendation => "yes",
            scores => vec![minijinja::context! { score => "8.0", quote => "I built <it>", at_ms => 1200 }],
        };
        let compare = templates()
            .get_template("compare.html")
            .unwrap()
            .render(minijinja::context! {
                jobs => vec!["backend-developer"],
                job => "backend-developer",
                dimensions => vec![minijinja::context! { id => "api", name => "API", index => 0 }],
                ranked => vec![ada.clone()],
                chosen => vec![ada],
                chosen_ids => vec!["a1"],
            })
            .unwrap();
        assert!(compare.contains("value=\"a1\" checked"), "{compare}");
        assert!(
            compare.contains("#t=1200\">“I built &lt;it&gt;”"),
            "{compare}"
        );
        assert!(compare.contains("Ada &lt;img src=x"), "{compare}");
        assert!(
            !compare.contains("<img"),
            "names and quotes are text: {compare}"
        );
        for name in [
            "login.html",
            "interviews.html",
            "review.html",
            "invite.html",
            "users.html",
            "keys.html",
            "webhooks.html",
        ] {
            templates().get_template(name).unwrap();
        }
    }
}
