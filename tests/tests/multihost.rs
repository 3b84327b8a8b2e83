//! Several hosts on one PostgreSQL behind a real nginx (issue 21): three hosts on loopback
//! with `session_store = postgresql` ([`inphms_tests::cluster`]).
//!
//! - A login through nginx lands on one host; the next requests, spread by nginx over A, B
//!   and C, all see the session; the host the login landed on is killed with SIGKILL under
//!   load, nginx's retries go to the others and the user stays logged in.
//! - 300 due cron jobs with the three hosts running cron: each runs exactly once.
//! - `-u test_swap` (whose new build adds a route) run with host A's configuration: B and C
//!   serve the new route within 1 s, without a restart (registry signaling).
//!
//! The tests run one at a time (three hosts each, on 2 cores).

use inphms_tests::cluster::{Cluster, ClusterOptions};
use inphms_tests::swap::{install_swap_lib, swap_build};
use inphms_tests::{http_get, wait_until, with_test_addons};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static ALONE: Mutex<()> = Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ALONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// `GET /web` through nginx with the session `sid`: the host that answered and whether the
/// answer is the logged-in page (an error: nginx or the connection failed).
fn web_page(port: u16, sid: &str) -> Result<(u16, bool, String), String> {
    let cookie = format!("session_id={sid}");
    let resp = inphms_test_support::http::send(
        port,
        "GET",
        "/web",
        &[("Cookie", &cookie)],
        b"",
        Duration::from_secs(30),
    )
    .map_err(|e| e.to_string())?;
    let upstream = resp.header("x-upstream").unwrap_or("").to_owned();
    let logged_in = resp.status == 200 && resp.text().contains("Logged in as");
    Ok((resp.status, logged_in, upstream))
}

#[test]
fn a_session_is_seen_by_every_host_and_survives_its_host_killed_under_load() {
    let _alone = alone();
    let mut c = Cluster::start("mh_sessions", ClusterOptions::new(3, with_test_addons(&[])));
    // The login, through nginx.
    let (resp, uid, sid) = c.login("admin", "admin");
    let login_host = c
        .answered_by(&resp)
        .map(|h| h.name)
        .unwrap_or_else(|| panic!("no X-Upstream: {:?}", resp.headers));
    assert_eq!(
        c.db.sql(&format!(
            "SELECT count(*) FROM inphms_session WHERE id = '{sid}'"
        )),
        "1",
        "the login's session is a row of the shared table"
    );

    // The next requests, spread by nginx: every host sees the session.
    let mut seen = BTreeSet::new();
    for _ in 0..12 {
        let resp = c.get("/web", &[("Cookie", &format!("session_id={sid}"))]);
        assert_eq!(resp.status, 200, "{}\n{}", resp.text(), c.logs());
        assert!(resp.text().contains("Logged in as"), "{}", resp.text());
        seen.insert(c.answered_by(&resp).expect("X-Upstream").name);
    }
    assert_eq!(
        seen,
        BTreeSet::from(["a", "b", "c"]),
        "nginx spread the requests"
    );

    // Load: 4 clients without pause; the login's host killed among it.
    let stop = Arc::new(AtomicBool::new(false));
    let results = Arc::new(Mutex::new(Vec::new()));
    let port = c.nginx.port();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, results, sid) = (Arc::clone(&stop), Arc::clone(&results), sid.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let r = web_page(port, &sid);
                    results.lock().unwrap().push((Instant::now(), r));
                }
            })
        })
        .collect();
    assert!(wait_until(Duration::from_secs(30), || results
        .lock()
        .unwrap()
        .len()
        >= 20));
    let victim = c
        .hosts
        .iter()
        .position(|h| h.name == login_host)
        .expect("host");
    let killed_addr = c.hosts[victim].addr();
    c.hosts[victim].kill();
    let killed_at = Instant::now();
    // Well past nginx noticing (its first failed attempt), and many requests after.
    let after = || {
        results
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| *t > killed_at)
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(60), || after() >= 100),
        "only {} answers after the kill\n{}",
        after(),
        c.logs()
    );
    stop.store(true, Ordering::Relaxed);
    for t in clients {
        t.join().expect("client");
    }
    let results = results.lock().unwrap();
    let mut retried = 0;
    let mut hosts_after = BTreeSet::new();
    for (at, r) in results.iter() {
        let (status, logged_in, upstream) = r
            .clone()
            .unwrap_or_else(|e| panic!("a request failed: {e}\n{}", c.logs()));
        assert!(
            logged_in,
            "status {status} not logged in (upstream {upstream})\n{}",
            c.logs()
        );
        if upstream.contains(',') {
            retried += 1;
        }
        if *at > killed_at {
            let last = upstream.rsplit(',').next().unwrap_or("").trim().to_owned();
            hosts_after.insert(last);
        }
    }
    assert!(
        !hosts_after.contains(&killed_addr),
        "answered by the killed host after its death: {hosts_after:?}"
    );
    assert_eq!(
        hosts_after.len(),
        2,
        "the two others answered: {hosts_after:?}"
    );
    eprintln!(
        "{} requests, {} after SIGKILL of host {login_host}; {retried} retried by nginx",
        results.len(),
        results.iter().filter(|(t, _)| *t > killed_at).count()
    );
    // Still logged in, as the same user, through the hosts left.
    let info = c.send(
        "POST",
        "/web/session/get_session_info",
        &[
            ("Content-Type", "application/json"),
            ("Cookie", &format!("session_id={sid}")),
        ],
        br#"{"jsonrpc": "2.0", "method": "call", "id": 2, "params": {}}"#,
    );
    let info: Value = serde_json::from_slice(&info.body).expect("JSON");
    assert_eq!(info["result"]["uid"].as_i64(), Some(uid), "{info}");
}

#[test]
fn three_hosts_running_cron_run_each_of_300_due_jobs_exactly_once() {
    let _alone = alone();
    let mut options = ClusterOptions::new(3, with_test_addons(&[]));
    options.install = vec!["test_db".into()];
    options.cron_threads = 2;
    let c = Cluster::start("mh_cron", options);
    let db = &c.db;
    db.sql(
        "INSERT INTO ir_cron (cron_name, handler, interval_number, interval_type, nextcall) \
         SELECT 'job ' || n, 'test_db.write_row', 1, 'days', now() AT TIME ZONE 'UTC' - interval '3 days' \
         FROM generate_series(1, 300) n",
    );
    inphms_tests::pg::psql(
        "postgres",
        &format!("SELECT pg_notify('cron_trigger', '{}')", db.name),
    );
    let done = || {
        db.sql(
            "SELECT count(*) FROM ir_cron WHERE cron_name LIKE 'job %' AND last_outcome = 'done'",
        )
    };
    assert!(
        wait_until(Duration::from_secs(120), || done() == "300"),
        "{} of 300 done\n{}",
        done(),
        c.logs()
    );
    // Let a duplicate show up if there were one: wake every worker again, then a quiet
    // second (a pass over 300 rows takes far less).
    inphms_tests::pg::psql(
        "postgres",
        &format!("SELECT pg_notify('cron_trigger', '{}')", db.name),
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        db.sql("SELECT count(*) FROM test_db_cron_log WHERE job_name LIKE 'job %'"),
        "300"
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM (SELECT job_id FROM test_db_cron_log WHERE job_name LIKE 'job %' GROUP BY job_id HAVING count(*) <> 1) d"),
        "0"
    );
    let sessions =
        db.sql("SELECT count(DISTINCT pid) FROM test_db_cron_log WHERE job_name LIKE 'job %'");
    eprintln!("300 jobs ran on {sessions} database session(s) of 3 hosts");
}

#[test]
fn an_upgrade_through_host_a_adds_its_route_on_b_and_c_within_a_second() {
    let _alone = alone();
    let td_addons = tempfile::tempdir().expect("a folder");
    let addons = td_addons.path().join("addons");
    install_swap_lib(&addons, &swap_build("v1"));
    let mut options = ClusterOptions::new(3, with_test_addons(&[&addons]));
    options.install = vec!["test_swap".into()];
    let c = Cluster::start("mh_upgrade", options);
    for h in &c.hosts {
        assert_eq!(http_get(h.port(), "/test_swap/version", &[]).text(), "v1");
        assert_eq!(http_get(h.port(), "/test_swap/added", &[]).status, 404);
    }
    // The new build, then `-u` through host A's configuration (a one-shot process).
    install_swap_lib(&addons, &swap_build("v2"));
    let out = c.run_with_config(0, &["-u", "test_swap", "--stop-after-init"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("registry change signaled"), "{out}");
    let upgraded = Instant::now();
    // B and C polled at once, each timed from the end of the upgrade.
    let waits: Vec<_> = c.hosts[1..]
        .iter()
        .map(|h| {
            let port = h.port();
            std::thread::spawn(move || {
                let served = wait_until(Duration::from_secs(5), || {
                    http_get(port, "/test_swap/added", &[]).status == 200
                });
                (served, upgraded.elapsed())
            })
        })
        .collect();
    for (h, wait) in c.hosts[1..].iter().zip(waits) {
        let (served, took) = wait.join().expect("poller");
        assert!(
            served,
            "host {} never served the route\n{}",
            h.name,
            c.logs()
        );
        assert!(
            took < Duration::from_secs(1),
            "host {} served the new route after {took:?}",
            h.name
        );
        assert_eq!(
            http_get(h.port(), "/test_swap/added", &[]).text(),
            "added in v2"
        );
        assert_eq!(http_get(h.port(), "/test_swap/version", &[]).text(), "v2");
        assert!(
            h.server()
                .stderr()
                .contains("Reloading the model registry after database signaling"),
            "{}",
            h.server().stderr()
        );
        eprintln!("host {}: the new route within {took:?}", h.name);
    }
    // And through nginx, whichever host answers.
    for _ in 0..6 {
        assert_eq!(c.get("/test_swap/added", &[]).status, 200);
    }
}

#[test]
fn a_host_whose_session_database_is_unreachable_answers_503_and_stays_up() {
    let td = inphms_tests::TestDir::new();
    // Nothing listens on port 1: the session store (and every database) is unreachable.
    let server = td
        .server([
            "--db_host=127.0.0.1",
            "--db_port=1",
            "--session-store=postgresql",
            &format!("--addons-path={}", with_test_addons(&[])),
        ])
        .start();
    // What needs no session is served.
    assert_eq!(http_get(server.port(), "/web/health", &[]).status, 200);
    // A session that cannot be read is not served as logged out: 503, to be retried.
    let cookie = format!("session_id={}", "A".repeat(84));
    for _ in 0..3 {
        let resp = http_get(server.port(), "/web", &[("Cookie", &cookie)]);
        assert_eq!(resp.status, 503, "{}", resp.text());
        assert_eq!(resp.header("retry-after"), Some("1"));
        assert!(
            resp.cookie("session_id").is_none(),
            "no new session handed out"
        );
    }
    assert!(
        server.wait_for_log(
            "session store unavailable: database postgres",
            Duration::from_secs(5)
        ),
        "{}",
        server.stderr()
    );
    assert_eq!(
        http_get(server.port(), "/web/health", &[]).status,
        200,
        "still up"
    );
}
