//! The workspace's HTML forms as the tests fill them: cookies, hidden fields, form bodies,
//! escaped text, and signing in through the sign-in form.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::net::IpAddr;

use super::server::{Reply, TestServer};

/// The value of cookie `name` set by `reply`, if any.
pub fn set_cookie(reply: &Reply, name: &str) -> Option<String> {
    reply
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| {
            let (pair, _) = v.split_once(';').unwrap_or((v, ""));
            let (n, value) = pair.split_once('=')?;
            (n == name && !value.is_empty()).then(|| value.to_owned())
        })
}

/// The `value` of the hidden input `name` in a page.
pub fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {page}"))
        + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}

/// An `application/x-www-form-urlencoded` body, as a browser encodes a form.
pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let v: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Text as the pages show it: HTML-escaped as the template engine escapes (`/` too).
pub fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

/// Opens the sign-in page from `from` and posts `email`/`password` with the form's own CSRF
/// token and cookie; returns the reply.
pub fn sign_in(server: &TestServer, from: IpAddr, email: &str, password: &str) -> Reply {
    let page = server.request_from(from, "GET", "/login", None, &[], None);
    assert_eq!(page.status, 200);
    let csrf_cookie = set_cookie(&page, "viva_login_csrf").expect("a sign-in CSRF cookie");
    let csrf = hidden(&page.text(), "csrf");
    server.request_from(
        from,
        "POST",
        "/login",
        None,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &format!("viva_login_csrf={csrf_cookie}")),
        ],
        Some(form(&[
            ("email", email),
            ("password", password),
            ("csrf", &csrf),
            ("next", "/"),
        ])),
    )
}

/// The session cookie (`viva_session=...`) of `email` signed in from `from`.
pub fn session_of(server: &TestServer, from: IpAddr, email: &str, password: &str) -> String {
    let reply = sign_in(server, from, email, password);
    assert_eq!(reply.status, 303, "{}", reply.text());
    format!(
        "viva_session={}",
        set_cookie(&reply, "viva_session").unwrap()
    )
}
