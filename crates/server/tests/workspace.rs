//! The recruiter workspace against a real `viva serve`: accounts made with `viva user add`,
//! signing in and out over HTTP, sessions, CSRF, guessing limits and escaping.

#[path = "support/server.rs"]
mod server;

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use server::{Reply, TestServer, repo};

const PASSWORD: &str = "correct horse battery staple";

fn add_user(server: &TestServer, email: &str, role: &str, password: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_viva"))
        .current_dir(repo())
        .args([
            "user",
            "add",
            email,
            "--role",
            role,
            "--password-stdin",
            "--data-dir",
        ])
        .arg(&server.data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    child.wait_with_output().unwrap()
}

fn local(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

/// The value of cookie `name` set by `reply`, if any.
fn set_cookie(reply: &Reply, name: &str) -> Option<String> {
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
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {page}"))
        + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}

fn form(fields: &[(&str, &str)]) -> String {
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

/// Opens the sign-in page from `from` and posts `email`/`password`; returns the reply.
fn sign_in(server: &TestServer, from: IpAddr, email: &str, password: &str) -> Reply {
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

#[test]
fn recruiters_sign_in_see_interviews_as_text_and_sign_out() {
    let server = TestServer::start("workspace-sign-in", &[]);
    let made = add_user(&server, "Ada@Example.com", "recruiter", PASSWORD);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    assert!(String::from_utf8_lossy(&made.stdout).contains("created ada@example.com (recruiter)"));

    // Bad input to the command is refused with a reason.
    let short = add_user(&server, "bob@example.com", "viewer", "short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 10 characters"));
    let again = add_user(&server, "ADA@example.com", "viewer", PASSWORD);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    // Nobody signed in: the list sends to the sign-in page.
    let anonymous = server.request_from(local(1), "GET", "/", None, &[], None);
    assert_eq!(anonymous.status, 303, "{}", anonymous.text());
    assert_eq!(anonymous.header("location"), Some("/login"));

    // A candidate whose name is markup.
    server.schedule("<img src=x onerror=alert(1)> Eve");

    let wrong = sign_in(&server, local(1), "ada@example.com", "not the password");
    assert_eq!(wrong.status, 401);
    assert!(wrong.text().contains("Wrong email or password"));
    assert!(set_cookie(&wrong, "viva_session").is_none());

    // A sign-in form posted without its own CSRF cookie (from another site) is refused.
    let forged = server.request_from(
        local(1),
        "POST",
        "/login",
        None,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(form(&[
            ("email", "ada@example.com"),
            ("password", PASSWORD),
            ("csrf", "x"),
        ])),
    );
    assert_eq!(forged.status, 403);
    assert!(set_cookie(&forged, "viva_session").is_none());

    let signed_in = sign_in(&server, local(1), "ADA@example.com", PASSWORD);
    assert_eq!(signed_in.status, 303, "{}", signed_in.text());
    let cookie_header = signed_in
        .headers
        .iter()
        .find(|(n, v)| n.eq_ignore_ascii_case("set-cookie") && v.starts_with("viva_session="))
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(cookie_header.contains("HttpOnly"), "{cookie_header}");
    assert!(cookie_header.contains("SameSite=Lax"), "{cookie_header}");
    let session = format!(
        "viva_session={}",
        set_cookie(&signed_in, "viva_session").unwrap()
    );

    let list = server.request_from(local(1), "GET", "/", None, &[("Cookie", &session)], None);
    assert_eq!(list.status, 200);
    let page = list.text();
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt; Eve"),
        "{page}"
    );
    assert!(!page.contains("<img src=x"), "the name is shown as text");
    assert!(page.contains("ada@example.com"));

    // Signing out needs the session's CSRF token.
    let csrf = hidden(&page, "csrf");
    let no_token = server.request_from(
        local(1),
        "POST",
        "/logout",
        None,
        &[
            ("Cookie", &session),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(form(&[("csrf", "wrong")])),
    );
    assert_eq!(no_token.status, 403);
    let still = server.request_from(local(1), "GET", "/", None, &[("Cookie", &session)], None);
    assert_eq!(still.status, 200, "a refused sign-out leaves the session");
    let out = server.request_from(
        local(1),
        "POST",
        "/logout",
        None,
        &[
            ("Cookie", &session),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(form(&[("csrf", &csrf)])),
    );
    assert_eq!(out.status, 303);
    let after = server.request_from(local(1), "GET", "/", None, &[("Cookie", &session)], None);
    assert_eq!(after.status, 303, "the old cookie signs nobody in");

    // A made-up session cookie signs nobody in either.
    let made_up = server.request_from(
        local(1),
        "GET",
        "/?page=2",
        None,
        &[(
            "Cookie",
            "viva_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )],
        None,
    );
    assert_eq!(made_up.status, 303);
    assert_eq!(made_up.header("location"), Some("/login?next=/%3Fpage%3D2"));
}

#[test]
fn password_guessing_is_bounded_per_address_and_per_account() {
    let server = TestServer::start("workspace-guessing", &[]);
    assert!(
        add_user(&server, "ada@example.com", "admin", PASSWORD)
            .status
            .success()
    );

    // One address: ten wrong passwords, then a lock-out even for the right one.
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(
            sign_in(
                &server,
                local(2),
                "ada@example.com",
                &format!("guess number {i}"),
            )
            .status,
        );
    }
    assert_eq!(&statuses[..10], [401; 10]);
    assert_eq!(&statuses[10..], [429; 2]);
    let locked = sign_in(&server, local(2), "ada@example.com", PASSWORD);
    assert_eq!(locked.status, 429, "not even checked while locked out");
    assert!(locked.text().contains("Too many wrong passwords"));

    // The account itself is now locked for a while: other addresses cannot keep guessing it.
    let elsewhere = sign_in(&server, local(3), "ada@example.com", "yet another guess");
    assert_eq!(elsewhere.status, 429);
}
