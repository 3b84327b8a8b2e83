//! The checks before an async route's handler on a database (the session token of a
//! logged-in session whose user's row is not cached yet, `auth = "bearer"`'s key, the
//! public user) await their statements on the request's cursor: a request waiting for
//! PostgreSQL there holds no thread. Through the real binary, `base`, `web` and `test_db`,
//! and the real PostgreSQL: logged-in requests to `/test_db/count_async` on a host whose
//! token cache is cold (just restarted) wait for `res_users`, held locked by another
//! connection; the host's thread count does not grow with them (the blocking cursor's
//! `block_in_place` took a thread each), an anonymous async request is answered
//! meanwhile, and every waiting request is answered once the lock goes.

use inphms_tests::bodies::status_kib;
use inphms_tests::pg::{self, TestDb};
use inphms_tests::{http_get, rpc, wait_until, with_test_addons, Server, TestDir};
use serde_json::json;
use std::time::Duration;

/// How many logged-in requests wait for the lock at once.
const WAITING: usize = 16;

fn args(db: &TestDb) -> Vec<String> {
    let mut args = pg::server_args();
    args.push(format!("--addons-path={}", with_test_addons(&[])));
    args.extend(["-d".into(), db.name.clone(), "--max-cron-threads=0".into()]);
    args
}

fn threads(pid: u32) -> u64 {
    status_kib(pid, "Threads").expect("Threads in /proc/PID/status")
}

/// Backends of `db` waiting for a lock.
fn waiting_for_locks(db: &TestDb) -> usize {
    pg::psql(
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND wait_event_type = 'Lock'",
            db.name
        ),
    )
    .parse()
    .expect("a count")
}

/// The locker's marker in its statement, to find (and end) its backend.
const LOCKER: &str = "inphms_async_db_checks_locker";

#[test]
fn logged_in_async_requests_waiting_for_their_token_query_hold_no_thread() {
    let td = TestDir::new();
    let db = TestDb::new("asyncchk");
    let mut init: Vec<String> = vec!["server".into(), "--stop-after-init".into()];
    init.extend(args(&db));
    init.extend(["-i".into(), "web,test_db".into()]);
    let out = td.cmd(init).timeout(Duration::from_secs(180)).run();
    assert_eq!(out.code, Some(0), "{out}");

    // Logged in as admin (its session saved in the data folder), then a new host: its
    // token cache is cold.
    let mut server: Server = td.server(args(&db)).start();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "call",
        "params": {"db": db.name, "login": "admin", "password": "admin"}});
    let r = rpc(server.port(), "/web/session/authenticate", body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\"uid\": 2"), "{}", r.text());
    let sid = r.cookie("session_id").expect("a session cookie");
    let cookie = format!("session_id={sid}");
    let logged_in = http_get(
        server.port(),
        "/test_db/count_async",
        &[("Cookie", cookie.as_str())],
    );
    assert_eq!(logged_in.status, 200, "{}", logged_in.text());
    let expected = logged_in.text();
    server.stop(Duration::from_secs(30));
    drop(server);
    let server = td.server(args(&db)).start();
    let port = server.port();
    let pid = server.pid();
    // Warm up, anonymous (no token to check): the runtime and the pool's connections.
    for _ in 0..4 {
        let r = http_get(port, "/test_db/count_async", &[]);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let idle = threads(pid);

    // Another connection holds `res_users` locked until it is ended.
    let locker_db = db.name.clone();
    let locker = std::thread::spawn(move || {
        pg::try_psql(
            &locker_db,
            &format!(
                "BEGIN; LOCK TABLE res_users IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120), '{LOCKER}'; COMMIT;"
            ),
        )
    });
    assert!(
        wait_until(Duration::from_secs(30), || {
            pg::psql(
                "postgres",
                &format!(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%{LOCKER}''%' AND wait_event = 'PgSleep'"
                ),
            ) == "1"
        }),
        "the locker never held the lock"
    );

    // Logged-in requests: each one's token query waits for the lock.
    let clients: Vec<_> = (0..WAITING)
        .map(|_| {
            let cookie = cookie.clone();
            std::thread::spawn(move || {
                http_get(port, "/test_db/count_async", &[("Cookie", cookie.as_str())])
            })
        })
        .collect();
    assert!(
        wait_until(Duration::from_secs(60), || waiting_for_locks(&db)
            >= WAITING),
        "{} of {WAITING} requests waited for the lock\n{}",
        waiting_for_locks(&db),
        server.stderr()
    );
    let most = threads(pid);
    // The runtime serves on meanwhile: an anonymous async request on the same database.
    let anonymous = http_get(port, "/test_db/count_async", &[]);
    assert_eq!(anonymous.status, 200, "{}", anonymous.text());
    let most = most.max(threads(pid));
    eprintln!(
        "{WAITING} logged-in async requests waiting for their token query: host threads {idle} idle, {most} while they waited"
    );
    // A thread each would be `block_in_place` (the blocking cursor) under them.
    assert!(
        most <= idle + 4,
        "the host went from {idle} to {most} threads for {WAITING} async requests waiting for PostgreSQL"
    );

    // The lock goes: every request is answered, as before.
    pg::psql(
        "postgres",
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%{LOCKER}''%' AND pid <> pg_backend_pid()"
        ),
    );
    let _ = locker.join();
    for c in clients {
        let r = c.join().expect("a client");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.text(), expected);
    }
}
