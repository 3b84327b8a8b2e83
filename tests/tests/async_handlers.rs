//! Async routes across the ABI (issue 17): `async fn` handlers whose futures the host polls
//! on its runtime, through the real binary and `test_http`'s `/test_async/*` and
//! `test_db`'s `/test_db/count_async` and `/test_db/add_async`: the session read and
//! written with a real cookie, 1,000 requests sleeping a second at once on host timers
//! without more threads, a panic (500, the host serving on), a handler that never ends
//! (504 past `limit_time_real`, cancelled), the awaitable cursor (the same answer as the
//! sync route, a write committed or rolled back whole), an async route behind an addon's
//! dispatcher and with `ir.http` hooks around it, a request cancelled in its transaction,
//! and a swap while async requests await.

use inphms_tests::bodies::status_kib;
use inphms_tests::pg::{self, TestDb};
use inphms_tests::swap::{install_swap_lib, swap_build, swap_server, Load};
use inphms_tests::{http_get, rpc_call, with_test_addons, Server, TestDir};
use serde_json::json;
use std::time::{Duration, Instant};

fn start(args: &[&str]) -> (TestDir, Server) {
    let td = TestDir::new();
    let server = td.test_http_server(args).start_healthy();
    (td, server)
}

fn threads(pid: u32) -> u64 {
    status_kib(pid, "Threads").expect("Threads in /proc/PID/status")
}

fn get_text(port: u16, path: &str, headers: &[(&str, &str)]) -> String {
    let resp = http_get(port, path, headers);
    assert_eq!(resp.status, 200, "{path}: {}", resp.text());
    resp.text()
}

#[test]
fn async_routes_read_and_write_the_session_with_a_real_cookie() {
    let (_td, server) = start(&[]);
    let port = server.port();
    // Written by an async route after an await: saved, its cookie set.
    let set = http_get(port, "/test_async/set/colour/blue", &[]);
    assert_eq!((set.status, set.text()), (200, "ok".to_owned()));
    let sid = set.cookie("session_id").expect("a session cookie");
    let cookie = format!("session_id={sid}");
    // Read back by the async route and by the sync one.
    let headers = [("Cookie", cookie.as_str())];
    assert_eq!(get_text(port, "/test_async/get/colour", &headers), "blue");
    assert_eq!(get_text(port, "/test_http/get/colour", &headers), "blue");
    // A read changes nothing: no cookie.
    let read = http_get(port, "/test_async/get/colour", &headers);
    assert!(read.cookie("session_id").is_none(), "{:?}", read.headers);
    // A value the sync route wrote, read by the async one.
    let sync_set = http_get(port, "/test_http/set/shape/round", &headers);
    assert_eq!(sync_set.status, 200);
    assert_eq!(get_text(port, "/test_async/get/shape", &headers), "round");
    // A json async route.
    let (status, v) = rpc_call(port, "/test_async/add", json!({"a": 2, "b": 40}));
    assert_eq!((status, &v["result"]), (200, &json!(42)), "{v}");
    // Behind the addon's `plain` dispatcher: run through the sync entry point.
    assert_eq!(get_text(port, "/test_async/plain/5", &[]), "plain:15");
}

#[test]
fn ir_http_hooks_run_around_an_async_route() {
    let td = TestDir::new();
    let data = td.join("data");
    let addons = inphms_tests::test_addons_dir();
    let server = td
        .server([
            "--load",
            "base,web,test_http,test_override",
            "-D",
            data.to_str().unwrap(),
            "--addons-path",
            addons.to_str().unwrap(),
        ])
        .start_healthy();
    // With hooks registered, the async route runs as a sync one on the pool (the SDK polls
    // its future there), the pre- and post-dispatch hooks around it.
    let resp = http_get(server.port(), "/test_async/sleep/5", &[]);
    assert_eq!((resp.status, resp.text()), (200, "slept 5".to_owned()));
    assert_eq!(
        resp.header("X-Test-Override"),
        Some("pre"),
        "{:?}",
        resp.headers
    );
    assert_eq!(
        resp.header("X-Post-Dispatch"),
        Some("1"),
        "{:?}",
        resp.headers
    );
}

#[test]
fn a_thousand_async_requests_sleeping_a_second_hold_no_thread() {
    let (_td, server) = start(&[]);
    let port = server.port();
    let pid = server.pid();
    // Warm up: the runtime's workers and whatever a first request starts.
    for _ in 0..4 {
        assert_eq!(get_text(port, "/test_async/sleep/1", &[]), "slept 1");
    }
    let idle = threads(pid);
    let started = Instant::now();
    let clients: Vec<_> = (0..1000)
        .map(|_| {
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || http_get(port, "/test_async/sleep/1000", &[]))
                .expect("a client thread")
        })
        .collect();
    // The most threads the host had while they slept.
    let mut most = idle;
    while started.elapsed() < Duration::from_millis(900) {
        most = most.max(threads(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    let answers: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let wall = started.elapsed();
    let ok = answers
        .iter()
        .filter(|r| r.status == 200 && r.text() == "slept 1000")
        .count();
    eprintln!("1,000 async requests sleeping 1 s: {wall:?} wall, host threads {idle} idle, {most} at most");
    assert_eq!(ok, 1000, "{}", server.stderr());
    // Slept at once: one after another would be 1,000 s. (The margin is for starting
    // 1,000 client threads and connections on a shared 2-core machine, debug builds.)
    assert!(
        wall < Duration::from_secs(5),
        "1,000 concurrent sleeps of 1 s took {wall:?}"
    );
    // A sync handler would hold one thread of the blocking pool each (512 at most).
    assert!(
        most <= idle + 4,
        "the host went from {idle} to {most} threads for 1,000 sleeping async requests"
    );
}

#[test]
fn a_panicking_async_handler_is_a_500_and_the_host_serves_on() {
    let (_td, server) = start(&[]);
    let port = server.port();
    for _ in 0..3 {
        assert_eq!(http_get(port, "/test_async/panic", &[]).status, 500);
        assert_eq!(get_text(port, "/test_async/sleep/1", &[]), "slept 1");
    }
    let log = server.stderr();
    assert!(
        log.contains("async handler panicked on purpose"),
        "the panic is not logged: {log}"
    );
}

#[test]
fn a_never_ending_async_handler_is_cancelled_and_answered_504() {
    let (_td, server) = start(&["--limit-time-real=1"]);
    let port = server.port();
    let started = Instant::now();
    let resp = http_get(port, "/test_async/forever", &[]);
    let waited = started.elapsed();
    assert_eq!(resp.status, 504, "{}", resp.text());
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(5),
        "answered after {waited:?}"
    );
    assert_eq!(get_text(port, "/test_async/sleep/1", &[]), "slept 1");
    let log = server.stderr();
    assert!(
        log.contains("request to test_http::async_routes::forever exceeded limit_time_real (1s); its async handler was cancelled"),
        "{log}"
    );
    // Cancelled, not left running: the host does not count it as stuck.
    assert!(!log.contains("stuck"), "{log}");
}

#[test]
fn the_async_cursor_answers_as_the_sync_one_and_a_write_commits_or_rolls_back_whole() {
    let td = TestDir::new();
    let db = TestDb::new("async");
    let mut init: Vec<String> = vec!["server".into(), "--stop-after-init".into()];
    init.extend(pg::server_args());
    init.push(format!("--addons-path={}", with_test_addons(&[])));
    init.extend(["-d".into(), db.name.clone(), "-i".into(), "test_db".into()]);
    let out = td.cmd(init).timeout(Duration::from_secs(120)).run();
    assert_eq!(out.code, Some(0), "{out}");
    let mut args = pg::server_args();
    args.push(format!("--addons-path={}", with_test_addons(&[])));
    args.extend(["-d".into(), db.name.clone(), "--max-cron-threads=0".into()]);
    let server = td.server(args).start();
    let port = server.port();
    let sync = get_text(port, "/test_db/count", &[]);
    assert_eq!(get_text(port, "/test_db/count_async", &[]), sync);
    let before: i64 = db.sql("SELECT count(*) FROM test_db_note").parse().unwrap();
    // Committed with the handler's success.
    let (status, v) = rpc_call(
        port,
        "/test_db/add_async",
        json!({"name": "a", "fail": false}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"]["count"], json!(before + 1), "{v}");
    assert_eq!(
        db.sql("SELECT count(*) FROM test_db_note WHERE name = 'a'"),
        "1"
    );
    // Rolled back whole with its error, though the insert succeeded.
    let (_, v) = rpc_call(
        port,
        "/test_db/add_async",
        json!({"name": "b", "fail": true}),
    );
    assert_eq!(
        v["error"]["data"]["message"],
        json!("failed after the insert"),
        "{v}"
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM test_db_note WHERE name = 'b'"),
        "0"
    );
    assert_eq!(
        get_text(port, "/test_db/count_async", &[]),
        get_text(port, "/test_db/count", &[])
    );
    // Many at once on the pool's connections: each its own transaction.
    let calls: Vec<_> = (0..40)
        .map(|_| std::thread::spawn(move || http_get(port, "/test_db/count_async", &[])))
        .collect();
    for c in calls {
        let r = c.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // The connections went back to the pool out of their transactions.
    assert_eq!(
        db.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'"),
        "0"
    );
}

#[test]
fn an_async_db_request_cancelled_at_limit_time_real_rolls_back_and_frees_its_connection() {
    let td = TestDir::new();
    let db = TestDb::new("async_timeout");
    let mut init: Vec<String> = vec!["server".into(), "--stop-after-init".into()];
    init.extend(pg::server_args());
    init.push(format!("--addons-path={}", with_test_addons(&[])));
    init.extend(["-d".into(), db.name.clone(), "-i".into(), "test_db".into()]);
    assert_eq!(
        td.cmd(init).timeout(Duration::from_secs(120)).run().code,
        Some(0)
    );
    let mut args = pg::server_args();
    args.push(format!("--addons-path={}", with_test_addons(&[])));
    args.extend([
        "-d".into(),
        db.name.clone(),
        "--limit-time-real=1".into(),
        "--max-cron-threads=0".into(),
    ]);
    let server = td.server(args).start();
    let port = server.port();
    let started = Instant::now();
    let (status, v) = rpc_call(port, "/test_db/hold_async", json!({"seconds": 30}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["error"]["data"]["name"],
        json!("builtins.Exception"),
        "{v}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The statement is cancelled (statement_timeout) and its transaction rolled back:
    // no connection sleeps, none is left in a transaction.
    let busy = || {
        db.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() \
             AND (query LIKE '%pg_sleep%' AND state = 'active' OR state LIKE 'idle in transaction%')",
        )
    };
    assert!(
        inphms_tests::wait_until(Duration::from_secs(5), || busy() == "0"),
        "a connection is still busy: {}",
        busy()
    );
    // The server goes on, on the pool's connections.
    for _ in 0..5 {
        assert!(get_text(port, "/test_db/count_async", &[]).contains("notes in"));
    }
}

#[test]
fn a_swap_while_async_requests_await_fails_none() {
    let td = TestDir::new();
    let server = swap_server(&td, "base,web,test_http,test_swap", &[]);
    let port = server.port();
    assert_eq!(get_text(port, "/test_swap/version", &[]), "v1");
    let load = Load::start(port, "/test_async/sleep/5", 8);
    let sleepers: Vec<_> = (0..50)
        .map(|_| std::thread::spawn(move || http_get(port, "/test_async/sleep/2000", &[])))
        .collect();
    assert!(
        server.wait_in_flight("GET /test_async/sleep/2000", Duration::from_secs(5)),
        "{}",
        server.stderr()
    );
    install_swap_lib(&td.join("addons"), &swap_build("v2"));
    server.signal("HUP");
    assert!(
        server.wait_for_log("generation 2 serving after", Duration::from_secs(20)),
        "{}",
        server.stderr()
    );
    assert!(inphms_tests::wait_until(Duration::from_secs(10), || {
        load.count() >= 200
    }));
    let (failures, _) = load.finish();
    assert_eq!(failures, 0, "no request may fail during a swap");
    for s in sleepers {
        let r = s.join().unwrap();
        assert_eq!((r.status, r.text()), (200, "slept 2000".to_owned()));
    }
    assert_eq!(get_text(port, "/test_swap/version", &[]), "v2");
}
