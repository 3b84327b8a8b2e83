//! Request bodies (issue 15) through the real binary, `test_http` and loopback sockets:
//! bounded memory (bodies past `http_body_spool` received into an unnamed file under
//! `<data_dir>/tmp/` and handed to the handler mapped, intact; the file gone after, and when
//! the client leaves mid-upload; leftovers removed at start), the process-wide budgets
//! `limit_memory_bodies` and `limit_disk_bodies` (503 with `Retry-After`, then recovery; a
//! body that cannot fit refused before it is sent, from its `Content-Length` or as its
//! chunks arrive; larger than a budget, 413), `http_body_timeout` and `http_body_min_rate`
//! (a stalled body answered 408 and its connection closed; a slow but steady one served;
//! bodies dripping a byte at a time neither hold the budget from a small POST nor outlive
//! the minimum rate), form fields bounded as Odoo's `max_form_memory_size` (names
//! included, files not) and werkzeug's `max_form_parts`, 24 concurrent 127 MiB chunked
//! bodies with the default limits (most refused while sending, the host up, under 512 MiB,
//! `/web/health` answering throughout), and requests given up at `limit_time_real` while
//! queued for the blocking pool never running their handler, their bodies freed with the
//! 504.
//!
//! Build first: `cargo build --workspace`, then `cargo test -p inphms-tests --test bodies`.

use inphms_tests::bodies::{
    declare_only, drip, fnv_hex, mappings_under, open_files_under, post_chunked, status_kib,
    upload_chunked, Upload,
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

    // Werkzeug's max_form_parts (1000), counted before anything is parsed: urlencoded
    // pairs...
    let pairs = |n: usize| {
        (0..n)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let urlencoded = "application/x-www-form-urlencoded";
    let resp = post(
        port,
        "/test_http/upload",
        urlencoded,
        pairs(1000).as_bytes(),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(json_of(&resp)["form"].as_array().map(Vec::len), Some(1000));
    let resp = post(
        port,
        "/test_http/upload",
        urlencoded,
        pairs(1001).as_bytes(),
    );
    assert_eq!(resp.status, 413, "{}", resp.text());
    // ... five million of them in 10 MB (about 400 MB of pairs, were they made): 413, fast.
    let flood = "a&".repeat(5_000_000);
    let t = Instant::now();
    let resp = post(port, "/test_http/upload", urlencoded, flood.as_bytes());
    assert_eq!(resp.status, 413, "{}", resp.text());
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    // ... and multipart parts (a file is a part too).
    let parts = |n: usize, name_len: usize| {
        let mut body = String::new();
        for i in 0..n {
            let name = format!("{i:0>name_len$}");
            body.push_str(&part(&name, None, "v"));
        }
        body.push_str(&part("doc", Some("a.txt"), "file"));
        body.push_str("--XyZ--\r\n");
        body
    };
    let resp = post(
        port,
        "/test_http/upload",
        multipart,
        parts(999, 4).as_bytes(),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let got = json_of(&resp);
    assert_eq!(got["form"].as_array().map(Vec::len), Some(999));
    assert_eq!(got["files"][0]["filename"], json!("a.txt"));
    let resp = post(
        port,
        "/test_http/upload",
        multipart,
        parts(1000, 4).as_bytes(),
    );
    assert_eq!(resp.status, 413, "{}", resp.text());
    // Names count in the 10 MiB of fields: 700 fields of 1 byte named with 15,000.
    let resp = post(
        port,
        "/test_http/upload",
        multipart,
        parts(700, 15_000).as_bytes(),
    );
    assert_eq!(resp.status, 413, "{}", resp.text());
    // ... and file names: 800 files, each with a field name and a file name of 7,000 bytes
    // (a part's headers are at most 16 KiB).
    let mut named = String::new();
    for i in 0..800 {
        let long = format!("{i:0>7000}");
        named.push_str(&part(&long, Some(&long), "f"));
    }
    named.push_str("--XyZ--\r\n");
    let resp = post(port, "/test_http/upload", multipart, named.as_bytes());
    assert_eq!(resp.status, 413, "{}", resp.text());
    // The same fields with short names pass: the names made the difference.
    let resp = post(
        port,
        "/test_http/upload",
        multipart,
        parts(700, 4).as_bytes(),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[test]
fn a_stalled_body_is_answered_408_and_its_connection_closed() {
    let td = TestDir::new();
    // 2 bytes per second past the first second: the steady body below keeps above it.
    let server = start(
        &td,
        &["--http-body-timeout", "1", "--http-body-min-rate", "2"],
    );
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
fn slow_dripping_bodies_cannot_starve_a_small_post_and_are_answered_408_below_the_minimum_rate() {
    // 1 MiB for all bodies in memory; a body averages 100 bytes/s past its first 2 s.
    let td = TestDir::new();
    let server = start(
        &td,
        &[
            "--limit-memory-bodies",
            "1048576",
            "--http-body-timeout",
            "2",
            "--http-body-min-rate",
            "100",
        ],
    );
    let port = server.port();
    // 8 clients announce 128 KiB less a byte each (the whole 1 MiB, were announcements
    // charged with the byte they sent first), send a byte, then a byte every 300 ms: never
    // silent for the 2 s of `http_body_timeout`.
    let drippers: Vec<_> = (0..8)
        .map(|_| {
            drip(
                port,
                "/test_http/body_digest",
                128 * 1024 - 1,
                Duration::from_millis(300),
                Duration::from_secs(15),
            )
        })
        .collect();
    // Meanwhile a login-sized POST is served, again and again (each one charged 200 bytes
    // of the budget the drippers would hold).
    let small = pattern(200);
    let t = Instant::now();
    let mut probes = 0;
    while t.elapsed() < Duration::from_millis(1500) && probes < 20 {
        let resp = post(
            port,
            "/test_http/body_digest",
            "application/octet-stream",
            &small,
        );
        assert_eq!(resp.status, 200, "probe {probes}: {}", resp.text());
        assert_eq!(json_of(&resp)["fnv"], json!(fnv_hex(&small)));
        probes += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    // Each dripper is behind the rate 2 s after its head (it owed nothing before), far
    // from its 128 KiB: 408, though it never waited 2 s between two bytes.
    for d in drippers {
        let (answer, took) = d.join().expect("a dripper");
        let resp = answer.expect("an answer to the dripping body");
        assert_eq!(resp.status, 408, "{}", resp.text());
        assert_eq!(resp.header("connection"), Some("close"));
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
            "answered after {took:?}: the grace is 2 s"
        );
    }
    assert!(
        server.wait_for_log(
            "request body below the minimum rate",
            Duration::from_secs(5)
        ),
        "{}",
        tail(&server.stderr())
    );
    assert_eq!(http_get(port, "/web/health", &[]).status, 200);
}

/// A server whose budget `args` hold `whole` (12 MiB) for bodies, holding a spooled body of
/// 6 MiB while its handler sleeps; checks that a body that cannot fit beside it is refused
/// before it is sent (declared: 503 before a byte of it; chunked: 503 once the bytes
/// received cannot fit), that one larger than the budget `whole` is 413 at once, and that
/// all fit again once the holder has gone.
fn refused_before_sent(args: &[&str], whole: u64) {
    let td = TestDir::new();
    let mut all = vec!["--http-body-spool", "65536"];
    all.extend_from_slice(args);
    let server = start(&td, &all);
    let port = server.port();
    let wait = Duration::from_secs(5);
    let resp = declare_only(port, "/test_http/body_digest", whole + 1, wait)
        .expect("an answer to a body larger than the budget, before it is sent");
    assert_eq!(resp.status, 413, "{}", resp.text());
    let held = pattern(6 * MIB as usize);
    let holder = {
        let body = held.clone();
        std::thread::spawn(move || {
            post(
                port,
                "/test_http/body_digest?sleep_ms=4000",
                "application/octet-stream",
                &body,
            )
        })
    };
    assert!(
        server.wait_for_log(
            &format!("body_digest: started, {} bytes", 6 * MIB),
            Duration::from_secs(20)
        ),
        "{}",
        tail(&server.stderr())
    );
    // Declared: refused from the head alone (the client sent no byte of its body).
    let resp = declare_only(port, "/test_http/body_digest", 8 * MIB, wait)
        .expect("an answer before the body is sent");
    assert_eq!(resp.status, 503, "{}", resp.text());
    assert_eq!(resp.header("retry-after"), Some("5"));
    // Chunked: refused once past what is left (6 MiB), long before its 64 MiB are sent.
    let up = upload_chunked(
        port,
        "/test_http/body_digest",
        &[],
        &Upload::filled(b'c', 64 * MIB),
    );
    assert!(up.refused_early(), "{up:?}");
    assert!(
        up.sent < 32 * MIB,
        "{} bytes sent before the answer",
        up.sent
    );
    if let Ok(resp) = &up.answer {
        assert_eq!(resp.status, 503, "{}", resp.text());
        assert_eq!(resp.header("retry-after"), Some("5"));
    }
    // Other requests go on.
    assert_eq!(http_get(port, "/web/health", &[]).status, 200);
    let resp = holder.join().expect("the holder");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(json_of(&resp)["fnv"], json!(fnv_hex(&held)));
    // Released with its request: the 8 MiB body fits again.
    let body = pattern(8 * MIB as usize);
    let resp = post(
        port,
        "/test_http/body_digest",
        "application/octet-stream",
        &body,
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(json_of(&resp)["fnv"], json!(fnv_hex(&body)));
}

#[test]
fn a_body_that_cannot_fit_the_memory_budget_is_refused_before_it_is_sent() {
    // 12 MiB of memory for bodies (a mapped spool file counts), no disk limit to speak of.
    refused_before_sent(
        &[
            "--limit-memory-bodies",
            "12582912",
            "--limit-disk-bodies",
            "0",
        ],
        12 * MIB,
    );
}

#[test]
fn spooled_bodies_are_bounded_on_disk_as_they_arrive() {
    // 12 MiB of disk for spool files, plenty of memory.
    refused_before_sent(
        &[
            "--limit-disk-bodies",
            "12582912",
            "--limit-memory-bodies",
            "268435456",
        ],
        12 * MIB,
    );
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
fn a_request_given_up_while_queued_for_the_pool_never_runs_and_frees_its_body_at_once() {
    // tokio's blocking pool has 512 threads: of 560 handlers sleeping 8 s, 48 are queued
    // when `limit_time_real` (2 s) answers them all 504 (sending the 560 requests takes
    // a second or two: the last ones are given up long before a thread frees). Each one
    // carries a body of its own size (1000 + i bytes, in memory), which its handler logs.
    const SLEEPERS: u64 = 560;
    const PROBE: u64 = 32 * 1024;
    let sizes = 1000..1000 + SLEEPERS;
    // The memory budget holds every sleeper's body and the probe's but one byte: the probe
    // fits only once a body is given back, and the bodies of running handlers are held
    // until they return, after 8 s. So the probe, sent right after the 504s, fits only if
    // the bodies of the requests given up while queued went with their 504.
    let budget = sizes.clone().sum::<u64>() + PROBE - 1;
    let td = TestDir::new();
    let budget_arg = budget.to_string();
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
            "--limit-memory-bodies",
            &budget_arg,
        ],
    );
    let port = server.port();
    let first_sent = Instant::now();
    let mut conns: Vec<(u64, HttpConn)> = sizes
        .clone()
        .map(|n| {
            let mut c = HttpConn::connect(port).expect("connect");
            let mut raw = format!(
                "POST /test_http/body_digest?sleep_ms=8000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {n}\r\n\r\n"
            )
            .into_bytes();
            raw.resize(raw.len() + n as usize, b'b');
            c.send(&raw).expect("send");
            (n, c)
        })
        .collect();
    for (n, c) in &mut conns {
        let resp = c.read_response(false).expect("an answer");
        assert_eq!(resp.status, 504, "body of {n} bytes: {}", resp.text());
    }
    // The probe: an inline route, so that the budget alone decides its answer.
    let probe = post(
        port,
        "/test_http/inline/cors",
        "application/octet-stream",
        &pattern(PROBE as usize),
    );
    let probed = first_sent.elapsed();
    assert!(
        probed < Duration::from_secs(8),
        "the probe came {probed:?} after the first sleeper: too late to tell (the running handlers had returned)"
    );
    assert_eq!(
        probe.status,
        200,
        "the bodies of the requests given up while queued are still held: {}",
        probe.text()
    );
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
        .filter(|l| l.contains("request to test_http::body_digest waited past limit_time_real (2s) for a worker thread; answered 504, its handler not run"))
        .count() as u64;
    let started: Vec<u64> = sizes
        .filter(|n| log.contains(&format!("body_digest: started, {n} bytes")))
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
fn concurrent_127_mib_bodies_are_mostly_refused_early_leaving_the_host_up_and_under_512_mib() {
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
                upload_chunked(
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
    let (mut statuses, mut early, mut late, mut sent) =
        (std::collections::BTreeMap::new(), 0, 0, 0u64);
    for c in clients {
        let up = c.join().expect("a client thread");
        sent += up.sent;
        if up.refused_early() {
            early += 1;
        }
        let status = match &up.answer {
            Ok(resp) => {
                assert!(
                    [200, 413, 503].contains(&resp.status),
                    "{} {}",
                    resp.status,
                    resp.text()
                );
                if resp.status == 200 {
                    assert!(resp.text().contains("server_version"), "{}", resp.text());
                } else {
                    assert_eq!(
                        resp.header("retry-after"),
                        (resp.status == 503).then_some("5")
                    );
                    // Refused once the whole body had come: it could have been told sooner.
                    if up.finished {
                        late += 1;
                    }
                }
                resp.status
            }
            // A connection cut under the client is an early refusal; any other failure
            // (no answer to a body sent whole) is not an answer.
            Err(e) => {
                assert!(!up.finished, "no answer to a whole body: {e}");
                0
            }
        };
        *statuses.entry(status).or_insert(0) += 1;
    }
    let took = started.elapsed();
    uploading.store(false, Ordering::Release);
    let (slowest, probes, peak_rss) = prober.join().expect("the prober");
    let hwm = status_kib(pid, "VmHWM").expect("VmHWM of the server");
    eprintln!(
        "{CLIENTS} x 127 MiB in {took:?}: answers {statuses:?} (0: cut while sending), {early} refused before their body was sent, {late} after; {} MiB sent in all; /web/health {probes} probes, slowest {slowest:?}; peak RSS {} MiB (sampled {} MiB)",
        sent / MIB,
        hwm / 1024,
        peak_rss / 1024
    );
    assert!(
        statuses.get(&200).is_some_and(|n| *n > 0),
        "no upload served: {statuses:?}"
    );
    // 1 GiB of disk holds 8 of these bodies at once and 256 MiB of memory maps 2: most
    // clients are told while sending (the budgets are checked as the bytes arrive), not
    // after uploading 127 MiB for nothing (before, all 24 sent their 3048 MiB).
    assert!(
        early >= CLIENTS / 2,
        "only {early} of {CLIENTS} refused early: {statuses:?}"
    );
    assert!(
        sent < CLIENTS as u64 * SIZE,
        "{} MiB of {} sent",
        sent / MIB,
        CLIENTS as u64 * SIZE / MIB
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
