//! Identity leftovers (issue 19) through the real binary, `base` and `web`, and the real
//! PostgreSQL: the default-password warning verifies the stored hash against `admin`
//! (whatever its salt), not the hash's text.

#[allow(dead_code)]
#[path = "identity/support.rs"]
mod support;

use inphms_tests::pg;
use std::time::Duration;
use support::Site;

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
