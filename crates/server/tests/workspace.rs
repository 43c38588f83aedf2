//! The recruiter workspace against a real `viva serve`: accounts made with `viva user add`,
//! signing in and out over HTTP, sessions, CSRF, guessing limits and escaping.

#[path = "support/forms.rs"]
mod forms;
#[path = "support/server.rs"]
mod server;

use std::net::IpAddr;

use forms::{form, hidden, set_cookie, sign_in};
use server::{Reply, TestServer};

const PASSWORD: &str = "correct horse battery staple";

fn local(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

#[test]
fn recruiters_sign_in_see_interviews_as_text_and_sign_out() {
    let server = TestServer::start("workspace-sign-in", &[]);
    let made = server.add_user("Ada@Example.com", "recruiter", PASSWORD);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    assert!(String::from_utf8_lossy(&made.stdout).contains("created ada@example.com (recruiter)"));

    // Bad input to the command is refused with a reason.
    let short = server.add_user("bob@example.com", "viewer", "short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 10 characters"));
    let again = server.add_user("ADA@example.com", "viewer", PASSWORD);
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
        server
            .add_user("ada@example.com", "admin", PASSWORD)
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

/// The session cookie of a signed-in `email`.
fn session_of(server: &TestServer, from: IpAddr, email: &str) -> String {
    forms::session_of(server, from, email, PASSWORD)
}

fn decide(server: &TestServer, session: &str, id: &str, fields: &[(&str, &str)]) -> Reply {
    server.request_from(
        local(1),
        "POST",
        &format!("/interviews/{id}/decision"),
        None,
        &[
            ("Cookie", session),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(form(fields)),
    )
}

#[test]
fn recruiters_decide_viewers_only_read_and_history_is_kept() {
    let server = TestServer::start("workspace-decisions", &[]);
    for (email, role) in [
        ("rec@example.com", "recruiter"),
        ("hm@example.com", "viewer"),
    ] {
        assert!(server.add_user(email, role, PASSWORD).status.success());
    }
    let id = server.schedule("<script>alert('x')</script> Mallory")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let recruiter = session_of(&server, local(1), "rec@example.com");
    let viewer = session_of(&server, local(1), "hm@example.com");
    let review = |session: &str| {
        server.request_from(
            local(1),
            "GET",
            &format!("/interviews/{id}"),
            None,
            &[("Cookie", session)],
            None,
        )
    };

    let page = review(&recruiter);
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(!html.contains("<script>alert"), "the name is escaped");
    assert!(
        html.contains("name=\"decision\" value=\"advance\""),
        "a recruiter gets the form"
    );
    let csrf = hidden(&html, "csrf");

    // Without the session's CSRF token, or with a made-up decision: nothing recorded.
    let forged = decide(
        &server,
        &recruiter,
        &id,
        &[("csrf", "nope"), ("decision", "advance")],
    );
    assert_eq!(forged.status, 403);
    let odd = decide(
        &server,
        &recruiter,
        &id,
        &[("csrf", &csrf), ("decision", "maybe")],
    );
    assert_eq!(odd.status, 400);

    for (decision, note) in [("hold", "ask the team"), ("advance", "clear <b>yes</b>")] {
        let done = decide(
            &server,
            &recruiter,
            &id,
            &[("csrf", &csrf), ("decision", decision), ("note", note)],
        );
        assert_eq!(done.status, 303, "{}", done.text());
    }

    // The viewer sees the decision and its history, but gets no form and cannot post one.
    let seen = review(&viewer).text();
    assert!(!seen.contains("name=\"decision\""), "no form for a viewer");
    assert!(seen.contains("History (2)"), "{seen}");
    assert!(
        seen.contains("clear &lt;b&gt;yes&lt;&#x2f;b&gt;"),
        "notes are escaped"
    );
    let viewer_csrf = hidden(&seen, "csrf");
    let refused = decide(
        &server,
        &viewer,
        &id,
        &[("csrf", &viewer_csrf), ("decision", "reject")],
    );
    assert_eq!(refused.status, 403);
    let list = server
        .request_from(local(1), "GET", "/", None, &[("Cookie", &viewer)], None)
        .text();
    assert!(
        list.contains("verdict-tag advance"),
        "the list shows the current decision"
    );

    // Recordings and transcripts: a signed-in browser may read them through the API, not
    // change anything; without a session or key, nothing.
    let transcript = format!("/api/v1/interviews/{id}/transcript");
    let read = server.request_from(
        local(1),
        "GET",
        &transcript,
        None,
        &[("Cookie", &viewer)],
        None,
    );
    assert_eq!(read.status, 200, "{}", read.text());
    let anonymous = server.request_from(local(1), "GET", &transcript, None, &[], None);
    assert_eq!(anonymous.status, 401);
    let change = server.request_from(
        local(1),
        "POST",
        &format!("/api/v1/interviews/{id}/dial"),
        None,
        &[("Cookie", &recruiter)],
        None,
    );
    assert_eq!(
        change.status, 401,
        "a cookie alone changes nothing through the API"
    );

    let unknown = server.request_from(
        local(1),
        "GET",
        "/interviews/nope",
        None,
        &[("Cookie", &viewer)],
        None,
    );
    assert_eq!(unknown.status, 404);
}

fn multipart(fields: &[(&str, &str)], file: &str) -> (String, String) {
    let boundary = "----viva-test-boundary";
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.csv\"\r\n\
         Content-Type: text/csv\r\n\r\n{file}\r\n--{boundary}--\r\n"
    ));
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[test]
fn recruiters_invite_one_candidate_or_a_csv_file_of_them() {
    let server = TestServer::start("workspace-invite", &[]);
    for (email, role) in [
        ("rec@example.com", "recruiter"),
        ("hm@example.com", "viewer"),
    ] {
        assert!(server.add_user(email, role, PASSWORD).status.success());
    }
    let recruiter = session_of(&server, local(1), "rec@example.com");
    let viewer = session_of(&server, local(1), "hm@example.com");
    let get = |path: &str, session: &str| {
        server.request_from(local(1), "GET", path, None, &[("Cookie", session)], None)
    };
    assert_eq!(
        get("/invite", &viewer).status,
        403,
        "a viewer cannot invite"
    );
    let page = get("/invite", &recruiter);
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("value=\"backend-developer\""),
        "the shipped job is offered"
    );
    let csrf = hidden(&page.text(), "csrf");
    let post_form = |fields: &[(&str, &str)]| {
        server.request_from(
            local(1),
            "POST",
            "/invite",
            None,
            &[
                ("Cookie", &recruiter),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            Some(form(fields)),
        )
    };

    let done = post_form(&[
        ("csrf", &csrf),
        ("job", "backend-developer"),
        ("name", "Ada Lovelace"),
        ("email", "ada@example.com"),
    ]);
    assert_eq!(done.status, 200, "{}", done.text());
    let html = done.text();
    assert!(html.contains("Ada Lovelace is invited"), "{html}");
    let pin = hidden_text(&html, "<strong class=\"pin\">", "</strong>");
    assert_eq!(pin.len(), 10, "a 10-digit PIN: {pin}");
    assert!(
        html.contains("&#x2f;join&#x2f;"),
        "the link is shown (escaped: {html})"
    );

    let empty = post_form(&[("csrf", &csrf), ("job", "backend-developer"), ("name", " ")]);
    assert_eq!(empty.status, 400);
    assert!(
        empty
            .text()
            .contains("class=\"field-error\">must not be empty"),
        "{}",
        empty.text()
    );
    let escape = post_form(&[
        ("csrf", &csrf),
        ("job", "../../etc/passwd"),
        ("name", "Eve"),
    ]);
    assert_eq!(escape.status, 400, "a path is not a job name");
    let forged = post_form(&[("csrf", "x"), ("job", "backend-developer"), ("name", "Eve")]);
    assert_eq!(forged.status, 403);

    // A CSV file: good rows invited, bad rows listed with their row numbers.
    let long_name = "x".repeat(300);
    let file = format!(
        "Name,Email,Phone\nGrace Hopper,grace@example.com,\n,nobody@example.com,\n\
         Linus,not-an-email,\n{long_name},,\nBarbara Liskov,,sip:barbara@192.0.2.1\n"
    );
    let (content_type, body) = multipart(&[("csrf", &csrf), ("job", "backend-developer")], &file);
    let bulk = server.request_from(
        local(1),
        "POST",
        "/invite/csv",
        None,
        &[("Cookie", &recruiter), ("Content-Type", &content_type)],
        Some(body),
    );
    assert_eq!(bulk.status, 200, "{}", bulk.text());
    let html = bulk.text();
    assert!(
        html.contains("<strong>2</strong> invited, <strong>3</strong> rows"),
        "{html}"
    );
    for row in [
        "Row 3: candidate.name must not be empty",
        "Row 4: candidate.email",
        "Row 5: candidate.name must be at most",
    ] {
        assert!(html.contains(row), "{row} in {html}");
    }
    let listed = server.get("/api/v1/interviews").json();
    let names: Vec<&str> = listed["interviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["candidate"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.contains(&"Barbara Liskov") && names.contains(&"Grace Hopper"));

    // A file without the CSRF token invites nobody.
    let (content_type, body) = multipart(&[("csrf", "x"), ("job", "backend-developer")], &file);
    let forged = server.request_from(
        local(1),
        "POST",
        "/invite/csv",
        None,
        &[("Cookie", &recruiter), ("Content-Type", &content_type)],
        Some(body),
    );
    assert_eq!(forged.status, 403);
}

/// The text between `start` and the next `end` in a page.
fn hidden_text(page: &str, start: &str, end: &str) -> String {
    let from = page
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {page}"))
        + start.len();
    page[from..from + page[from..].find(end).unwrap()].to_owned()
}

/// A signed-in browser for the tests below: its session cookie and CSRF token.
struct Browser<'a> {
    server: &'a TestServer,
    cookie: String,
    csrf: String,
}

impl<'a> Browser<'a> {
    fn sign_in(server: &'a TestServer, email: &str) -> Browser<'a> {
        let cookie = session_of(server, local(1), email);
        let mut browser = Browser {
            server,
            cookie,
            csrf: String::new(),
        };
        browser.csrf = hidden(&browser.get("/settings/keys").text(), "csrf");
        browser
    }

    fn get(&self, path: &str) -> Reply {
        self.server.request_from(
            local(1),
            "GET",
            path,
            None,
            &[("Cookie", &self.cookie)],
            None,
        )
    }

    /// Posts `fields` and this session's CSRF token.
    fn post(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let mut fields = fields.to_vec();
        fields.push(("csrf", &self.csrf));
        self.post_raw(path, &fields)
    }

    /// Posts exactly `fields`.
    fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        self.server.request_from(
            local(1),
            "POST",
            path,
            None,
            &[
                ("Cookie", &self.cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            Some(form(fields)),
        )
    }

    /// Makes an API key named `name`; returns its text, shown this once.
    fn new_key(&self, name: &str) -> String {
        let made = self.post("/settings/keys", &[("name", name)]);
        assert_eq!(made.status, 201, "{}", made.text());
        hidden_text(&made.text(), "id=\"new-key\" value=\"", "\"")
    }
}

/// The id of the account `email` on the users page.
fn user_id(users_page: &str, email: &str) -> String {
    let row = &users_page[..users_page.find(&format!("<td>{email}")).unwrap()];
    let at = row.rfind("data-user-id=\"").unwrap();
    hidden_text(&row[at..], "data-user-id=\"", "\"")
}

#[test]
fn admins_manage_accounts_and_everyone_their_api_keys() {
    let server = TestServer::start("workspace-settings", &[]);
    assert!(
        server
            .add_user("admin@example.com", "admin", PASSWORD)
            .status
            .success()
    );
    let admin = Browser::sign_in(&server, "admin@example.com");
    assert_eq!(admin.get("/settings/users").status, 200);

    // Accounts are added in the browser, with the same checks as `viva user add`.
    let short = admin.post(
        "/settings/users",
        &[
            ("email", "rec@example.com"),
            ("password", "short"),
            ("role", "recruiter"),
        ],
    );
    assert_eq!(short.status, 400);
    assert!(short.text().contains("at least 10 characters"));
    for (email, role) in [
        ("rec@example.com", "recruiter"),
        ("hm@example.com", "viewer"),
    ] {
        let added = admin.post(
            "/settings/users",
            &[("email", email), ("password", PASSWORD), ("role", role)],
        );
        assert_eq!(added.status, 200, "{}", added.text());
        assert!(added.text().contains(&format!("{email} can now sign in")));
    }
    let taken = admin.post(
        "/settings/users",
        &[
            ("email", "REC@example.com"),
            ("password", PASSWORD),
            ("role", "admin"),
        ],
    );
    assert!(taken.text().contains("already has an account"));
    let forged = admin.post_raw(
        "/settings/users",
        &[
            ("email", "eve@example.com"),
            ("password", PASSWORD),
            ("role", "admin"),
            ("csrf", "x"),
        ],
    );
    assert_eq!(forged.status, 403, "no account without the CSRF token");

    let recruiter = Browser::sign_in(&server, "rec@example.com");
    let viewer = Browser::sign_in(&server, "hm@example.com");
    assert_eq!(recruiter.get("/settings/users").status, 403);
    let promoted = recruiter.post(
        "/settings/users",
        &[
            ("email", "eve@example.com"),
            ("password", PASSWORD),
            ("role", "admin"),
        ],
    );
    assert_eq!(promoted.status, 403, "only admins add accounts");

    // Personal keys act with their owner's role; the text is shown once.
    let rec_key = recruiter.new_key("ATS <b>sync</b>");
    assert!(rec_key.starts_with("viva_"), "{rec_key}");
    let keys_page = recruiter.get("/settings/keys").text();
    assert!(!keys_page.contains(&rec_key), "the key is not shown again");
    assert!(keys_page.contains("ATS &lt;b&gt;sync"), "names are text");
    let create = |key: &str, name: &str| {
        server.request(
            "POST",
            "/api/v1/interviews",
            Some(key),
            &[],
            Some(
                serde_json::json!({"job": "backend-developer", "candidate": {"name": name}})
                    .to_string(),
            ),
        )
    };
    assert_eq!(create(&rec_key, "Ada").status, 201);
    let view_key = viewer.new_key("reports");
    assert_eq!(
        server
            .request("GET", "/api/v1/interviews", Some(&view_key), &[], None)
            .status,
        200
    );
    let refused = create(&view_key, "Grace");
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(refused.error_code(), "forbidden");
    // Keys are bounded per account (two live already: this one and the viewer's are apart).
    for n in 1..20 {
        assert_eq!(
            recruiter
                .post("/settings/keys", &[("name", &format!("k{n}"))])
                .status,
            201
        );
    }
    assert_eq!(
        recruiter
            .post("/settings/keys", &[("name", "one too many")])
            .status,
        409
    );
    // A near miss of a real key opens nothing.
    let mut wrong = rec_key.clone();
    wrong.replace_range(
        wrong.len() - 1..,
        if rec_key.ends_with('A') { "B" } else { "A" },
    );
    assert_eq!(create(&wrong, "Eve").status, 401);

    // A role change applies to the owner's keys at once.
    let users = admin.get("/settings/users").text();
    let hm = user_id(&users, "hm@example.com");
    let changed = admin.post(
        &format!("/settings/users/{hm}/role"),
        &[("role", "recruiter")],
    );
    assert_eq!(changed.status, 303, "{}", changed.text());
    assert_eq!(create(&view_key, "Grace").status, 201);

    // Revoked by its owner; another user cannot revoke it; an admin sees everyone's.
    let rec_key_id = rec_key.split('_').nth(1).unwrap().to_owned();
    assert_eq!(
        viewer
            .post(&format!("/settings/keys/{rec_key_id}/revoke"), &[])
            .status,
        404
    );
    assert!(
        admin
            .get("/settings/keys")
            .text()
            .contains("rec@example.com")
    );
    assert_eq!(
        recruiter
            .post(&format!("/settings/keys/{rec_key_id}/revoke"), &[])
            .status,
        303
    );
    let revoked = create(&rec_key, "Ada");
    assert_eq!(revoked.status, 401);

    // A disabled account signs nobody in and its keys stop at once.
    assert_eq!(
        admin
            .post(&format!("/settings/users/{hm}/disable"), &[])
            .status,
        303
    );
    assert_eq!(create(&view_key, "Grace").status, 401);
    assert_eq!(viewer.get("/").status, 303, "the session ended");
    let again = sign_in(&server, local(1), "hm@example.com", PASSWORD);
    assert_eq!(again.status, 401);
    // Nobody disables or demotes themselves (there must always be an admin).
    let me = user_id(&users, "admin@example.com");
    assert_eq!(
        admin
            .post(&format!("/settings/users/{me}/disable"), &[])
            .status,
        400
    );
    // The deployment's key is still an admin key.
    assert_eq!(server.schedule("Linus")["status"], "scheduled");
}

#[test]
fn the_list_filters_searches_sorts_and_follows_live_calls() {
    let server = TestServer::start("workspace-list", &[]);
    assert!(
        server
            .add_user("hm@example.com", "viewer", PASSWORD)
            .status
            .success()
    );
    for name in ["Ada Lovelace", "Grace Hopper", "Alan 100%_Turing"] {
        server.schedule(name);
    }
    let viewer = Browser::sign_in(&server, "hm@example.com");
    let names_in = |path: &str| -> Vec<String> {
        let page = viewer.get(path);
        assert_eq!(page.status, 200, "{path}: {}", page.text());
        let html = page.text();
        html.match_indices("<tr data-id=")
            .map(|(at, _)| {
                let link = hidden_text(&html[at..], "<a href=\"/interviews/", "</a>");
                link.split_once("\">").unwrap().1.to_owned()
            })
            .collect()
    };
    assert_eq!(
        names_in("/"),
        ["Alan 100%_Turing", "Grace Hopper", "Ada Lovelace"],
        "newest first"
    );
    assert_eq!(names_in("/?q=LOVE"), ["Ada Lovelace"]);
    assert_eq!(
        names_in("/?q=0%25_t"),
        ["Alan 100%_Turing"],
        "% and _ are letters"
    );
    assert_eq!(
        names_in("/?sort=candidate"),
        ["Ada Lovelace", "Alan 100%_Turing", "Grace Hopper"]
    );
    assert!(names_in("/?status=completed&job=backend-developer").is_empty());
    assert!(
        viewer
            .get("/?status=completed")
            .text()
            .contains("No interviews match")
    );
    assert_eq!(names_in("/?decision=none&status=scheduled").len(), 3);
    // Values no form offers are ignored, not errors.
    assert_eq!(
        names_in("/?status=%27%20OR%201=1--&sort=nope&from=never").len(),
        3
    );
    // Scheduled calls may start while the list is open: the page follows them.
    assert!(viewer.get("/").text().contains("data-live"));
}

#[test]
fn every_route_checks_the_session_the_role_and_the_form_token() {
    let server = TestServer::start("workspace-routes", &[]);
    for (email, role) in [
        ("admin@example.com", "admin"),
        ("rec@example.com", "recruiter"),
        ("hm@example.com", "viewer"),
    ] {
        assert!(server.add_user(email, role, PASSWORD).status.success());
    }
    let id = server.schedule("Ada")["id"].as_str().unwrap().to_owned();
    let admin = Browser::sign_in(&server, "admin@example.com");
    let recruiter = Browser::sign_in(&server, "rec@example.com");
    let viewer = Browser::sign_in(&server, "hm@example.com");
    let users = admin.get("/settings/users").text();
    let rec = user_id(&users, "rec@example.com");
    let key_id = recruiter.new_key("k").split('_').nth(1).unwrap().to_owned();

    // (method, path, the least role it needs)
    let routes: Vec<(&str, String, &str)> = vec![
        ("GET", "/".into(), "viewer"),
        ("GET", format!("/interviews/{id}"), "viewer"),
        ("GET", "/compare?job=backend-developer".into(), "viewer"),
        ("GET", "/settings/keys".into(), "viewer"),
        ("GET", "/invite".into(), "recruiter"),
        ("GET", "/settings/users".into(), "admin"),
        ("POST", format!("/interviews/{id}/decision"), "recruiter"),
        ("POST", format!("/interviews/{id}/dial"), "recruiter"),
        ("POST", "/invite".into(), "recruiter"),
        ("POST", "/settings/keys".into(), "viewer"),
        ("POST", format!("/settings/keys/{key_id}/revoke"), "viewer"),
        ("POST", "/settings/users".into(), "admin"),
        ("POST", format!("/settings/users/{rec}/role"), "admin"),
        ("POST", format!("/settings/users/{rec}/disable"), "admin"),
        ("POST", "/logout".into(), "viewer"),
    ];
    let rank = |role: &str| {
        ["viewer", "recruiter", "admin"]
            .iter()
            .position(|r| *r == role)
    };
    for (method, path, needed) in &routes {
        // No session: sent to sign in, nothing done.
        let anonymous = server.request_from(local(2), method, path, None, &[], None);
        assert_eq!(anonymous.status, 303, "{method} {path} without a session");
        assert!(anonymous.header("location").unwrap().starts_with("/login"));
        for (browser, role) in [(&viewer, "viewer"), (&recruiter, "recruiter")] {
            if rank(role) >= rank(needed) {
                continue;
            }
            let reply = if *method == "GET" {
                browser.get(path)
            } else {
                browser.post(path, &[("role", "admin"), ("decision", "advance")])
            };
            assert_eq!(reply.status, 403, "{method} {path} as a {role}");
        }
        if *method == "POST" {
            // The right role but no form token: refused before anything happens.
            let reply = admin.post_raw(path, &[("role", "viewer"), ("decision", "advance")]);
            assert_eq!(reply.status, 403, "{method} {path} without the CSRF token");
        }
    }
    // Pages run only their own scripts and are never framed by another site.
    for page in [
        admin.get("/"),
        admin.get(&format!("/interviews/{id}")),
        admin.get("/invite"),
        admin.get("/compare?job=backend-developer"),
        admin.get("/jobs"),
        admin.get("/jobs/backend-developer"),
        admin.get("/jobs/new"),
        admin.get("/settings/users"),
        admin.get("/settings/keys"),
        admin.get("/settings/webhooks"),
        server.request_from(local(2), "GET", "/login", None, &[], None),
    ] {
        assert_eq!(page.status, 200, "{}", page.text());
        let policy = page.header("content-security-policy").unwrap_or_default();
        assert!(
            policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"),
            "{policy}"
        );
        assert!(!page.text().contains("<script>"), "no inline script");
    }

    // Nothing above changed anything.
    assert!(admin.get("/settings/users").text().contains("recruiter"));
    assert!(
        !admin
            .get(&format!("/interviews/{id}"))
            .text()
            .contains("verdict-tag advance")
    );

    // The API: no key, a wrong key, a session cookie for a change: refused.
    for (method, path) in [
        ("GET", "/api/v1/interviews".to_owned()),
        ("POST", "/api/v1/interviews".to_owned()),
        ("GET", format!("/api/v1/interviews/{id}")),
        ("GET", format!("/api/v1/interviews/{id}/transcript")),
        ("GET", format!("/api/v1/interviews/{id}/report")),
        ("GET", format!("/api/v1/interviews/{id}/recording")),
        ("GET", format!("/api/v1/interviews/{id}/video")),
        ("POST", format!("/api/v1/interviews/{id}/dial")),
    ] {
        assert_eq!(
            server
                .request_from(local(3), method, &path, None, &[], None)
                .status,
            401,
            "{method} {path} without a key"
        );
        if method == "POST" {
            let cookie_only = server.request_from(
                local(3),
                method,
                &path,
                None,
                &[
                    ("Cookie", &admin.cookie),
                    ("Content-Type", "application/json"),
                ],
                Some("{}".to_owned()),
            );
            assert_eq!(
                cookie_only.status, 401,
                "{path}: a cookie alone changes nothing"
            );
        }
    }
}
