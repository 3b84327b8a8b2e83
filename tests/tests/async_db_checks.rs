//! The checks before an async route's handler on a database (the session token of a
//! logged-in session whose user's row is not cached yet, `auth = "bearer"`'s key, the
//! public user) await their statements on the request's cursor: a request waiting for
//! PostgreSQL there holds no thread. Through the real binary, `base`, `web` and `test_db`,
//! and the real PostgreSQL: logged-in requests to `/test_db/count_async` on a host whose
//! token cache is cold (just restarted) wait for `res_users`, held locked by another
//! connection; the host's thread count does not grow with them (the blocking cursor's
//! `block_in_place` took a thread each), an anonymous async request is answered
//! meanwhile, and every waiting request is answered once the lock goes. The same for
//! `auth = "bearer"` async requests (`test_http`'s `/test_async/bearer_uid`) waiting for
//! `res_users_apikeys`.

mod lock_wait;
#[allow(dead_code)]
#[path = "identity/support.rs"]
mod support;

use inphms_tests::pg::{self, TestDb};
use inphms_tests::{http_get, rpc, wait_until, with_test_addons, Server, TestDir};
use lock_wait::{threads, waiting_for_locks, Locker};
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

/// Sends [`WAITING`] requests `send` at once while `table` is locked, waits until each
/// waits for the lock, and checks that the host (`pid`, `idle` threads before) took no
/// thread for them; runs `meanwhile` (still locked), then releases the lock: their
/// answers.
fn waiting_on_a_lock(
    db: &TestDb,
    table: &str,
    pid: u32,
    idle: u64,
    send: impl Fn() -> inphms_tests::Response + Send + Sync + Clone + 'static,
    meanwhile: impl FnOnce(),
) -> Vec<inphms_tests::Response> {
    let locker = Locker::hold(&db.name, table);
    let clients: Vec<_> = (0..WAITING)
        .map(|_| {
            let send = send.clone();
            std::thread::spawn(send)
        })
        .collect();
    assert!(
        wait_until(Duration::from_secs(60), || waiting_for_locks(db, "%")
            >= WAITING),
        "{} of {WAITING} requests waited for the lock",
        waiting_for_locks(db, "%"),
    );
    let most = threads(pid);
    eprintln!(
        "{WAITING} async requests waiting for {table}: host threads {idle} idle, {most} while they waited"
    );
    // A thread each would be `block_in_place` (the blocking cursor) under them.
    assert!(
        most <= idle + 4,
        "the host went from {idle} to {most} threads for {WAITING} async requests waiting for PostgreSQL"
    );
    meanwhile();
    locker.release();
    clients
        .into_iter()
        .map(|c| c.join().expect("a client"))
        .collect()
}

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

    // Logged-in requests while another connection holds `res_users` locked: each one's
    // token query waits.
    let send = {
        let cookie = cookie.clone();
        move || http_get(port, "/test_db/count_async", &[("Cookie", cookie.as_str())])
    };
    let check = |answers: Vec<inphms_tests::Response>| {
        for r in answers {
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(r.text(), expected);
        }
    };
    // The runtime serves on meanwhile: an anonymous async request on the same database,
    // sent once the others wait (answered at the latest when the lock goes).
    let mut anonymous = None;
    let answers = waiting_on_a_lock(&db, "res_users", pid, idle, send, || {
        anonymous = Some(std::thread::spawn(move || {
            http_get(port, "/test_db/count_async", &[])
        }));
    });
    let anonymous = anonymous
        .expect("sent while the others waited")
        .join()
        .expect("the anonymous client");
    assert_eq!(anonymous.status, 200, "{}", anonymous.text());
    check(answers);
}

#[test]
fn bearer_async_requests_waiting_for_their_api_key_query_hold_no_thread() {
    let tests = inphms_tests::test_addons_dir();
    let site = support::Site::start(
        "asyncbearer",
        &[
            "--load",
            "base,web,test_http",
            "--addons-path",
            tests.to_str().expect("UTF-8"),
        ],
    );
    let out = site.users(&["apikey", "admin", "--name", "async"], None);
    assert_eq!(out.code, Some(0), "{out}");
    let key = out.stdout.trim().to_owned();
    let port = site.port();
    let auth = format!("Bearer {key}");
    let send = move || {
        http_get(
            port,
            "/test_async/bearer_uid",
            &[("Authorization", auth.as_str())],
        )
    };
    for _ in 0..4 {
        let r = send();
        assert_eq!(
            (r.status, r.text()),
            (200, "2".to_owned()),
            "{}",
            site.server.stderr()
        );
    }
    let pid = site.server.pid();
    let idle = threads(pid);
    for r in waiting_on_a_lock(&site.db, "res_users_apikeys", pid, idle, send, || {}) {
        assert_eq!((r.status, r.text()), (200, "2".to_owned()));
    }
}
