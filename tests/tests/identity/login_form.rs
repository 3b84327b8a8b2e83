//! `/web/login`: a plain HTML form with a CSRF token, Odoo's messages, a new session id at
//! login, and a `redirect` that never leaves the site.

use super::support::{csrf_of, Site};

#[test]
fn the_form_logs_in_with_csrf_and_a_fresh_session_id() {
    let site = Site::start("idform", &[]);
    let mut c = site.client("10.3.0.1");
    let page = c.get("/web/login");
    assert_eq!(page.status, 200);
    let html = page.text();
    for field in [
        r#"<form method="post" action="/web/login">"#,
        r#"<label for="login">"#,
        r#"<input type="text" id="login" name="login""#,
        r#"<label for="password">"#,
        r#"<input type="password" id="password" name="password""#,
        r#"name="redirect""#,
    ] {
        assert!(html.contains(field), "{field} missing:\n{html}");
    }
    assert!(
        !html.contains("name=\"db\""),
        "one database: no database field"
    );
    assert!(!html.contains("<script"), "no JavaScript needed");
    assert_eq!(page.header("x-frame-options"), Some("SAMEORIGIN"));
    let token = csrf_of(&html);
    let sid_before = c.cookie.clone();
    assert!(sid_before.is_some(), "the form's session has its cookie");

    // No CSRF token, or a wrong one: 400, and no login.
    let refused = c.post_form(
        "/web/login",
        &[("login", "admin"), ("password", "admin-pw")],
    );
    assert_eq!(refused.status, 400);
    assert!(refused
        .text()
        .contains("Session expired (invalid CSRF token)"));
    let refused = c.post_form(
        "/web/login",
        &[
            ("csrf_token", "0123abcdo9999999999"),
            ("login", "admin"),
            ("password", "admin-pw"),
        ],
    );
    assert_eq!(refused.status, 400);

    // Wrong credentials: the form again, Odoo's message, 200.
    let wrong = c.post_form(
        "/web/login",
        &[
            ("csrf_token", &token),
            ("login", "admin"),
            ("password", "nope"),
        ],
    );
    assert_eq!(wrong.status, 200);
    assert!(
        wrong.text().contains("Wrong login/password"),
        "{}",
        wrong.text()
    );
    assert!(
        wrong.text().contains(r#"value="admin""#),
        "the login is kept"
    );

    let ok = c.post_form(
        "/web/login",
        &[
            ("csrf_token", &token),
            ("login", "admin"),
            ("password", "admin-pw"),
            ("redirect", ""),
        ],
    );
    assert_eq!(ok.status, 303, "{}", ok.text());
    assert_eq!(ok.header("location"), Some("/web"));
    assert!(
        c.cookie.is_some() && c.cookie != sid_before,
        "no session fixation"
    );
    let home = c.get("/web");
    assert_eq!(home.status, 200);
    assert!(home.text().contains("<span id=\"user_login\">admin</span>"));

    // Logout, then the auth = "user" page sends to the login page again.
    assert_eq!(c.get("/web/session/logout").status, 303);
    assert_eq!(c.get("/web").status, 303);
}

#[test]
fn the_redirect_parameter_cannot_leave_the_site() {
    let site = Site::start("idredirect", &[]);
    for (evil, expected) in [
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/web?x=1", "/web?x=1"),
        ("/web?debug=1", "/web?debug=1"),
    ] {
        let mut c = site.client("10.3.0.2");
        let page = c.get("/web/login");
        let token = csrf_of(&page.text());
        let resp = c.post_form(
            "/web/login",
            &[
                ("csrf_token", &token),
                ("login", "admin"),
                ("password", "admin-pw"),
                ("redirect", evil),
            ],
        );
        assert_eq!(resp.status, 303, "{evil}: {}", resp.text());
        let location = resp.header("location").unwrap_or("").to_owned();
        assert_eq!(location, expected, "{evil}");
        assert!(
            location.starts_with('/') && !location.starts_with("//"),
            "{evil} -> {location}"
        );
        // Already logged in, GET with a redirect goes there (made local) at once.
        let again = c.get(&format!(
            "/web/login?redirect={}",
            super::support::encode(evil)
        ));
        assert_eq!(again.status, 303);
        assert_eq!(again.header("location"), Some(expected), "{evil}");
    }
}

#[test]
fn csrf_tokens_and_sessions_are_keyed_by_the_database_secret() {
    let mut site = Site::start("idsecret", &[]);
    let mut c = site.client("10.3.0.3");
    let token = csrf_of(&c.get("/web/login").text());
    assert_eq!(
        c.authenticate(&site.db.name, "admin", "admin-pw")["result"]["uid"],
        2
    );
    assert_eq!(c.get("/web").status, 200);
    let login_page = c.get("/web/login");
    let token_logged_in = csrf_of(&login_page.text());
    assert_ne!(token, "");

    // A new database.secret (as a restore "as a copy" makes): every CSRF token and session
    // of the database is void.
    site.db.sql(
        "UPDATE ir_config_parameter SET value = 'another secret' WHERE key = 'database.secret'",
    );
    site.server.stop(std::time::Duration::from_secs(10));
    let data = site.td.join("data");
    let mut args = inphms_tests::pg::server_args();
    args.extend(
        [
            "-d",
            &site.db.name,
            "-D",
            data.to_str().expect("UTF-8"),
            "--proxy-mode",
            "--proxy-trusted=127.0.0.1/32",
        ]
        .map(String::from),
    );
    site.server = site
        .td
        .server(args)
        .env(super::support::WEAK_ROUNDS_ENV, "1")
        .start_healthy();
    c.port = site.port();
    let refused = c.post_form(
        "/web/login",
        &[
            ("csrf_token", &token_logged_in),
            ("login", "admin"),
            ("password", "admin-pw"),
        ],
    );
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(c.get("/web").status, 303, "the session's token is void too");
}

#[test]
fn with_several_databases_the_form_chooses_one_and_shows_it() {
    let td = inphms_tests::TestDir::new();
    let (one, two) = (
        inphms_tests::pg::TestDb::new("idmulti1"),
        inphms_tests::pg::TestDb::new("idmulti2"),
    );
    let data = td.join("data");
    let mut args = inphms_tests::pg::server_args();
    let both = format!("{},{}", one.name, two.name);
    args.extend(["-d", &both, "-D", data.to_str().expect("UTF-8")].map(String::from));
    let server = td
        .server(args)
        .start_timeout(std::time::Duration::from_secs(180))
        .start_healthy();
    let mut c = super::support::Client {
        port: server.port(),
        addr: "10.3.0.4".into(),
        cookie: None,
    };
    // No database chosen: the selector (Odoo's ensure_db), its links choosing one.
    let page = c.get("/web/login?redirect=%2Fweb");
    assert_eq!(page.status, 303);
    assert_eq!(page.header("location"), Some("/web/database/selector"));
    let page = c.get("/web/database/selector");
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(!html.contains("<form"), "{html}");
    let link = format!("/web/login?db={}", two.name);
    assert!(html.contains(&link), "{link} missing:\n{html}");
    // Chosen: the form shows the database, read-only, and logs in there.
    let page = c.get(&format!("/web/login?db={}&redirect=%2Fweb", two.name));
    let html = page.text();
    assert!(
        html.contains(&format!(r#"name="db" value="{}" readonly"#, two.name)),
        "{html}"
    );
    let token = csrf_of(&html);
    let ok = c.post_form(
        "/web/login",
        &[
            ("csrf_token", &token),
            ("login", "admin"),
            ("password", "admin"),
            ("redirect", "/web"),
        ],
    );
    assert_eq!(ok.status, 303, "{}", ok.text());
    let home = c.get("/web");
    assert!(
        home.text()
            .contains(&format!("<span id=\"db\">{}</span>", two.name)),
        "{}",
        home.text()
    );
}
