//! Service lifecycle (issue 5), against the real binary under load from clients inside the
//! test: addon swap on SIGHUP with no failed request, refused swaps, signal bursts, the
//! phoenix re-exec that refuses no connection, memory and time limits, graceful and forced
//! stops, the SIGQUIT dump and the pid file.

use inphms_tests::swap::{install_swap_lib, swap_build, Load};
use inphms_tests::ws::{close_code, ws_connect, ws_next};
use inphms_tests::{http_get, target_dir, wait_until, with_test_addons, Server, TestDir};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A server loading `test_swap` v1 from `<td>/addons` (searched before the test addons, whose
/// `test_http` it loads too), with `extra` arguments.
fn swap_server(td: &TestDir, extra: &[&str]) -> Server {
    let addons = td.join("addons");
    install_swap_lib(&addons, &swap_build("v1"));
    let path = with_test_addons(&[&addons]);
    let mut args = vec![
        "--addons-path",
        &path,
        "--load",
        "base,web,test_http,test_swap",
    ];
    args.extend_from_slice(extra);
    td.server(args).start()
}

fn get_text(port: u16, path: &str) -> String {
    let resp = http_get(port, path, &[]);
    assert_eq!(resp.status, 200, "{path}: {}", resp.text());
    resp.text()
}

#[test]
fn sighup_swaps_v1_to_v2_under_load_with_no_failed_request() {
    let td = TestDir::new();
    let server = swap_server(&td, &[]);
    let port = server.port();
    assert_eq!(get_text(port, "/test_swap/version"), "v1");
    let load = Load::start(port, "/test_swap/version", 8);
    assert!(wait_until(Duration::from_secs(10), || load.seen("v1")));
    // A slow request begun before the swap finishes on the generation it started on.
    let slow = std::thread::spawn(move || http_get(port, "/test_swap/slow", &[]));
    std::thread::sleep(Duration::from_millis(200));
    install_swap_lib(&td.join("addons"), &swap_build("v2"));
    server.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(20), || load.seen("v2")),
        "{}",
        server.stderr()
    );
    std::thread::sleep(Duration::from_millis(300));
    let (failures, answers) = load.finish();
    assert_eq!(failures, 0, "no request may fail during a swap");
    let first_v2 = answers.iter().position(|a| a == "v2").unwrap();
    assert!(answers[..first_v2].iter().all(|a| a == "v1"));
    let slow = slow.join().unwrap();
    assert_eq!((slow.status, slow.text()), (200, "v1".to_owned()));
    let log = server.stderr();
    assert!(log.contains("generation 2 serving after"), "{log}");
    assert!(log.contains("reloaded: test_swap"), "{log}");
    assert_eq!(get_text(port, "/test_swap/version"), "v2");
}

#[test]
fn a_swap_closes_the_replaced_addons_websockets_with_1001_after_a_grace() {
    let td = TestDir::new();
    let server = swap_server(&td, &[]);
    let port = server.port();
    let mut v1 = ws_connect(port, "/test_swap/ws", None);
    assert_eq!(ws_next(&mut v1).into_text().unwrap().as_str(), "v1");
    install_swap_lib(&td.join("addons"), &swap_build("v2"));
    server.signal("HUP");
    assert!(wait_until(Duration::from_secs(20), || {
        http_get(port, "/test_swap/version", &[]).text() == "v2"
    }));
    // Within the grace period the old socket still works...
    v1.send(tungstenite::Message::text("still there")).unwrap();
    assert_eq!(
        ws_next(&mut v1).into_text().unwrap().as_str(),
        "still there"
    );
    // ...then it is closed with 1001, and a new one is served by v2.
    let swapped = Instant::now();
    let close = ws_next(&mut v1);
    assert_eq!(close_code(&close), Some(1001), "{close:?}");
    assert!(swapped.elapsed() < Duration::from_secs(10));
    let mut v2 = ws_connect(port, "/test_swap/ws", None);
    assert_eq!(ws_next(&mut v2).into_text().unwrap().as_str(), "v2");
}

#[test]
fn sighup_with_a_broken_v2_keeps_v1_serving() {
    let td = TestDir::new();
    let server = swap_server(&td, &[]);
    let port = server.port();
    let abi_break = target_dir().join("test-addons/test_abi_break/libtest_abi_break.so");
    assert!(abi_break.is_file(), "run `cargo xtask test`");
    for (lib, reason) in [
        (abi_break, "ABI layout differs from the host's inphms-sdk"),
        (
            swap_build("fail_post_load"),
            "post_load of 'test_swap' failed: test_swap refuses to start",
        ),
    ] {
        let before = server.stderr().matches("swap refused").count();
        install_swap_lib(&td.join("addons"), &lib);
        server.signal("HUP");
        assert!(
            wait_until(Duration::from_secs(20), || server
                .stderr()
                .matches("swap refused")
                .count()
                > before),
            "{}",
            server.stderr()
        );
        let log = server.stderr();
        let refused: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("addon 'test_swap' refused"))
            .collect();
        assert!(refused.last().unwrap().contains(reason), "{log}");
        assert_eq!(
            http_get(port, "/test_swap/version", &[]).text(),
            "v1",
            "{log}"
        );
    }
}

#[test]
fn a_burst_of_ten_sighups_is_survived() {
    let td = TestDir::new();
    let server = swap_server(&td, &[]);
    let port = server.port();
    install_swap_lib(&td.join("addons"), &swap_build("v2"));
    for _ in 0..10 {
        server.signal("HUP");
    }
    assert!(wait_until(Duration::from_secs(20), || {
        http_get(port, "/test_swap/version", &[]).text() == "v2"
    }));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(get_text(port, "/web/health"), r#"{"status":"pass"}"#);
    let pid = server.pid();
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the process survived"
    );
}

/// Clients opening a new connection per request; connection refusals are counted apart.
fn connection_per_request_load(
    port: u16,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(usize, usize, usize)> {
    std::thread::spawn(move || {
        let (mut ok, mut refused, mut failed) = (0, 0, 0);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            match std::net::TcpStream::connect(("127.0.0.1", port)) {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => refused += 1,
                Err(_) => failed += 1,
                Ok(stream) => {
                    drop(stream);
                    let r = inphms_tests::try_request(
                        port,
                        b"GET /test_swap/version HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                    );
                    match r {
                        Ok(r) if r.status == 200 => ok += 1,
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => refused += 1,
                        other => {
                            eprintln!("failed request: {:?}", other.map(|r| r.status));
                            failed += 1
                        }
                    }
                }
            }
        }
        (ok, refused, failed)
    })
}

#[test]
fn phoenix_reexec_under_load_keeps_the_pid_and_refuses_no_connection() {
    let td = TestDir::new();
    // No in-process swap allowed: the first change makes the process re-exec itself.
    let server = swap_server(&td, &["--limit-swaps", "0"]);
    let port = server.port();
    let loaded_before = get_text(port, "/test_swap/loaded_at");
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| connection_per_request_load(port, stop.clone()))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    install_swap_lib(&td.join("addons"), &swap_build("v2"));
    server.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(30), || {
            inphms_tests::try_request(
                port,
                b"GET /test_swap/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .is_ok_and(|r| r.text() == "v2")
        }),
        "{}",
        server.stderr()
    );
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut refused, mut failed) = (0, 0, 0);
    for c in clients {
        let (o, r, f) = c.join().unwrap();
        ok += o;
        refused += r;
        failed += f;
    }
    let log = server.stderr();
    assert_eq!(
        refused, 0,
        "no connection refused during the re-exec\n{log}"
    );
    assert_eq!(failed, 0, "no failed request during the re-exec\n{log}");
    assert!(ok > 0);
    assert!(
        log.contains("Initiating server reload: the swap limit is reached"),
        "{log}"
    );
    assert_eq!(
        log.matches("running through socket activation").count(),
        1,
        "{log}"
    );
    assert!(
        Path::new(&format!("/proc/{}", server.pid())).exists(),
        "same pid, still running"
    );
    assert_ne!(
        get_text(port, "/test_swap/loaded_at"),
        loaded_before,
        "a new image"
    );
}

fn limits_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap()
}

#[test]
fn the_rss_soft_limit_triggers_a_reexec_and_rlimit_as_is_set() {
    let td = TestDir::new();
    let hard: u64 = 8 * 1024 * 1024 * 1024;
    let soft: u64 = 300 * 1024 * 1024;
    let server = swap_server(
        &td,
        &[
            "--limit-memory-soft",
            &soft.to_string(),
            "--limit-memory-hard",
            &hard.to_string(),
        ],
    );
    let port = server.port();
    let limits = limits_of(server.pid());
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))
        .unwrap();
    assert!(line.contains(&hard.to_string()), "{line}");
    let loaded_before = get_text(port, "/test_swap/loaded_at");
    assert_eq!(get_text(port, "/test_swap/alloc/400"), "400 MiB");
    assert!(
        wait_until(Duration::from_secs(20), || server
            .stderr()
            .contains("Server memory limit")),
        "{}",
        server.stderr()
    );
    assert!(wait_until(Duration::from_secs(20), || {
        inphms_tests::try_request(
            port,
            b"GET /test_swap/loaded_at HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .is_ok_and(|r| r.status == 200 && r.text() != loaded_before)
    }));
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert!(
        rss_kb * 1024 < soft,
        "memory is back under the soft limit: {rss_kb} kB"
    );
}

#[test]
fn a_handler_past_limit_time_real_gets_504_while_others_are_served() {
    let td = TestDir::new();
    let server = swap_server(&td, &["--limit-time-real", "2"]);
    let port = server.port();
    let started = Instant::now();
    let slow = std::thread::spawn(move || http_get(port, "/test_http/sleep/8000", &[]));
    std::thread::sleep(Duration::from_millis(100));
    for _ in 0..5 {
        assert_eq!(get_text(port, "/web/health"), r#"{"status":"pass"}"#);
    }
    assert!(
        !slow.is_finished(),
        "other requests are served while the slow one runs"
    );
    let slow = slow.join().unwrap();
    assert_eq!(slow.status, 504);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(6),
        "answered at the limit, not after the handler: {elapsed:?}"
    );
    assert!(server
        .stderr()
        .contains("exceeded limit_time_real (2s); answered 504"));
}

#[test]
fn sigquit_dumps_sigint_drains_and_removes_the_pidfile() {
    let td = TestDir::new();
    let pidfile = td.join("run/inphms.pid");
    let mut server = swap_server(&td, &["--pidfile", pidfile.to_str().unwrap()]);
    let port = server.port();
    assert!(wait_until(Duration::from_secs(5), || pidfile.is_file()));
    let slow = std::thread::spawn(move || http_get(port, "/test_swap/slow", &[]));
    std::thread::sleep(Duration::from_millis(300));
    server.signal("QUIT");
    assert!(
        wait_until(Duration::from_secs(5), || server
            .stderr()
            .contains("in flight: GET /test_swap/slow")),
        "{}",
        server.stderr()
    );
    server.signal("INT");
    let status = server.wait(Duration::from_secs(20)).expect("exits");
    assert_eq!(status.code(), Some(0));
    let slow = slow.join().unwrap();
    assert_eq!(
        (slow.status, slow.text()),
        (200, "v1".to_owned()),
        "the in-flight request finished"
    );
    assert!(!pidfile.exists(), "pid file removed");
    assert!(server.stderr().contains("Initiating shutdown"));
}

/// A connection accepted before a stop but still silent when it begins is given a moment
/// to send its request, which is answered before the process exits. (That the stop waits
/// no longer than needed is measured by item 8 of `cargo xtask bench`, not timed here.)
#[test]
fn a_connection_silent_when_the_stop_begins_still_gets_its_answer() {
    use std::io::{Read as _, Write as _};
    let td = TestDir::new();
    let mut server = swap_server(&td, &[]);
    let port = server.port();
    let mut silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Accepted by the server (its accept loop is idle), no byte sent yet.
    std::thread::sleep(Duration::from_millis(300));
    server.signal("INT");
    // The request goes once the drain has begun (polled closely: the grace is 100 ms).
    let began = Instant::now();
    while !server.stderr().contains("stopped accepting") {
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "no drain\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    silent
        .write_all(b"GET /test_swap/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("the connection is still open");
    let mut answer = String::new();
    let _ = silent.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("v1"),
        "answer: {answer:?}\n{}",
        server.stderr()
    );
    let status = server.wait(Duration::from_secs(20)).expect("exits");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_second_sigint_forces_the_exit() {
    let td = TestDir::new();
    let mut server = swap_server(&td, &[]);
    let port = server.port();
    let _slow = std::thread::spawn(move || {
        inphms_tests::try_request(
            port,
            b"GET /test_http/sleep/10000 HTTP/1.1\r\nHost: x\r\n\r\n",
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    server.signal("INT");
    assert!(wait_until(Duration::from_secs(5), || server
        .stderr()
        .contains("Initiating shutdown")));
    let t = Instant::now();
    server.signal("INT");
    let status = server.wait(Duration::from_secs(5)).expect("exits at once");
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(status.code(), Some(0));
    assert!(server.stderr().contains("Forced shutdown."));
}
