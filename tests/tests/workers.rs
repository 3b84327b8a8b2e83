//! Workers mode (issue 22), against the real binary: a master holding the socket and worker
//! processes running the server. A worker dying of a null pointer in an addon is replaced
//! while the others serve, and only the request it was serving fails (each worker holds
//! one connection by default, `worker_connections`); `limit_request` and `limit_memory_soft` recycle workers with no
//! failed request; SIGHUP swaps the addons of every worker under load; SIGTTIN/SIGTTOU
//! change the count; SIGUSR2 restarts the workers one by one refusing no connection;
//! SIGTERM drains all.

use inphms_tests::swap::{install_swap_lib, swap_build, swap_server, Load};
use inphms_tests::{closes, try_request, wait_until, HttpConn, Server, TestDir};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many lines of the log contain `needle`.
fn count(server: &Server, needle: &str) -> usize {
    server.stderr().matches(needle).count()
}

fn wait_count(server: &Server, needle: &str, n: usize, timeout: Duration) {
    assert!(
        wait_until(timeout, || count(server, needle) >= n),
        "expected {n} x {needle:?}\n{}",
        server.stderr()
    );
}

/// The pids of the workers the master started with `role` (`http`, `cron`), in order.
fn started(server: &Server, role: &str) -> Vec<u32> {
    let suffix = format!(" ({role}) started");
    server
        .stderr()
        .lines()
        .filter_map(|l| {
            let at = l.find(&suffix)?;
            l[..at].rsplit(' ').next()?.parse().ok()
        })
        .collect()
}

/// What the clients of [`ConnLoad`] saw.
#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    refused: usize,
    failed: usize,
    /// Requests sent on a connection that had carried one before (keep-alive clients).
    reused: usize,
}

/// Clients requesting `path` until stopped, each answer counted, none retried: `close`
/// clients open a connection per request (`Connection: close`), `keep_alive` clients keep
/// theirs for as long as the server does (they connect again after an answer carrying
/// `Connection: close`, as any HTTP client does).
struct ConnLoad {
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<Tally>>,
}

/// One client of [`ConnLoad`]: requests until `stop`, 90 s at most.
fn client(
    port: u16,
    path: &str,
    keep_alive: bool,
    stop: &AtomicBool,
    served: &AtomicUsize,
) -> Tally {
    let close = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let open = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut tally = Tally::default();
    let mut conn: Option<HttpConn> = None;
    let deadline = Instant::now() + Duration::from_secs(90);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let r = if keep_alive {
            if conn.is_some() {
                tally.reused += 1;
            }
            let c = match conn.take() {
                Some(c) => Ok(c),
                None => HttpConn::connect(port),
            };
            c.and_then(|mut c| {
                c.send(open.as_bytes())?;
                let r = c.read_response(false)?;
                if !closes(&r) {
                    conn = Some(c);
                }
                Ok(r)
            })
        } else {
            try_request(port, close.as_bytes())
        };
        match r {
            Ok(r) if r.status == 200 => {
                tally.ok += 1;
                served.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => tally.refused += 1,
            other => {
                eprintln!("failed request: {:?}", other.map(|r| r.status));
                tally.failed += 1
            }
        }
    }
    tally
}

impl ConnLoad {
    fn start(port: u16, path: &str, close: usize, keep_alive: usize) -> ConnLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let threads = (0..close + keep_alive)
            .map(|i| {
                let (stop, served, path) = (stop.clone(), served.clone(), path.to_owned());
                std::thread::spawn(move || client(port, &path, i >= close, &stop, &served))
            })
            .collect();
        ConnLoad {
            stop,
            served,
            threads,
        }
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::Relaxed)
    }

    /// Waits until `n` more requests are served.
    fn serve_more(&self, n: usize, server: &Server) {
        let target = self.served() + n;
        assert!(
            wait_until(Duration::from_secs(30), || self.served() >= target),
            "{} served, waiting for {target}\n{}",
            self.served(),
            server.stderr()
        );
    }

    fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Tally::default();
        for t in self.threads {
            let t = t.join().unwrap();
            all.ok += t.ok;
            all.refused += t.refused;
            all.failed += t.failed;
            all.reused += t.reused;
        }
        all
    }
}

fn workers_server(td: &TestDir, args: &[&str]) -> Server {
    td.test_http_server(args).start_healthy()
}

#[test]
fn a_worker_dying_of_a_null_pointer_is_replaced_within_a_second_while_the_others_serve() {
    let td = TestDir::new();
    let server = workers_server(&td, &["--workers", "3", "--max-cron-threads", "0"]);
    wait_count(&server, "(http) ready after", 3, Duration::from_secs(30));
    let port = server.port();
    // 8 clients on another route during the crash, none retrying: 5 opening a connection
    // per request, 3 keep-alive ones.
    let load = ConnLoad::start(port, "/test_http/pid", 5, 3);
    load.serve_more(100, &server);
    let crash = try_request(
        port,
        b"GET /test_http/crash HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let crashed_at = Instant::now();
    assert!(
        crash.is_err(),
        "the crashing request has no answer: {crash:?}"
    );
    // The master logs the death (pid, signal) and starts a replacement within a second.
    assert!(
        wait_until(Duration::from_secs(1), || count(
            &server,
            "died (signal SIGSEGV"
        ) == 1
            && started(&server, "http").len() == 4),
        "no replacement within 1 s of the crash ({:?})\n{}",
        crashed_at.elapsed(),
        server.stderr()
    );
    wait_count(&server, "(http) ready after", 4, Duration::from_secs(30));
    load.serve_more(200, &server);
    let tally = load.finish();
    let log = server.stderr();
    eprintln!("{tally:?}");
    // Only the crashing request failed: each worker held one connection (the default
    // worker_connections), and the keep-alive clients were answered `Connection: close`.
    assert_eq!((tally.failed, tally.refused), (0, 0), "{tally:?}\n{log}");
    assert_eq!(tally.reused, 0, "{tally:?}");
    assert!(log.contains("replacing it"), "{log}");
    // What the dead worker was serving, from the memory it shared with the master.
    let death = log
        .lines()
        .find(|l| l.contains("died (signal SIGSEGV"))
        .unwrap();
    assert!(
        death.contains("it was serving: ") && death.contains("GET /test_http/crash"),
        "{death}"
    );
    // The three other workers served throughout: none other died.
    assert_eq!(log.matches("died (").count(), 1, "{log}");
}

#[test]
fn limit_request_recycles_the_workers_with_no_failed_request() {
    let td = TestDir::new();
    let server = workers_server(
        &td,
        &[
            "--workers",
            "2",
            "--max-cron-threads",
            "0",
            "--limit-request",
            "100",
        ],
    );
    wait_count(&server, "(http) ready after", 2, Duration::from_secs(30));
    let load = ConnLoad::start(server.port(), "/test_http/pid", 2, 2);
    // Three recycles, and their replacements serving.
    wait_count(
        &server,
        "recycling: limit_request reached",
        3,
        Duration::from_secs(60),
    );
    wait_count(&server, "(http) ready after", 5, Duration::from_secs(30));
    load.serve_more(50, &server);
    let tally = load.finish();
    let log = server.stderr();
    assert_eq!((tally.failed, tally.refused), (0, 0), "{tally:?}\n{log}");
    assert!(log.contains("starting its replacement"), "{log}");
    assert!(!log.contains("died ("), "{log}");
}

#[test]
fn limit_memory_soft_recycles_the_worker_that_grew_and_no_other() {
    let td = TestDir::new();
    let server = workers_server(
        &td,
        &[
            "--workers",
            "2",
            "--max-cron-threads",
            "0",
            "--limit-memory-soft",
            &(200u64 << 20).to_string(),
        ],
    );
    wait_count(&server, "(http) ready after", 2, Duration::from_secs(30));
    let workers = started(&server, "http");
    let grown: u32 = inphms_tests::http_get(server.port(), "/test_http/grow/300", &[])
        .text()
        .parse()
        .unwrap();
    assert!(workers.contains(&grown), "{workers:?} {grown}");
    let other = *workers.iter().find(|p| **p != grown).unwrap();
    // Checked every 2 s, never before the worker served 10 s.
    wait_count(
        &server,
        &format!("worker {grown} (http) exited (exit code 0)"),
        1,
        Duration::from_secs(40),
    );
    let log = server.stderr();
    assert!(
        log.contains(&format!(
            "worker {grown} (http) recycling: Server memory limit"
        )),
        "{log}"
    );
    assert!(
        !log.contains(&format!("worker {other} (http) recycling")),
        "{log}"
    );
    assert!(std::path::Path::new(&format!("/proc/{other}")).exists());
    wait_count(&server, "(http) ready after", 3, Duration::from_secs(30));
}

#[test]
fn sighup_in_workers_mode_swaps_every_worker_under_load_with_no_failed_request() {
    let td = TestDir::new();
    let server = swap_server(
        &td,
        "base,web,test_http,test_swap",
        &["--workers", "2", "--max-cron-threads", "0"],
    );
    wait_count(&server, "(http) ready after", 2, Duration::from_secs(30));
    let load = Load::start(server.port(), "/test_swap/version", 8);
    assert!(wait_until(Duration::from_secs(10), || load.seen("v1")));
    install_swap_lib(&td.join("addons"), &swap_build("v2"));
    server.signal("HUP");
    wait_count(
        &server,
        "generation 2 serving after",
        2,
        Duration::from_secs(30),
    );
    let v2_now = load.count_of("v2");
    assert!(
        wait_until(Duration::from_secs(10), || load.count_of("v2")
            >= v2_now + 100),
        "{}",
        server.stderr()
    );
    let (failures, _) = load.finish();
    assert_eq!(failures, 0, "{}", server.stderr());
    assert!(server
        .stderr()
        .contains("SIGHUP: 2 worker(s) swap their addons"));
}

#[test]
fn sigttin_sigttou_change_the_count_sigusr2_rolls_and_sigterm_drains_all() {
    let td = TestDir::new();
    let mut server = workers_server(&td, &["--workers", "1", "--max-cron-threads", "1"]);
    wait_count(&server, "(http) ready after", 1, Duration::from_secs(30));
    wait_count(&server, "(cron) ready after", 1, Duration::from_secs(30));
    // The master loads no addon: every "generation 1" line is a worker's.
    let master = server.pid().to_string();
    let log = server.stderr();
    assert!(
        log.lines()
            .filter(|l| l.contains("generation 1: addons"))
            .all(|l| !l.contains(&format!(" {master} "))),
        "{log}"
    );
    server.signal("TTIN");
    wait_count(&server, "(http) ready after", 2, Duration::from_secs(30));
    server.signal("TTIN");
    wait_count(&server, "(http) ready after", 3, Duration::from_secs(30));
    server.signal("TTOU");
    wait_count(&server, "retiring: SIGTTOU", 1, Duration::from_secs(10));
    wait_count(
        &server,
        "exited (exit code 0) after",
        1,
        Duration::from_secs(30),
    );
    // A rolling restart of the two HTTP workers under load: no connection refused.
    let load = ConnLoad::start(server.port(), "/test_http/pid", 2, 2);
    load.serve_more(50, &server);
    server.signal("USR2");
    wait_count(
        &server,
        "retiring: rolling restart",
        2,
        Duration::from_secs(60),
    );
    wait_count(&server, "(http) ready after", 5, Duration::from_secs(30));
    load.serve_more(50, &server);
    let tally = load.finish();
    assert_eq!(
        (tally.failed, tally.refused),
        (0, 0),
        "{tally:?}\n{}",
        server.stderr()
    );
    let status = server.stop(Duration::from_secs(30));
    let log = server.stderr();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{log}");
    assert!(log.contains("all workers exited; master stops"), "{log}");
    assert!(!log.contains("died ("), "{log}");
}

#[test]
fn d_and_i_run_once_in_a_process_of_their_own_before_the_workers_start() {
    let td = TestDir::new();
    let db = inphms_tests::pg::TestDb::new("workers");
    let mut args: Vec<String> = inphms_tests::pg::server_args();
    args.extend(
        ["-d", &db.name, "-i", "test_db", "--workers", "2"]
            .iter()
            .map(|s| s.to_string()),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = td
        .test_http_server(&args)
        .start_timeout(Duration::from_secs(120))
        .start_healthy();
    wait_count(&server, "(http) ready after", 2, Duration::from_secs(60));
    wait_count(&server, "(cron) ready after", 1, Duration::from_secs(60));
    let log = server.stderr();
    assert_eq!(
        log.matches("databases initialised (-i/-u) before starting the workers: exit status: 0")
            .count(),
        1,
        "{log}"
    );
    // The initialisation ended before the first worker started.
    let init_at = log.find("databases initialised").unwrap();
    let first_worker_at = log.find("(http) started").unwrap();
    assert!(init_at < first_worker_at, "{log}");
    assert_eq!(
        db.sql("SELECT state FROM ir_module_module WHERE name = 'test_db'"),
        "installed"
    );
}

#[test]
fn workers_dying_before_they_serve_are_restarted_after_a_growing_backoff() {
    let td = TestDir::new();
    // An address-space limit far below what a worker needs: each dies at start.
    let mut server = td
        .test_http_server(&[
            "--workers",
            "1",
            "--max-cron-threads",
            "0",
            "--limit-memory-hard",
            &(16u64 << 20).to_string(),
        ])
        .no_wait()
        .start();
    wait_count(
        &server,
        "1 http worker(s) in a row died before serving: next start in 1s",
        1,
        Duration::from_secs(30),
    );
    let first = Instant::now();
    wait_count(
        &server,
        "2 http worker(s) in a row died before serving: next start in 2s",
        1,
        Duration::from_secs(30),
    );
    // The second start waited for the first backoff.
    assert!(
        first.elapsed() >= Duration::from_millis(500),
        "{}",
        server.stderr()
    );
    wait_count(
        &server,
        "3 http worker(s) in a row died before serving: next start in 4s",
        1,
        Duration::from_secs(30),
    );
    // The master itself is fine, and stops on SIGTERM.
    let status = server.stop(Duration::from_secs(30));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{}",
        server.stderr()
    );
}

#[test]
fn a_worker_whose_handler_exceeds_limit_time_cpu_is_recycled() {
    let td = TestDir::new();
    let server = workers_server(
        &td,
        &[
            "--workers",
            "2",
            "--max-cron-threads",
            "0",
            "--limit-time-cpu",
            "1",
            "--limit-time-real",
            "4",
        ],
    );
    wait_count(&server, "(http) ready after", 2, Duration::from_secs(30));
    let port = server.port();
    // Spins for 60 s of wall time (as much CPU as it gets): past 1 s of CPU, its worker
    // recycles; the request is answered 504 at limit_time_real, or cut with its worker.
    let spinning = std::thread::spawn(move || {
        try_request(
            port,
            b"GET /test_http/spin/60000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    });
    wait_count(
        &server,
        "recycling: limit_time_cpu (1s) exceeded: a handler used",
        1,
        Duration::from_secs(20),
    );
    // The worker exits (its spinning handler given up) and is replaced; the other serves.
    wait_count(
        &server,
        "(http) exited (exit code 0)",
        1,
        Duration::from_secs(30),
    );
    wait_count(&server, "(http) ready after", 3, Duration::from_secs(30));
    let _ = spinning.join();
    let log = server.stderr();
    assert!(!log.contains("died ("), "{log}");
    assert_eq!(
        inphms_tests::http_get(port, "/test_http/pid", &[]).status,
        200,
        "{log}"
    );
}
