//! Login throttling (Odoo's `base.login_cooldown_after` / `_duration`): past five failures
//! from one address, attempts are refused with Odoo's message without checking the password
//! (no "Login failed" line: the check, and its hash, never ran); another address still logs
//! in; failures are logged with the address, login and database, never the password.

use super::support::Site;
use std::time::Duration;

const COOLDOWN: &str = "Too many login failures, please wait a bit before trying again.";

#[test]
fn six_failures_from_one_address_the_sixth_refused_without_a_check() {
    let site = Site::start("idthrottle", &[]);
    let db = site.db.name.clone();
    let mut attacker = site.client("10.4.0.66");
    for i in 0..5 {
        let denied = attacker.authenticate(&db, "admin", &format!("guess-{i}"));
        assert_eq!(
            denied["error"]["data"]["message"], "Access Denied",
            "{i}: {denied}"
        );
    }
    let failed_line = format!("Login failed for db:{db} login:admin from 10.4.0.66");
    assert!(
        site.server
            .wait_for_log(&failed_line, Duration::from_secs(5)),
        "{}",
        site.server.stderr()
    );
    // The sixth, even with the right password: refused at once.
    let sixth = attacker.authenticate(&db, "admin", "admin-pw");
    assert_eq!(
        sixth["error"]["data"]["name"], "odoo.exceptions.AccessDenied",
        "{sixth}"
    );
    assert_eq!(sixth["error"]["data"]["message"], COOLDOWN);
    assert!(site.server.wait_for_log(
        "Login attempt ignored for 10.4.0.66",
        Duration::from_secs(5)
    ));
    let log = site.server.stderr();
    assert_eq!(
        log.matches(&failed_line).count(),
        5,
        "the sixth was not checked:\n{log}"
    );
    assert!(!log.contains(&format!(
        "Login successful for db:{db} login:admin from 10.4.0.66"
    )));

    // Through the form: the same message, re-rendered with a 200.
    let page = attacker.get("/web/login");
    let token = super::support::csrf_of(&page.text());
    let form = attacker.post_form(
        "/web/login",
        &[
            ("csrf_token", &token),
            ("login", "admin"),
            ("password", "admin-pw"),
        ],
    );
    assert_eq!(form.status, 200);
    assert!(form.text().contains(COOLDOWN), "{}", form.text());

    // Another address is not affected.
    let mut user = site.client("10.4.0.7");
    assert_eq!(
        user.authenticate(&db, "admin", "admin-pw")["result"]["uid"],
        2
    );

    // Never a password in the log; each failure names address, login and database.
    let log = site.server.stderr();
    for i in 0..5 {
        assert!(!log.contains(&format!("guess-{i}")), "{log}");
    }
    assert!(!log.contains("admin-pw"), "{log}");
}

#[test]
fn the_cooldown_follows_its_parameters() {
    let site = Site::start("idthrottle2", &[]);
    let db = site.db.name.clone();
    site.db.sql(
        "INSERT INTO ir_config_parameter (key, value) VALUES \
         ('base.login_cooldown_after', '2'), ('base.login_cooldown_duration', '1')",
    );
    let mut c = site.client("10.4.1.1");
    for _ in 0..2 {
        assert_eq!(
            c.authenticate(&db, "admin", "bad")["error"]["data"]["message"],
            "Access Denied"
        );
    }
    assert_eq!(
        c.authenticate(&db, "admin", "admin-pw")["error"]["data"]["message"],
        COOLDOWN
    );
    // Past the duration (1 s), the right password works again.
    assert!(inphms_tests::wait_until(Duration::from_secs(5), || {
        c.authenticate(&db, "admin", "admin-pw")["result"]["uid"] == 2
    }));
    // 0 disables it.
    site.db
        .sql("UPDATE ir_config_parameter SET value = '0' WHERE key = 'base.login_cooldown_after'");
    for _ in 0..4 {
        assert_eq!(
            c.authenticate(&db, "admin", "bad")["error"]["data"]["message"],
            "Access Denied"
        );
    }
    assert_eq!(c.authenticate(&db, "admin", "admin-pw")["result"]["uid"], 2);
}
