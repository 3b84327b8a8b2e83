//! Request bodies (issue 15) through the real binary, `test_http` and loopback sockets:
//! bounded memory (bodies past `http_body_spool` received into an unnamed file under
//! `<data_dir>/tmp/` and handed to the handler mapped, intact; the file gone after, and when
//! the client leaves mid-upload; leftovers removed at start), the process-wide budget
//! `limit_memory_bodies` (503 with `Retry-After`, then recovery), `http_body_timeout` (a
//! stalled body answered 408 and its connection closed; a slow but steady one served), form
//! fields bounded as Odoo's `max_form_memory_size` (files not), 24 concurrent 127 MiB
//! chunked bodies with the default limits (the host stays up, under 512 MiB, `/web/health`
//! answering throughout), and requests given up at `limit_time_real` while queued for the
//! blocking pool never running their handler.
//!
//! Build first: `cargo build --workspace`, then `cargo test -p inphms-tests --test bodies`.

use inphms_tests::bodies::{
    fnv_hex, mappings_under, open_files_under, post_chunked, status_kib, Upload,
};
use inphms_tests::{http_get, post, wait_until, HttpConn, Response, Server, TestDir};
use serde_json::{json, Value};
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;

/// A server with `base,web,test_http` loaded, its data folder `<td>/data`, and `args`.
fn start(td: &TestDir, args: &[&str]) -> Server {
    let data = td.join("data");
    let addons = inphms_tests::with_test_addons(&[]);
    let mut all = vec![
        "--addons-path",
        &addons,
        "--load",
        "base,web,test_http",
        "-D",
        data.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    td.server(all).start()
}

/// The spool folder of the server of `td`.
fn spool_dir(td: &TestDir) -> PathBuf {
    td.join("data").join("tmp")
}

fn json_of(resp: &Response) -> Value {
    serde_json::from_slice(&resp.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", resp.status, resp.text()))
}

/// `n` bytes of a pattern that a shifted or dropped byte changes.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn a_large_body_reaches_its_handler_mapped_intact_and_its_spool_file_goes() {
    let td = TestDir::new();
    // A leftover of a killed process is removed at start.
    let leftover = td.write("data/tmp/.tmpKILLED", b"left behind");
    let server = start(&td, &[]);
    let (port, pid, spool) = (server.port(), server.pid(), spool_dir(&td));
    assert!(
        !leftover.exists(),
        "{} was not removed at start",
        leftover.display()
    );

    // Past the spool threshold (1 MiB by default): a mapping of a file in data/tmp/.
    let big = pattern(5 * MIB as usize + 3);
    let resp = post(
        port,
        "/test_http/body_digest",
        "application/octet-stream",
        &big,
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let got = json_of(&resp);
    assert_eq!(got["len"], json!(big.len()));
    assert_eq!(got["fnv"], json!(fnv_hex(&big)));
    let mapped = got["mapped"]
        .as_str()
        .unwrap_or_else(|| panic!("not mapped: {got}"));
    assert!(
        mapped.starts_with(spool.to_str().unwrap()),
        "mapped from {mapped}, not from {}",
        spool.display()
    );

    // Chunked: received in memory first, then moved to a file past the threshold.
    let chunked = post_chunked(
        port,
        "/test_http/body_digest",
        &[],
        &Upload::filled(b'z', 3 * MIB + 1),
    )
    .expect("chunked upload");
    assert_eq!(chunked.status, 200, "{}", chunked.text());
    let got = json_of(&chunked);
    assert_eq!(got["len"], json!(3 * MIB + 1));
    assert_eq!(
        got["fnv"],
        json!(fnv_hex(&vec![b'z'; (3 * MIB + 1) as usize]))
    );
    assert!(
        got["mapped"]
            .as_str()
            .is_some_and(|m| m.starts_with(spool.to_str().unwrap())),
        "{got}"
    );

    // Under the threshold: memory, no file.
    let small = pattern(1000);
    let got = json_of(&post(
        port,
        "/test_http/body_digest",
        "application/octet-stream",
        &small,
    ));
    assert_eq!(
        (got["len"].clone(), got["fnv"].clone()),
        (json!(1000), json!(fnv_hex(&small)))
    );
    assert_eq!(got["mapped"], Value::Null, "{got}");

    // The parsers read the mapped slice as they read memory: multipart and JSON-RPC.
    let text = "m".repeat(2 * MIB as usize);
    let boundary = "XyZ";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"big.txt\"\r\nContent-Type: text/plain\r\n\r\n{text}\r\n--{boundary}--\r\n"
    );
    let resp = post(
        port,
        "/test_http/upload",
        &format!("multipart/form-data; boundary={boundary}"),
        multipart.as_bytes(),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let got = json_of(&resp);
    assert_eq!(got["files"][0]["filename"], json!("big.txt"));
    assert!(
        got["files"][0]["text"].as_str() == Some(text.as_str()),
        "the file came back changed"
    );
    assert_eq!(got["form"], json!([["note", "hello"]]));
    let rpc = json!({"jsonrpc": "2.0", "method": "call", "id": 7, "params": {"text": text}});
    let resp = post(
        port,
        "/test_http/json_echo",
        "application/json",
        rpc.to_string().as_bytes(),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let got = json_of(&resp);
    assert_eq!(got["id"], json!(7));
    assert!(
        got["result"]["text"].as_str() == Some(text.as_str()),
        "the param came back changed"
    );

    // A client gone mid-upload: its spool file (open while the body arrives) goes too.
    let mut conn = HttpConn::connect(port).expect("connect");
    conn.send(
        format!(
            "POST /test_http/body_digest HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            4 * MIB
        )
        .as_bytes(),
    )
    .expect("send the head");
    conn.send(&pattern(2 * MIB as usize))
        .expect("send half the body");
    assert!(
        wait_until(Duration::from_secs(10), || !open_files_under(pid, &spool)
            .is_empty()),
        "no spool file while the body arrives"
    );
    drop(conn);

    // Nothing is left once the requests ended: no file, no descriptor, no mapping.
    let left = |_: ()| {
        (
            std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0),
            open_files_under(pid, &spool),
            mappings_under(pid, &spool),
        )
    };
    // The answer is written before the request's last values are dropped: a moment.
    let clean = wait_until(Duration::from_secs(5), || {
        let (files, fds, maps) = left(());
        files == 0 && fds.is_empty() && maps.is_empty()
    });
    assert!(clean, "spool files left: {:?}", left(()));
}

#[test]
fn form_fields_are_bounded_like_odoo_and_files_are_not() {
    // Odoo's max_form_memory_size: 10 MiB of form fields copied into the parameters.
    let td = TestDir::new();
    let server = start(&td, &[]);
    let port = server.port();
    let field = "f".repeat(10 * MIB as usize + 1);
    let form = format!("note={field}");
    let resp = post(
        port,
        "/test_http/upload",
        "application/x-www-form-urlencoded",
        form.as_bytes(),
    );
    assert_eq!(resp.status, 413, "{}", resp.text());
    let part = |name: &str, filename: Option<&str>, data: &str| {
        let filename = filename.map_or(String::new(), |f| format!("; filename=\"{f}\""));
        format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"{filename}\r\n\r\n{data}\r\n"
        )
    };
    let too_much = format!("{}--XyZ--\r\n", part("note", None, &field));
    let multipart = "multipart/form-data; boundary=XyZ";
    let resp = post(port, "/test_http/upload", multipart, too_much.as_bytes());
    assert_eq!(resp.status, 413, "{}", resp.text());
    // A file of the same size is not a form field: served, whole.
    let file = format!(
        "{}{}--XyZ--\r\n",
        part("note", None, "short"),
        part("doc", Some("a.txt"), &field)
    );
    let resp = post(port, "/test_http/upload", multipart, file.as_bytes());
    assert_eq!(resp.status, 200, "{}", resp.text());
    let got = json_of(&resp);
    assert_eq!(got["files"][0]["filename"], json!("a.txt"));
    assert!(
        got["files"][0]["text"].as_str() == Some(field.as_str()),
        "the file came back changed"
    );
    assert_eq!(got["form"], json!([["note", "short"]]));
}

#[test]
fn a_stalled_body_is_answered_408_and_its_connection_closed() {
    let td = TestDir::new();
    let server = start(&td, &["--http-body-timeout", "1"]);
    let port = server.port();
    let mut conn = HttpConn::connect(port).expect("connect");
    conn.send(
        format!(
            "POST /test_http/body_digest HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 100\r\n\r\n0123456789"
        )
        .as_bytes(),
    )
    .expect("send the head and 10 bytes");
    let sent = Instant::now();
    conn.stream()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let resp = conn
        .read_response(false)
        .expect("an answer to the stalled body");
    let waited = sent.elapsed();
    assert_eq!(resp.status, 408, "{}", resp.text());
    assert!(
        resp.text().contains("didn't finish the request"),
        "{}",
        resp.text()
    );
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "answered after {waited:?}, the timeout is 1 s"
    );
    // The server closes its side: end of input, not a wait.
    let mut rest = Vec::new();
    let closed = conn.stream().try_clone().unwrap().read_to_end(&mut rest);
    assert!(closed.is_ok() && rest.is_empty(), "{closed:?} {rest:?}");
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "closed after {:?}",
        sent.elapsed()
    );

    // A slow but steady body is not a stalled one: 10 bytes, one every 300 ms (3 s in all).
    let steady = post_chunked(
        port,
        "/test_http/body_digest",
        &[],
        &Upload {
            chunk: 1,
            pace: Some(Duration::from_millis(300)),
            ..Upload::filled(b's', 10)
        },
    )
    .expect("steady upload");
    assert_eq!(steady.status, 200, "{}", steady.text());
    assert_eq!(json_of(&steady)["len"], json!(10));
    assert_eq!(http_get(port, "/web/health", &[]).status, 200);
}

#[test]
fn the_memory_budget_answers_503_with_retry_after_then_serves_again() {
    let td = TestDir::new();
    // 1000 bytes for every body in memory; bodies past 512 bytes spooled, then mapped.
    let server = start(
        &td,
        &["--limit-memory-bodies", "1000", "--http-body-spool", "512"],
    );
    let port = server.port();
    // A holds 900 bytes (mapped) while its handler sleeps.
    let a_body = pattern(900);
    let holder = {
        let body = a_body.clone();
        std::thread::spawn(move || {
            post(
                port,
                "/test_http/body_digest?sleep_ms=3000",
                "application/octet-stream",
                &body,
            )
        })
    };
    assert!(
        server.wait_for_log("body_digest: started, 900 bytes", Duration::from_secs(20)),
        "{}",
        server.stderr()
    );
    // Meanwhile, neither a mapped body nor one in memory fits.
    for n in [900, 300] {
        let resp = post(
            port,
            "/test_http/body_digest",
            "application/octet-stream",
            &pattern(n),
        );
        assert_eq!(resp.status, 503, "{n} bytes: {}", resp.text());
        assert_eq!(resp.header("retry-after"), Some("5"), "{n} bytes");
    }
    // Bodies the budget does not hold still pass: a GET, the health check.
    assert_eq!(http_get(port, "/web/health", &[]).status, 200);
    let a = holder.join().expect("the holder's thread");
    assert_eq!(a.status, 200, "{}", a.text());
    let got = json_of(&a);
    assert_eq!(got["fnv"], json!(fnv_hex(&a_body)));
    assert!(got["mapped"].is_string(), "{got}");
    // A body larger than the whole budget could never be held: too large, not busy.
    let resp = post(
        port,
        "/test_http/body_digest",
        "application/octet-stream",
        &pattern(1001),
    );
    assert_eq!(resp.status, 413, "{}", resp.text());
    // Released with its request: both fit again, one after the other.
    for (n, mapped) in [(900, true), (300, false)] {
        let body = pattern(n);
        let resp = post(
            port,
            "/test_http/body_digest",
            "application/octet-stream",
            &body,
        );
        assert_eq!(resp.status, 200, "{n} bytes: {}", resp.text());
        let got = json_of(&resp);
        assert_eq!(got["fnv"], json!(fnv_hex(&body)));
        assert_eq!(got["mapped"].is_string(), mapped, "{got}");
    }
}

#[test]
fn a_request_given_up_while_queued_for_the_pool_never_runs_its_handler() {
    // tokio's blocking pool has 512 threads: of 560 handlers sleeping 7 s, 48 are queued
    // when `limit_time_real` (2 s) answers them all 504 (sending the 560 requests takes
    // a second or two: the last ones are given up long before a thread frees).
    const SLEEPERS: u64 = 560;
    let td = TestDir::new();
    let server = start(
        &td,
        &[
            "--limit-time-real",
            "2",
            // Stuck handlers would otherwise re-exec the server mid-test.
            "--limit-time-stuck",
            "100000",
            // 512 threads' stacks: no address-space cap in the way.
            "--limit-memory-hard",
            "0",
        ],
    );
    let port = server.port();
    let mut conns: Vec<(u64, HttpConn)> = (0..SLEEPERS)
        .map(|i| {
            let ms = 7000 + i;
            let mut c = HttpConn::connect(port).expect("connect");
            c.send(
                format!(
                    "GET /test_http/sleep/{ms} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
            .expect("send");
            (ms, c)
        })
        .collect();
    for (ms, c) in &mut conns {
        let resp = c.read_response(false).expect("an answer");
        assert_eq!(resp.status, 504, "sleep {ms}: {}", resp.text());
    }
    // Another blocking route, asked until it is served: queued after every sleeper (the
    // pool's queue is in order), it runs once the pool has taken each given-up one.
    let served = wait_until(Duration::from_secs(30), || {
        http_get(port, "/test_http/item/1", &[]).status == 200
    });
    assert!(
        served,
        "the pool never served again\n{}",
        tail(&server.stderr())
    );
    let log = server.stderr();
    let given_up = log
        .lines()
        .filter(|l| l.contains("request to test_http::sleep waited past limit_time_real (2s) for a worker thread; answered 504, its handler not run"))
        .count() as u64;
    let started: Vec<u64> = (7000..7000 + SLEEPERS)
        .filter(|ms| log.contains(&format!("sleep {ms} ms: started")))
        .collect();
    assert!(
        given_up > 0,
        "the pool was never full: {} of {SLEEPERS} handlers started\n{}",
        started.len(),
        tail(&log)
    );
    assert_eq!(
        started.len() as u64 + given_up,
        SLEEPERS,
        "{} started, {given_up} given up\n{}",
        started.len(),
        tail(&log)
    );
}

/// The last lines of a log, for an assertion's message.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[test]
fn concurrent_127_mib_bodies_leave_the_host_up_and_under_512_mib() {
    const CLIENTS: usize = 24;
    const SIZE: u64 = 127 * MIB;
    let td = TestDir::new();
    let server = start(&td, &[]);
    let (port, pid) = (server.port(), server.pid());
    let uploading = Arc::new(AtomicBool::new(true));
    // `/web/health` from another thread throughout; the RSS sampled with it.
    let prober = {
        let uploading = Arc::clone(&uploading);
        std::thread::spawn(move || {
            let (mut slowest, mut probes, mut peak_rss) = (Duration::ZERO, 0u32, 0u64);
            let deadline = Instant::now() + Duration::from_secs(600);
            while uploading.load(Ordering::Acquire) && Instant::now() < deadline {
                let t = Instant::now();
                let resp = inphms_tests::try_request(
                    port,
                    b"GET /web/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                );
                assert!(
                    resp.as_ref().is_ok_and(|r| r.status == 200),
                    "/web/health failed during the uploads: {resp:?}"
                );
                slowest = slowest.max(t.elapsed());
                probes += 1;
                peak_rss = peak_rss.max(status_kib(pid, "VmRSS").unwrap_or(0));
                std::thread::sleep(Duration::from_millis(100));
            }
            (slowest, probes, peak_rss)
        })
    };
    let started = Instant::now();
    // A valid JSON-RPC call padded with spaces: the route's answer is a 200.
    let call = br#"{"jsonrpc":"2.0","method":"call","params":{},"id":1}"#;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::thread::spawn(move || {
                post_chunked(
                    port,
                    "/web/webclient/version_info",
                    &[("Content-Type", "application/json")],
                    &Upload {
                        prefix: call,
                        chunk: 256 * 1024,
                        ..Upload::filled(b' ', SIZE)
                    },
                )
            })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::new();
    for c in clients {
        let resp = c
            .join()
            .expect("a client thread")
            .expect("an answer to each upload");
        assert!(
            [200, 413, 503].contains(&resp.status),
            "{} {}",
            resp.status,
            resp.text()
        );
        if resp.status == 200 {
            assert!(resp.text().contains("server_version"), "{}", resp.text());
        }
        *statuses.entry(resp.status).or_insert(0) += 1;
    }
    let took = started.elapsed();
    uploading.store(false, Ordering::Release);
    let (slowest, probes, peak_rss) = prober.join().expect("the prober");
    let hwm = status_kib(pid, "VmHWM").expect("VmHWM of the server");
    eprintln!(
        "{CLIENTS} x 127 MiB in {took:?}: answers {statuses:?}; /web/health {probes} probes, slowest {slowest:?}; peak RSS {} MiB (sampled {} MiB)",
        hwm / 1024,
        peak_rss / 1024
    );
    assert!(
        statuses.get(&200).is_some_and(|n| *n > 0),
        "no upload served: {statuses:?}"
    );
    assert!(hwm < 512 * 1024, "peak RSS {} MiB", hwm / 1024);
    assert!(probes > 0);
    assert_eq!(http_get(port, "/web/health", &[]).status, 200);
    // Every spool file went with its request.
    let spool = spool_dir(&td);
    assert!(
        wait_until(Duration::from_secs(5), || open_files_under(pid, &spool)
            .is_empty()
            && std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0) == 0),
        "spool files left: {:?}",
        open_files_under(pid, &spool)
    );
}
