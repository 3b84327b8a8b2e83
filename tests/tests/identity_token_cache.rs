//! The session-token cache (issue 19's benchmark line; Odoo's ormcache of
//! `_compute_session_token`) through the real binary, `base` and `web`, and the real
//! PostgreSQL: a logged-in request whose handler does not touch the database costs no
//! transaction once its user's row is cached (PostgreSQL's own `xact_commit` counter); a
//! password changed with `inphms-host users` still ends another live session at its next
//! request, on the host that cached the old row and on a second host on the same database,
//! which logs that signaling cleared its caches.

#[allow(dead_code)]
#[path = "identity/support.rs"]
mod support;

use inphms_tests::pg;
use serde_json::json;
use std::time::{Duration, Instant};
use support::{Client, Site, WEAK_ROUNDS_ENV};

/// What a host logs when the cache sequences moved (`modules::registry`).
const CLEARED: &str = "Invalidating caches after database signaling.";

/// `xact_commit` of `db` (read from the `postgres` database, so that reading it does not
/// count), once it stopped moving: a backend reports its counters when it goes idle, but
/// one that reported less than a second before (`PGSTAT_MIN_INTERVAL`) waits
/// `PGSTAT_IDLE_INTERVAL` (10 s in PostgreSQL 15 and later), so the value is read until it
/// held for longer than that.
fn settled_commits(db: &str) -> i64 {
    let read = || -> i64 {
        pg::psql(
            "postgres",
            &format!("SELECT xact_commit FROM pg_stat_database WHERE datname = '{db}'"),
        )
        .trim()
        .parse()
        .expect("xact_commit")
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = read();
    let mut since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = read();
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() > Duration::from_millis(11_000) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "xact_commit of {db} never settled"
        );
    }
}

/// `/web/session/check` (auth = "user", a handler without a query): `true` when answered
/// without an error.
fn checks(c: &mut Client) -> bool {
    let answer = c.rpc("/web/session/check", json!({}));
    answer.get("error").is_none()
}

#[test]
fn a_logged_in_request_that_reads_nothing_costs_no_transaction() {
    let site = Site::start("idtokcache_tx", &["--max-cron-threads=0"]);
    let mut c = site.client("10.7.0.1");
    assert_eq!(
        c.authenticate(&site.db.name, "admin", "admin-pw")["result"]["uid"],
        2
    );
    assert!(checks(&mut c), "logged in");

    let before = settled_commits(&site.db.name);
    let started = Instant::now();
    for _ in 0..1000 {
        assert!(checks(&mut c));
    }
    let took = started.elapsed();
    let after = settled_commits(&site.db.name);
    // The signaling check reads the sequences at most once per 100 ms (an autocommitted
    // statement each, counted once or twice by PostgreSQL with the statement's
    // preparation on a new connection); nothing else may reach the database: without the
    // cache, each check is one transaction (1000).
    let signaling = 2 * (took.as_millis() as i64 / 100 + 2);
    let spent = after - before;
    eprintln!("1000 logged-in checks: {spent} transactions in {took:?}");
    assert!(
        spent <= signaling.min(50),
        "1000 logged-in checks cost {spent} transactions in {took:?} (signaling reads at most {signaling})"
    );

    // The counter does count this host's transactions: 30 logins (each reads the user and
    // its password hash) cost at least one each.
    let before = settled_commits(&site.db.name);
    for _ in 0..30 {
        let mut fresh = site.client("10.7.0.2");
        let answer = fresh.authenticate(&site.db.name, "admin", "admin-pw");
        assert_eq!(answer["result"]["uid"], 2, "{answer}");
    }
    let after = settled_commits(&site.db.name);
    assert!(
        after - before >= 30,
        "30 logins cost {} transactions",
        after - before
    );
}

#[test]
fn a_password_changed_by_the_command_ends_cached_sessions_on_every_host() {
    let site = Site::start("idtokcache_pw", &[]);
    // A second host on the same database (its own data dir, so its own sessions).
    let data_b = site.td.join("data_b");
    let mut args: Vec<String> = pg::server_args();
    args.extend(
        [
            "-d",
            &site.db.name,
            "-D",
            data_b.to_str().expect("UTF-8 path"),
            "--proxy-mode",
            "--proxy-trusted=127.0.0.1/32",
        ]
        .map(String::from),
    );
    let host_b = site
        .td
        .server(args)
        .env(WEAK_ROUNDS_ENV, "1")
        .start_timeout(Duration::from_secs(120))
        .start_healthy();

    let mut on_a = site.client("10.7.1.1");
    let mut on_b = Client {
        port: host_b.port(),
        addr: "10.7.1.2".into(),
        cookie: None,
    };
    for c in [&mut on_a, &mut on_b] {
        assert_eq!(
            c.authenticate(&site.db.name, "admin", "admin-pw")["result"]["uid"],
            2
        );
        // Checked twice: the user's row is cached, the second check served from it.
        assert!(checks(c) && checks(c), "logged in");
    }
    assert!(!host_b.stderr().contains(CLEARED), "{}", host_b.stderr());

    let out = site.users(&["passwd", "admin"], Some("changed-pw"));
    assert_eq!(out.code, Some(0), "{out}");

    // The very next request of each session, on each host: expired (JSON-RPC code 100).
    for (name, c, host) in [("A", &mut on_a, &site.server), ("B", &mut on_b, &host_b)] {
        let answer = c.rpc("/web/session/check", json!({}));
        assert_eq!(answer["error"]["code"], 100, "host {name}: {answer}");
        assert!(
            host.stderr().contains(CLEARED),
            "host {name} logs that signaling cleared its caches: {}",
            host.stderr()
        );
    }

    // The new password logs in on both, and the sessions hold.
    for c in [&mut on_a, &mut on_b] {
        assert_eq!(
            c.authenticate(&site.db.name, "admin", "changed-pw")["result"]["uid"],
            2
        );
        assert!(checks(c) && checks(c));
    }
}
