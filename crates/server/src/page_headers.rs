//! The headers every HTML page of the server carries (the candidate's join page and the
//! recruiter workspace): defence in depth beside escaping every value.

use axum::Router;
use axum::http::{HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::state::AppState;

/// What the pages may load and who may frame them: no script but the pages' own files runs,
/// no other site frames them (clickjacking a decision or a candidate's camera prompt), forms
/// post only here. Inline styles are allowed (score bars set their width); inline scripts are
/// not. `connect-src 'self'` covers the page's own WebSocket.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; media-src 'self'; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// `routes` with the pages' security headers on every answer (unless a handler set its own).
pub fn secured(routes: Router<AppState>) -> Router<AppState> {
    routes
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
}
