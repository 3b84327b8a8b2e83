//! Identity leftovers (issue 19) through the real binary, `base` and `web`, and the real
//! PostgreSQL: `/web/session/authenticate` logs in to the database its params name (as
//! Odoo), whatever the request's; the default-password warning verifies the stored hash
//! against `admin` (whatever its salt), not the hash's text.

#[allow(dead_code)]
#[path = "identity/support.rs"]
mod support;

use inphms_tests::pg::{self, TestDb};
use serde_json::json;
use std::time::Duration;
use support::{users_command, Client, Site, WEAK_ROUNDS_ENV};

/// The warning the host logs at start while `admin`'s password is `admin`.
const WARNING: &str = "still has the default password 'admin'";

/// `server --stop-after-init -d DB` on the site's database: its log.
fn start_once(site: &Site) -> String {
    let mut args = vec![
        "server".to_owned(),
        "--stop-after-init".into(),
        "-d".into(),
        site.db.name.clone(),
    ];
    args.extend(pg::server_args());
    let out = site.td.cmd(args).timeout(Duration::from_secs(120)).run();
    assert_eq!(out.code, Some(0), "{out}");
    out.stderr
}

#[test]
fn the_default_password_warning_verifies_admin_whatever_the_salt() {
    let site = Site::start_default("idwarnsalt", &[]);
    assert!(
        site.server.wait_for_log(WARNING, Duration::from_secs(10)),
        "{}",
        site.server.stderr()
    );
    let first = site
        .db
        .sql("SELECT password FROM res_users WHERE login = 'admin'");

    // `admin` again, hashed with a new salt (same rounds): still the default password.
    let out = site.users(&["passwd", "admin"], Some("admin"));
    assert_eq!(out.code, Some(0), "{out}");
    let second = site
        .db
        .sql("SELECT password FROM res_users WHERE login = 'admin'");
    assert!(second.starts_with("$pbkdf2-sha512$600000$"), "{second}");
    assert_ne!(first, second, "the new hash has its own salt");
    let log = start_once(&site);
    assert!(log.contains(WARNING), "{log}");

    // Another password: no warning.
    let out = site.users(&["passwd", "admin"], Some("not the default"));
    assert_eq!(out.code, Some(0), "{out}");
    let log = start_once(&site);
    assert!(!log.contains("default password"), "{log}");
}

#[test]
fn authenticate_logs_in_to_the_database_it_names() {
    let td = inphms_tests::TestDir::new();
    let (a, b) = (TestDb::new("idauth_a"), TestDb::new("idauth_b"));
    let data = td.join("data");
    let mut args: Vec<String> = pg::server_args();
    args.extend(
        [
            "-d",
            &format!("{},{}", a.name, b.name),
            "-D",
            data.to_str().expect("UTF-8 path"),
            "--proxy-mode",
            "--proxy-trusted=127.0.0.1/32",
        ]
        .map(String::from),
    );
    let server = td
        .server(args)
        .env(WEAK_ROUNDS_ENV, "1")
        .start_timeout(Duration::from_secs(180))
        .start_healthy();
    // The second database's admin has another password than the first's (`admin`).
    let out = users_command(&td, &b.name, &["passwd", "admin"], Some("b-pw"));
    assert_eq!(out.code, Some(0), "{out}");

    let mut c = Client {
        port: server.port(),
        addr: "10.9.0.1".into(),
        cookie: None,
    };
    // Logged in to the first database: the session (and its requests) are bound to it.
    let first = c.authenticate(&a.name, "admin", "admin");
    assert_eq!(first["result"]["db"], a.name.as_str(), "{first}");

    // The first database's password does not open the second: its users are checked.
    let refused = c.authenticate(&b.name, "admin", "admin");
    assert_eq!(
        refused["error"]["data"]["name"], "odoo.exceptions.AccessDenied",
        "{refused}"
    );
    // From a request bound to the first database, logged in to the second.
    let second = c.authenticate(&b.name, "admin", "b-pw");
    assert_eq!(second["result"]["db"], b.name.as_str(), "{second}");
    assert_eq!(second["result"]["uid"], 2, "{second}");
    let info = c.rpc("/web/session/get_session_info", json!({}));
    assert_eq!(info["result"]["db"], b.name.as_str(), "{info}");
    assert_eq!(info["result"]["username"], "admin", "{info}");

    // A database that does not exist: Odoo's "Database not found.", the session kept.
    let missing = c.authenticate(&format!("{}_none", b.name), "admin", "b-pw");
    assert_eq!(
        missing["error"]["data"]["message"], "Database not found.",
        "{missing}"
    );
    let info = c.rpc("/web/session/get_session_info", json!({}));
    assert_eq!(info["result"]["db"], b.name.as_str(), "{info}");
}
