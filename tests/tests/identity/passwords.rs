//! Passwords: the admin a new database gets (and the warning while it keeps `admin`),
//! passlib interoperability both ways, legacy hashes upgraded at login, and the `users`
//! command (passwords read from stdin, never argv).

use super::support::{passlib, users_command, Site};
use inphms_tests::pg;
use std::time::Duration;

#[test]
fn a_new_database_has_admin_admin_and_a_warning_until_it_changes() {
    let site = Site::start_default("idadmin", &[]);
    assert!(
        site.server.wait_for_log(
            "still has the default password 'admin'",
            Duration::from_secs(10)
        ),
        "{}",
        site.server.stderr()
    );
    assert!(site
        .db
        .sql("SELECT password FROM res_users WHERE login = 'admin'")
        .starts_with("$pbkdf2-sha512$600000$"));
    // The public user exists and cannot log in; __system__ has no password.
    assert_eq!(
        site.db.sql("SELECT active::text || ':' || COALESCE(password, '-') FROM res_users WHERE login = 'public'"),
        "false:-"
    );
    let mut c = site.client("10.1.0.1");
    let answer = c.authenticate(&site.db.name, "admin", "admin");
    assert_eq!(answer["result"]["uid"], 2, "{answer}");
    for login in ["public", "__system__"] {
        let refused = c.authenticate(&site.db.name, login, "");
        assert_eq!(
            refused["error"]["data"]["name"], "odoo.exceptions.AccessDenied",
            "{refused}"
        );
    }

    // Changed from the command line: no warning at the next start.
    let out = site.users(&["passwd", "admin"], Some("a better one"));
    assert_eq!(out.code, Some(0), "{out}");
    let mut args = vec![
        "server".to_owned(),
        "--stop-after-init".into(),
        "-d".into(),
        site.db.name.clone(),
    ];
    args.extend(pg::server_args());
    let again = site.td.cmd(args).timeout(Duration::from_secs(120)).run();
    assert_eq!(again.code, Some(0), "{again}");
    assert!(!again.stderr.contains("default password"), "{again}");
}

#[test]
fn hashes_interoperate_with_passlib_and_legacy_ones_are_upgraded_at_login() {
    let site = Site::start("idpasslib", &[]);
    let db = &site.db;
    // A hash made by the host verifies in passlib.
    let out = site.users(&["add", "bob"], Some("pässwörd ✓"));
    assert_eq!(out.code, Some(0), "{out}");
    let host_hash = db.sql("SELECT password FROM res_users WHERE login = 'bob'");
    assert!(host_hash.starts_with("$pbkdf2-sha512$1000$"), "{host_hash}");
    assert_eq!(
        passlib(&format!(
            "from passlib.hash import pbkdf2_sha512 as h; print(h.verify('pässwörd ✓', '{host_hash}'), h.verify('other', '{host_hash}'))"
        )),
        "True False"
    );
    // A hash made by passlib verifies in the host; at the configured rounds it is kept.
    let passlib_hash = passlib(
        "from passlib.hash import pbkdf2_sha512 as h; print(h.using(rounds=1000).hash('from passlib'))",
    );
    db.sql(&format!(
        "UPDATE res_users SET password = '{passlib_hash}' WHERE login = 'bob'"
    ));
    let mut c = site.client("10.1.0.2");
    assert_eq!(
        c.authenticate(&db.name, "bob", "from passlib")["result"]["username"],
        "bob"
    );
    assert_eq!(
        db.sql("SELECT password FROM res_users WHERE login = 'bob'"),
        passlib_hash
    );

    // Other rounds (passlib's needs_update) and plaintext: replaced at the next login.
    let weaker = passlib(
        "from passlib.hash import pbkdf2_sha512 as h; print(h.using(rounds=500).hash('weaker'))",
    );
    db.sql(&format!(
        "UPDATE res_users SET password = '{weaker}' WHERE login = 'bob'"
    ));
    assert_eq!(
        c.authenticate(&db.name, "bob", "weaker")["result"]["username"],
        "bob"
    );
    let upgraded = db.sql("SELECT password FROM res_users WHERE login = 'bob'");
    assert!(upgraded.starts_with("$pbkdf2-sha512$1000$"), "{upgraded}");
    db.sql("UPDATE res_users SET password = 'plain text' WHERE login = 'bob'");
    assert_eq!(
        c.authenticate(&db.name, "bob", "plain text")["result"]["username"],
        "bob"
    );
    let rehashed = db.sql("SELECT password FROM res_users WHERE login = 'bob'");
    assert!(rehashed.starts_with("$pbkdf2-sha512$1000$"), "{rehashed}");
    assert_eq!(
        passlib(&format!(
            "from passlib.hash import pbkdf2_sha512 as h; print(h.verify('plain text', '{rehashed}'))"
        )),
        "True"
    );
    // The log never holds a password.
    let log = site.server.stderr();
    for secret in ["pässwörd", "from passlib", "weaker", "plain text"] {
        assert!(!log.contains(secret), "the log shows {secret:?}:\n{log}");
    }
}

#[test]
fn the_users_command_lists_adds_and_sets_passwords_from_stdin() {
    let site = Site::start("idcmd", &[]);
    let out = site.users(&["list"], None);
    assert_eq!(out.code, Some(0), "{out}");
    for expected in ["admin", "public", "__system__"] {
        assert!(out.stdout.contains(expected), "{out}");
    }
    let out = site.users(&["add", "carol", "--name", "Carol C"], Some("carol-pw"));
    assert_eq!(out.code, Some(0), "{out}");
    let mut c = site.client("10.1.0.3");
    let info = c.authenticate(&site.db.name, "carol", "carol-pw");
    assert_eq!(info["result"]["name"], "Carol C", "{info}");

    // An empty password is refused (and the transaction rolled back: the user stays as was).
    let before = site
        .db
        .sql("SELECT password FROM res_users WHERE login = 'carol'");
    let out = site.users(&["passwd", "carol"], Some("   "));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr
            .contains("Setting empty passwords is not allowed"),
        "{out}"
    );
    let out = site.users(&["passwd", "carol"], None);
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(
        site.db
            .sql("SELECT password FROM res_users WHERE login = 'carol'"),
        before
    );
    // A taken login, an unknown one, a missing database, an unknown option: clear errors.
    let out = site.users(&["add", "carol"], Some("x"));
    assert!(
        out.code == Some(1) && out.stderr.contains("The login 'carol' is already taken"),
        "{out}"
    );
    let out = site.users(&["passwd", "nobody"], Some("x"));
    assert!(
        out.code == Some(1) && out.stderr.contains("no user with login \"nobody\""),
        "{out}"
    );
    let out = users_command(&site.td, "", &["list"], None);
    assert_ne!(out.code, Some(0), "{out}");
    let out = site.users(&["passwd", "carol", "--password", "in-argv"], None);
    assert!(
        out.code == Some(2) && out.stderr.contains("unknown option '--password'"),
        "{out}"
    );
    // A failed add leaves no user behind (one transaction).
    let out = site.users(&["add", "dave"], Some(""));
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(
        site.db
            .sql("SELECT count(*) FROM res_users WHERE login = 'dave'"),
        "0"
    );
}
